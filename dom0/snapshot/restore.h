// lull::snapshot::Restore - resume a guest from a snapshot chain.
//
// Orchestration (RestoreMode::kPrefetch, lull's way):
//   1. instantiate: map the guest's memory (a real anonymous mapping here; on Xen the same
//      steps write into a domain through libxenforeignmemory, not built yet) and register
//      it with userfaultfd (missing-page mode), so an untouched page traps to us;
//   2. prefetch: read the first `prefetch_pages` pages of the critical set (predicted
//      first-touch order, laid out contiguously in the snapshot) with io_uring, decode and
//      verify each chunk and install it (UFFDIO_COPY) while the rest is still in flight.
//      The prefetch is pipelined with the guest: it streams on its own thread and the
//      guest starts once the first `start_pages` are in (default: at once); a fault on a
//      page the stream has already asked the disk for waits for the stream's copy, any
//      other fault is read at once beside the stream;
//   3. apply increments: the chain is resolved page by page to the newest generation
//      holding it, so each page is installed once, with its newest content;
//   4. run the guest (a vCPU thread) while a handler thread serves its first touches of
//      missing pages one page per fault, and a background fill streams the rest of each
//      file sequentially (io_uring) into the pages not yet present - once the guest has
//      done its first useful work or gone fill_quiet_ns without a fault, so the fill does
//      not queue the guest's demand reads behind its large ones;
//   5. when every page is present, verify every page's content hash against the manifest.
// kLazy is the baseline "demand paging one page per fault": no prefetch; each first touch
// reads its page; after the guest's work the rest is read one page at a time.
// kEager is the baseline "read the whole image first": everything is read and installed
// before the guest runs (no userfaultfd).
//
// Errors: the chain was validated when opened (structure, truncation, foreign files); a
// chunk that fails its checksum while restoring aborts the restore: the guest thread is
// released onto a zero page, its result discarded, the mapping destroyed, and the error
// (naming file, chunk, offset) returned. *out is only set on success, so nothing is ever
// half-restored. Progress is reported from the thread that reads (the prefetch's own
// thread, then the restoring thread for the fill), one phase at a time.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dom0/snapshot/store.h"
#include "dom0/snapshot/uring_reader.h"

namespace lull::snapshot {

enum class RestoreMode { kLazy, kEager, kPrefetch };
const char* ModeName(RestoreMode m);

struct RestoreProgress {
  const char* phase;        // "prefetch", "eager", "fill"
  uint64_t done_bytes = 0;  // read so far in this phase
  uint64_t total_bytes = 0;
  double eta_seconds = 0;   // from the bandwidth so far
};

struct RestoreOptions {
  RestoreMode mode = RestoreMode::kPrefetch;
  uint64_t prefetch_pages = UINT64_MAX;  // how much of the critical set (the prediction's cut)
  UringOptions uring;
  unsigned decoders = 2;  // threads decoding prefetched/eager chunks (the fill uses one)
  // How much nicer than the restoring thread the decoders run (0..39; the result is capped
  // at nice 19). The stream's reader needs the CPU for a moment after every completion to
  // refill the queue; decoding is CPU-bound, and the kernel's scheduler (EEVDF, Linux >=
  // 6.6) does not preempt a running decoder of equal weight for the woken reader, so the
  // device went idle for up to a time slice per completion: on this 2-vCPU VM a 25 MiB
  // stream took 47 ms instead of 17 ms in about half the restores. Nice +19 gives the
  // reader, the guest's vCPU and its fault handler about 70 times the decoders' weight,
  // which was the smallest delta that removed the slow mode (+10 and +15 did not); see
  // docs/snapshot.md. The decoders still run whenever those threads wait.
  int decoder_nice = 19;
  // The most file bytes one stream holds in its read buffer: a file is read in parts of
  // this extent through one buffer (at least 1 MiB). Bounds a restore's memory beside the
  // guest's own (an eager 2 GiB restore read its ~900 MiB image into one buffer before).
  uint64_t window_bytes = 64ull << 20;
  // Pipelined resume: the guest starts once this many pages of the prefetch are in (0: at
  // once; UINT64_MAX: after the whole prefetch). Faults on pages the stream has already
  // asked the disk for wait for the stream; others are read beside it.
  uint64_t start_pages = 0;
  bool verify = true;
  // Record only (REAP's record phase): the lazy restore ends when the guest has run, with
  // its first touches in the report and no memory returned (no fill, no verify).
  bool record_only = false;
  int64_t fill_quiet_ns = 50'000'000;  // prefetch: fill starts after this long without a fault
  std::function<void(const RestoreProgress&)> progress;
};

struct RestoreReport {
  RestoreMode mode = RestoreMode::kPrefetch;
  double t_guest_start = 0;   // seconds from the start of the restore
  double t_first_work = 0;    // when the guest called MarkUsefulWork()
  double t_guest_done = 0;
  double t_resident = 0;      // every page present
  double t_verified = 0;
  uint64_t bytes_read = 0;    // from the snapshot files, all phases
  uint64_t faults = 0;        // userfaultfd missing-page faults served
  uint64_t fault_reads = 0;   // of those, read by the fault itself (not by the prefetch)
  uint64_t faults_before_first_work = 0;  // first_touch[0, this) came before the mark
  uint64_t fault_reads_before_first_work = 0;
  double fault_read_seconds = 0;  // spent in the reads before the mark (read, check, install)
  uint64_t prefetched_pages = 0;
  uint64_t prefetch_bytes = 0;
  double prefetch_seconds = 0;  // the prefetch read, first submission to last completion
                                // (prefetch_bytes is what that stream read)
  bool direct_io = false;
  unsigned queue_depth = 0;
  int decoder_nice = 0;  // the nice value the (last) stream's decoders ran at
  uint64_t read_buffer_bytes = 0;  // the largest read buffer a stream held (window_bytes)
  std::vector<uint64_t> first_touch;  // pages in the order the guest faulted on them
};

// The restored memory (owns the mapping).
class GuestMemory {
 public:
  static Status Map(uint64_t pages, std::unique_ptr<GuestMemory>* out);
  ~GuestMemory();
  GuestMemory(const GuestMemory&) = delete;
  GuestMemory& operator=(const GuestMemory&) = delete;
  uint8_t* data() const { return p_; }
  uint64_t pages() const { return pages_; }
  uint64_t bytes() const { return pages_ * kPageBytes; }

 private:
  GuestMemory() = default;
  uint8_t* p_ = nullptr;
  uint64_t pages_ = 0;
};

// What the guest function sees.
class GuestContext {
 public:
  GuestContext(uint8_t* mem, uint64_t bytes) : mem_(mem), bytes_(bytes) {}
  uint8_t* mem() const { return mem_; }
  uint64_t bytes() const { return bytes_; }
  void MarkUsefulWork();  // first call records the time of the first useful work
  bool marked() const { return marked_ns_.load() != 0; }
  int64_t marked_ns() const { return marked_ns_.load(); }

 private:
  uint8_t* mem_;
  uint64_t bytes_;
  std::atomic<int64_t> marked_ns_{0};
};

using GuestFn = std::function<Status(GuestContext&)>;

// Restores `chain`, runs `guest` (may be empty: nothing runs, the restore still completes)
// on its own thread once the mode allows, and returns when the guest has finished and
// every page is present and verified.
Status Restore(const SnapshotChain& chain, const RestoreOptions& opt, const GuestFn& guest,
               std::unique_ptr<GuestMemory>* out, RestoreReport* report);

}  // namespace lull::snapshot
