// lull::snapshot::UringReader - large sequential reads of a snapshot file with io_uring.
//
// Read() splits a byte range into blocks and keeps `queue_depth` of them in flight:
// submissions are batched (one io_uring_submit per refill), the destination buffer is
// registered with the kernel (read_fixed: no per-I/O page pinning), and the file is opened
// O_DIRECT when the file system allows it (so a prefetch neither pollutes nor depends on
// the page cache; falls back to buffered reads where O_DIRECT is refused, e.g. tmpfs).
// Completions arrive out of order; the progress callback is told the length of the
// contiguous prefix that has arrived, so a consumer can decode while the rest is in flight.
//
// Alignment: with O_DIRECT the kernel needs 4 KiB aligned offsets, lengths and memory;
// Read() takes an aligned `offset`, any `length`, and a 4 KiB aligned `dst` of at least
// AlignUp(length) bytes. A short read at end of file is fine (the file's tail).
//
// CalibrateQueueDepth() measures the bandwidth of queue depths 1..32 on the file and
// picks the smallest within `tolerance` (5 %) of the best ("queue depth chosen by
// measurement"); a larger tolerance buys lower latency for reads issued beside the stream.
// One reader per thread; no exceptions.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "forecast/status.h"

struct io_uring;

namespace lull::snapshot {

inline uint64_t AlignDown(uint64_t v) { return v & ~uint64_t{4095}; }
inline uint64_t AlignUp(uint64_t v) { return (v + 4095) & ~uint64_t{4095}; }

struct UringOptions {
  unsigned queue_depth = 8;
  uint32_t block_bytes = 1u << 20;  // multiple of 4096
  bool direct = true;               // try O_DIRECT
  bool register_buffers = true;
  // Demand reads first: while *yield_to > 0 (someone waits on a read of their own), at
  // most one block of this stream is in flight, so the waiter is not queued behind it.
  const std::atomic<int>* yield_to = nullptr;
};

// A 4 KiB aligned heap buffer (O_DIRECT needs aligned memory).
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t bytes);
  ~AlignedBuffer();
  AlignedBuffer(AlignedBuffer&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr; o.n_ = 0; }
  AlignedBuffer& operator=(AlignedBuffer&& o) noexcept;
  uint8_t* data() const { return p_; }
  size_t size() const { return n_; }

 private:
  uint8_t* p_ = nullptr;
  size_t n_ = 0;
};

class UringReader {
 public:
  static Status Open(const std::string& path, const UringOptions& opt,
                     std::unique_ptr<UringReader>* out);
  ~UringReader();
  UringReader(const UringReader&) = delete;
  UringReader& operator=(const UringReader&) = delete;

  using Progress = std::function<Status(uint64_t contiguous_bytes)>;
  // Reads [offset, offset + length) into dst. A Progress error stops the read (the I/O in
  // flight is drained) and is returned.
  Status Read(uint64_t offset, uint64_t length, uint8_t* dst, const Progress& progress);

  bool direct() const { return direct_; }
  unsigned queue_depth() const { return opt_.queue_depth; }
  uint64_t bytes_read() const { return bytes_read_; }
  uint64_t submits() const { return submits_; }  // io_uring_submit calls (batching)

 private:
  UringReader() = default;
  std::string path_;
  UringOptions opt_;
  int fd_ = -1;
  bool direct_ = false;
  std::unique_ptr<io_uring> ring_;
  uint64_t bytes_read_ = 0, submits_ = 0;
};

struct QdMeasurement {
  unsigned queue_depth;
  double mib_per_s;
};
// Reads up to `sample_bytes` of `path` at each queue depth in {1, 2, 4, 8, 16, 32}; *best
// gets the smallest depth within `tolerance` of the fastest, *table every measurement.
Status CalibrateQueueDepth(const std::string& path, uint64_t sample_bytes, uint32_t block_bytes,
                           unsigned* best, std::vector<QdMeasurement>* table,
                           double tolerance = 0.05);

}  // namespace lull::snapshot
