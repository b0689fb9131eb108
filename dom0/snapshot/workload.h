// lull::snapshot::KvGuest - the workload inside a process-backed guest's memory.
//
// A guest here is a memory mapping plus a vCPU thread. To give restores a realistic
// first-touch pattern (not uniform random) the guest keeps a key-value store in its own
// memory: a header page, the program's runtime pages (8 MiB of request handlers - "code"
// and runtime data - each of 48 request types reads its own path of 32 pages, as a
// resumed process runs the same code whatever the request), a hash-bucket array, and
// records allocated from a fragmented
// heap (slots handed out in shuffled order, as an allocator that has lived a while does),
// and the rest of memory filled like a working OS would (text-like data that compresses
// about 2-3x, and zero pages). Everything is addressed by offsets, so the store works at
// whatever address the memory is restored to.
//
// Build() lays the store out in fresh memory. Query() is the work after resume: `n`
// lookups of keys drawn from a Zipf(s) distribution (a few hot keys, a long tail; the
// seed changes which tail keys come up), calling `first_work` after the first
// `first_batch` answers. Query only reads guest memory and bounds-checks every offset, so
// it is safe on memory that a failed restore left garbage in; it returns Corruption then.
#pragma once

#include <cstdint>
#include <functional>

#include "forecast/status.h"

namespace lull::snapshot {

struct KvConfig {
  double store_fraction = 0.25;  // of guest memory used by buckets and records
  double zero_fraction = 0.15;   // of the rest left as zero pages
  uint64_t seed = 1;
};

struct KvResult {
  uint64_t found = 0;
  uint64_t checksum = 0;  // over the values read: equal across correct restores
};

Status KvBuild(uint8_t* mem, uint64_t bytes, const KvConfig& cfg, uint64_t* records);

Status KvQuery(const uint8_t* mem, uint64_t bytes, uint64_t n, double zipf_s, uint64_t seed,
               uint64_t first_batch, const std::function<void()>& first_work, KvResult* out);

}  // namespace lull::snapshot
