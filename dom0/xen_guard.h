// lull::dom0 undo journal and lull-guard - how lulld gives every guest its own settings
// back, even when lulld is killed with SIGKILL.
//
// On a stock Xen hypervisor nothing in Xen knows about leases: a lease is lulld lowering
// the donor's credit cap (and balloon target) and raising the borrower's weight/cap. So
// the "leases expire by themselves" guarantee has to live in dom0, in two parts:
//
// 1. The undo journal (default /run/lull/undo.journal). Before lulld changes any
//    setting of a domain it records the domain's ORIGINAL value there (the first value
//    seen; later changes never overwrite it) with a deadline: the latest expiry of the
//    leases that involve the domain (0 = no deadline, undo only when lulld stops). The
//    file is rewritten whole on every change: write <journal>.tmp, fsync, rename over
//    the journal, fsync the directory - so a crash leaves either the old or the new
//    journal, never a torn one. Every read-modify-write holds flock(<journal>.lock).
//    Format (text, one domain a line, checksummed so that corruption is detected):
//        lull-undo 1
//        dom <domid> uuid=<xen handle> name=<name> deadline_ns=<CLOCK_MONOTONIC ns>
//            [weight=<w> cap=<c>] [target_kib=<k>] [maxmem_kib=<k>] [aff=<vcpu>:<hexmask>,...]
//        end <number of dom lines> <FNV-1a 64 of every byte before the "end" line, hex>
//    A journal that fails to parse is an error naming the line; it is never deleted
//    or overwritten by lulld (nothing is lost: an operator can read and apply it).
//    Written by lulld (XenHost) and by lull-guard; read by both and by lulld at start.
//
// 2. lull-guard, a small process lulld forks before it opens any Xen handle. It holds
//    the read end of a pipe whose write end only lulld has (close-on-exec), and
//    sleeps in poll() on it:
//    - every guard period (100 ms) it restores the domains whose deadline has passed:
//      a hung lulld that stops renewing its leases is undone within one lease period;
//    - when the pipe reports hang-up, lulld is gone (exit, crash, SIGKILL): the guard
//      restores every domain in the journal at once, removes it and exits.
//    So killing lulld returns every guest to its original settings immediately (the
//    guard's poll wakes on the hang-up), and at the latest one lease period after lulld
//    stopped renewing.
// 3. lulld at start: a journal left by an earlier run (lulld and its guard both died,
//    e.g. the guard was killed too) is replayed - every domain restored - before lulld
//    touches anything. SIGTERM: the engine returns every lease (XenHost restores and
//    drops each entry) and the journal ends empty.
// A restore is exact: the recorded original values are written back; a domain that
// is gone (NotFound, or a different uuid under the same domid) is dropped with a log line.
//
// No exceptions; every call returns a Status naming the file and what was wrong.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "dom0/host.h"
#include "forecast/status.h"

namespace lull::dom0 {

// The original settings of one domain, before lulld changed them.
struct UndoEntry {
  DomId domid = 0;
  std::string uuid;        // Xen's domain handle: a reused domid is not the same domain
  std::string name;
  uint64_t deadline_ns = 0;  // CLOCK_MONOTONIC; 0 = only when lulld stops
  bool has_sched = false;
  uint32_t weight = 0, cap = 0;
  bool has_target = false;
  uint64_t target_kib = 0;
  bool has_maxmem = false;
  uint64_t maxmem_kib = 0;
  std::vector<std::pair<int, uint64_t>> affinity;  // vCPU -> hard affinity bitmap (<= 64 pCPUs)
};

// The text form, checksummed (see the format above).
std::string FormatJournal(const std::vector<UndoEntry>& entries);
// `name` goes into error messages ("undo.journal:3: ...").
Status ParseJournal(const std::string& text, const std::string& name, std::vector<UndoEntry>* out);
// A missing file is an empty journal.
Status ReadJournal(const std::string& path, std::vector<UndoEntry>* out);
// Write-new-then-rename with fsyncs; an empty list removes the journal.
Status WriteJournal(const std::string& path, const std::vector<UndoEntry>& entries);

// Holds flock(<path>.lock) for a read-modify-write of the journal.
class JournalLock {
 public:
  explicit JournalLock(const std::string& journal_path);
  ~JournalLock();
  JournalLock(const JournalLock&) = delete;
  JournalLock& operator=(const JournalLock&) = delete;
  const Status& status() const { return st_; }

 private:
  int fd_ = -1;
  Status st_;
};

// Writes an entry's recorded values back to the host (XenApplier on Xen; fakes in tests).
class UndoApplier {
 public:
  virtual ~UndoApplier() = default;
  // NotFound when the domain is gone (or is another domain under the same domid).
  virtual Status Restore(const UndoEntry& e) = 0;
};

// The journal as lulld keeps it: every mutation is saved before it returns.
class UndoJournal {
 public:
  explicit UndoJournal(std::string path) : path_(std::move(path)) {}
  const std::string& path() const { return path_; }
  // Records the original values of the fields set in `orig` that are not recorded
  // yet (the first original wins), and raises the entry's deadline to `deadline_ns`
  // (0 leaves it). Saved before it returns.
  Status Record(const UndoEntry& orig, uint64_t deadline_ns);
  // Sets the deadline of a recorded domain (leases renewed or ended).
  Status SetDeadline(DomId d, uint64_t deadline_ns);
  // Restores one domain through `a` and drops it (also when it is gone).
  Status Undo(DomId d, UndoApplier* a);
  Status Get(DomId d, UndoEntry* out) const;
  Status Entries(std::vector<UndoEntry>* out) const { return ReadJournal(path_, out); }

 private:
  std::string path_;
};

// Restores the entries whose deadline is at or before `now_ns` (all when `all`), drops
// them from the journal and counts them in *restored. Entries whose restore failed for
// another reason than NotFound stay in the journal and the first error is returned.
Status ReplayJournal(const std::string& path, UndoApplier* a, bool all, uint64_t now_ns,
                     size_t* restored);

uint64_t MonotonicNs();

// The guard loop (see above): returns when `parent_fd` reports hang-up and the journal
// has been replayed. `period_ms` bounds how late an expired deadline is undone.
Status RunGuard(const std::string& journal, int parent_fd, UndoApplier* a, int period_ms);

// Forks lull-guard: the child builds its applier with make_applier (its own Xen
// handles: none are shared across fork) and runs RunGuard; the parent keeps the pipe's
// write end. Call before any thread is started.
class Guard {
 public:
  ~Guard();
  Status Start(const std::string& journal, std::function<std::unique_ptr<UndoApplier>()> make_applier,
               int period_ms = 100);
  pid_t pid() const { return pid_; }
  // Closes the pipe (the guard replays what is left and exits) and reaps the guard.
  void Stop();

 private:
  pid_t pid_ = -1;
  int wfd_ = -1;
};

}  // namespace lull::dom0
