// lull::xentest::TelReader - drains the per-pCPU telemetry rings of a lull region.
//
// The dom0 side of xen-patches/0002: Xen's credit scheduler pushes one
// lull_tel_rec per vCPU wake/block/run/preemption into the ring of the pCPU it runs
// on; this reader attaches to a region (anything lull_shm_attach accepts: Xen's pages
// mapped from DOMID_XEN, or memory formatted in-process by a test), pops every ring,
// validates each record and keeps per-domain totals. It trusts nothing in the region:
// the consumer API (shm/lull_shm.h) checks indices and sequence numbers, and records
// that fail lull_tel_valid are counted as invalid, never summed.
//
// One thread at a time; the caller keeps the mapping alive while the reader is used.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "shm/lull_shm.h"

namespace lull::xentest {

// Totals for one domain over the records drained so far.
struct DomTel {
  uint64_t wake = 0, block = 0, run = 0, desched = 0, other = 0;
  uint64_t ran_ns = 0;     // sum of BLOCK and DESCHED args: time the vCPUs ran
  uint64_t waited_ns = 0;  // sum of RUN args: time runnable but not running
  uint64_t blocked_ns = 0; // sum of WAKE args: time blocked
};

struct TelTotals {
  uint64_t records = 0;   // valid records summed
  uint64_t invalid = 0;   // records that failed lull_tel_valid
  uint64_t errors = 0;    // consumer protocol errors (insane index, stale slot)
  uint64_t skipped = 0;   // records the consumer had to skip
  uint64_t dropped = 0;   // producer-reported drops (ring full), all rings
  uint64_t out_of_order = 0;  // a ring's timestamps went backwards
  uint64_t latest_ns = 0;     // the newest timestamp seen: Xen's NOW(), one poll ago
  std::map<uint16_t, DomTel> dom;
};

class TelReader {
 public:
  // Attach to a region of `size` bytes at `mem`. 0, or a negative errno with `error()`
  // saying what was wrong.
  int Attach(void* mem, uint64_t size);
  // Pop everything currently in every ring (bounded by each ring's capacity), add it
  // to the totals, release the slots. Returns records popped or a negative errno.
  int64_t Poll();
  const TelTotals& totals() const { return totals_; }
  // Run time of `domid`'s vCPUs that are running now (a RUN not yet ended by BLOCK or
  // DESCHED), up to the newest timestamp seen: ran_ns counts a run only when it ends,
  // so a window's run time is the difference of ran_ns + OpenRunNs at its two ends.
  uint64_t OpenRunNs(uint16_t domid) const;
  // Keep the valid records of domain `domid` (the newest `max` of them) for kept().
  void Keep(uint16_t domid, size_t max) { keep_dom_ = domid; keep_max_ = max; }
  const std::vector<lull_tel_rec>& kept() const { return kept_; }
  uint32_t rings() const { return static_cast<uint32_t>(cons_.size()); }
  const std::string& error() const { return error_; }

 private:
  lull_shm_view view_{};
  std::vector<lull_cons> cons_;
  std::vector<uint64_t> last_time_;
  TelTotals totals_;
  std::string error_;
  int keep_dom_ = -1;
  size_t keep_max_ = 0;
  std::vector<lull_tel_rec> kept_;
  std::map<uint32_t, uint64_t> running_since_;  // (domid << 16 | vcpu) -> RUN time
};

// Run time of a domain's idle wakes, from its telemetry records (TelReader::kept()).
// An idle wake is a vCPU's WAKE up to its next BLOCK: it woke (a timer), ran - perhaps
// preempted in between, every piece counts, as the grace rule counts them - and blocked
// again by itself. Wakes that ran a whole window or more are load, not idle wakes, and
// are left out (a busy phase starts from a wake and runs for seconds).
// The window sums are what xen-patches/0003's grace rule adds up over its window: the
// test sets the rule's run threshold above win_max_ns.
struct IdleWakeStats {
  uint64_t runs = 0;          // idle wakes seen
  uint64_t run_p50_ns = 0, run_p99_ns = 0, run_max_ns = 0;
  uint64_t win_max_ns = 0;    // most idle-wake run time ending within any one window
  uint64_t win_wakes_max = 0; // most idle wakes ending within any one window
};
IdleWakeStats AnalyzeIdleWakes(std::vector<lull_tel_rec> recs, uint64_t window_ns);

}  // namespace lull::xentest
