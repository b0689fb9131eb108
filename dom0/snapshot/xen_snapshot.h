// lull::snapshot Xen backend - snapshot a Xen PV domain's memory into the store, and
// restore a store into a paused domain, through dom0/xen_memory.h.
//
// CaptureXen: pauses the domain if it runs (a consistent image; resumed afterwards, the
// pause time is reported), maps it read-only (pfn order; pfns without a frame are zero
// pages) and writes the next generation of `dir` with WriteSnapshot.
//
// RestoreXen: the domain must be paused (the caller decides when it may run again) and
// have exactly the chain's number of pages. Every page of the chain is read and checked
// against its content hash into a staging image before anything is written, so a bad
// snapshot changes nothing. Writes go through a writable foreign mapping. Xen keeps a PV
// guest's page tables and descriptor tables read-only to every mapping but its own, so
// those pages can only be "restored" when they already hold the snapshot's content
// (restoring into the same domain): a page that differs there is refused before any
// write, naming the pfn (rewriting page tables needs MMU updates, as a PV restore does).
// A pfn without a frame must be a zero page in the snapshot. After writing, every page is
// read back and compared with the manifest's hash.
#pragma once

#include <cstdint>
#include <string>

#include "dom0/snapshot/store.h"
#include "dom0/xen_memory.h"

namespace lull::snapshot {

struct XenCaptureReport {
  WriteReport write;
  uint64_t pages = 0, present = 0;
  bool paused_by_us = false;
  double paused_seconds = 0;  // the guest's downtime for the capture
};

Status CaptureXen(xen::XenCalls* xc, uint32_t domid, const std::string& dir,
                  const WriteOptions& opt, XenCaptureReport* report);

struct XenRestoreReport {
  uint64_t pages = 0;
  uint64_t written = 0;        // through the writable mapping
  uint64_t changed = 0;        // of those, pages whose content differed before
  uint64_t read_only_same = 0; // page tables etc. already holding the snapshot's content
  uint64_t absent = 0;         // pfns without a frame (zero in the snapshot)
  uint64_t bytes_read = 0;     // from the snapshot files
  uint64_t verified = 0;       // pages read back with the manifest's hash
  double seconds = 0;
};

Status RestoreXen(xen::XenCalls* xc, const SnapshotChain& chain, uint32_t domid,
                  XenRestoreReport* report);

// `lull-snapshot snapshot --xen DOMID [--dir D] [--base]` and
// `lull-snapshot restore FILE --xen DOMID`: returns false when argv is not a --xen
// command (the caller goes on), else sets *exit_code (0 ok, 1 error, 2 usage).
bool RunXenCommand(int argc, char** argv, int* exit_code);

}  // namespace lull::snapshot
