#include "dom0/snapshot/uring_reader.h"

#include <fcntl.h>
#include <liburing.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>

namespace lull::snapshot {

AlignedBuffer::AlignedBuffer(size_t bytes) : n_(bytes) {
  if (bytes == 0) return;
  // A large read buffer is faulted in (registration pins it) on the restore's critical
  // path: 2 MiB pages make that one fault per 2 MiB instead of 512.
  constexpr size_t kHuge = size_t{2} << 20;
  const bool huge = bytes >= kHuge;
  const size_t len = huge ? (bytes + kHuge - 1) / kHuge * kHuge : AlignUp(bytes);
  void* p = nullptr;
  if (posix_memalign(&p, huge ? kHuge : 4096, len) == 0) {
    p_ = static_cast<uint8_t*>(p);
    if (huge) (void)::madvise(p, len, MADV_HUGEPAGE);  // advice only: 4 KiB pages still work
  } else {
    n_ = 0;
  }
}
AlignedBuffer::~AlignedBuffer() { std::free(p_); }
AlignedBuffer& AlignedBuffer::operator=(AlignedBuffer&& o) noexcept {
  if (this != &o) {
    std::free(p_);
    p_ = o.p_;
    n_ = o.n_;
    o.p_ = nullptr;
    o.n_ = 0;
  }
  return *this;
}

Status UringReader::Open(const std::string& path, const UringOptions& opt,
                         std::unique_ptr<UringReader>* out) {
  if (opt.queue_depth == 0 || opt.queue_depth > 256 || opt.block_bytes == 0 ||
      opt.block_bytes % 4096 != 0) {
    return Status::InvalidArgument("uring reader: queue depth must be 1..256 and the block a "
                                   "multiple of 4096, got " + std::to_string(opt.queue_depth) +
                                   " and " + std::to_string(opt.block_bytes));
  }
  std::unique_ptr<UringReader> r(new UringReader());
  r->path_ = path;
  r->opt_ = opt;
  if (opt.direct) {
    r->fd_ = ::open(path.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
    r->direct_ = r->fd_ >= 0;
  }
  if (r->fd_ < 0) r->fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (r->fd_ < 0) {
    return Status::IoError("open " + path + ": " + std::strerror(errno));
  }
  r->ring_ = std::make_unique<io_uring>();
  int rc = io_uring_queue_init(opt.queue_depth, r->ring_.get(), 0);
  if (rc < 0) {
    r->ring_.reset();
    return Status::Unavailable(std::string("io_uring_queue_init: ") + std::strerror(-rc));
  }
  *out = std::move(r);
  return Status::Ok();
}

UringReader::~UringReader() {
  if (ring_) io_uring_queue_exit(ring_.get());
  if (fd_ >= 0) ::close(fd_);
}

Status UringReader::Read(uint64_t offset, uint64_t length, uint8_t* dst,
                         const Progress& progress) {
  if (offset % 4096 != 0 || reinterpret_cast<uintptr_t>(dst) % 4096 != 0) {
    return Status::InvalidArgument("uring reader: offset and buffer must be 4 KiB aligned");
  }
  if (length == 0) return Status::Ok();
  const uint64_t span = AlignUp(length);
  // At least two blocks per queue slot, so a short read still keeps the queue full.
  const uint64_t bs = std::min<uint64_t>(
      opt_.block_bytes, std::max<uint64_t>(128 << 10, AlignUp(span / (2 * opt_.queue_depth))));
  const uint64_t nblocks = (span + bs - 1) / bs;

  // Register the destination: 1 GiB per iovec at most (the kernel's limit per buffer).
  constexpr uint64_t kIov = 1ull << 30;
  bool fixed = false;
  if (opt_.register_buffers) {
    std::vector<iovec> iov;
    for (uint64_t o = 0; o < span; o += kIov) {
      iov.push_back({dst + o, static_cast<size_t>(std::min(kIov, span - o))});
    }
    fixed = io_uring_register_buffers(ring_.get(), iov.data(),
                                      static_cast<unsigned>(iov.size())) == 0;
  }

  std::vector<uint8_t> done(nblocks, 0);
  uint64_t next = 0, contiguous = 0, inflight = 0;
  Status err;
  auto submit_more = [&] {
    unsigned queued = 0;
    const bool yield = opt_.yield_to && opt_.yield_to->load(std::memory_order_relaxed) > 0;
    while (err.ok() && next < nblocks && inflight < (yield ? 1u : opt_.queue_depth)) {
      io_uring_sqe* sqe = io_uring_get_sqe(ring_.get());
      if (!sqe) break;
      const uint64_t o = next * bs;
      const unsigned len = static_cast<unsigned>(std::min(bs, span - o));
      if (fixed) {
        io_uring_prep_read_fixed(sqe, fd_, dst + o, len, offset + o,
                                 static_cast<int>(o / kIov));
      } else {
        io_uring_prep_read(sqe, fd_, dst + o, len, offset + o);
      }
      io_uring_sqe_set_data64(sqe, next);
      ++next;
      ++inflight;
      ++queued;
    }
    if (queued) {
      io_uring_submit(ring_.get());  // one syscall for the whole batch
      ++submits_;
    }
  };
  submit_more();
  while (inflight > 0) {
    io_uring_cqe* cqe = nullptr;
    int rc = io_uring_wait_cqe(ring_.get(), &cqe);
    if (rc < 0) {
      if (rc == -EINTR) continue;
      err = Status::IoError(std::string("io_uring_wait_cqe: ") + std::strerror(-rc));
      break;
    }
    // Reap everything that is ready, then refill in one submission.
    unsigned head, seen = 0;
    io_uring_for_each_cqe(ring_.get(), head, cqe) {
      ++seen;
      --inflight;
      const uint64_t b = io_uring_cqe_get_data64(cqe);
      const uint64_t o = b * bs;
      const uint64_t want = std::min(bs, span - o);
      const int res = cqe->res;
      if (res < 0) {
        if (err.ok()) {
          err = Status::IoError("read " + path_ + " at offset " + std::to_string(offset + o) +
                                ": " + std::strerror(-res));
        }
      } else if (static_cast<uint64_t>(res) < want && o + static_cast<uint64_t>(res) < length) {
        // A short read before the end of the wanted bytes: the file ended early.
        if (err.ok()) {
          err = Status::Corruption("read " + path_ + ": truncated at offset " +
                                   std::to_string(offset + o + static_cast<uint64_t>(res)));
        }
      } else {
        bytes_read_ += static_cast<uint64_t>(res);
        done[b] = 1;
      }
    }
    io_uring_cq_advance(ring_.get(), seen);
    uint64_t before = contiguous;
    while (contiguous < nblocks && done[contiguous]) ++contiguous;
    submit_more();  // keep the device busy while the consumer decodes
    if (err.ok() && contiguous != before && progress) {
      err = progress(std::min(length, contiguous * bs));
    }
  }
  if (fixed) io_uring_unregister_buffers(ring_.get());
  return err;
}

Status CalibrateQueueDepth(const std::string& path, uint64_t sample_bytes, uint32_t block_bytes,
                           unsigned* best, std::vector<QdMeasurement>* table,
                           double tolerance) {
  if (!(tolerance >= 0 && tolerance < 1)) {
    return Status::InvalidArgument("calibrate: tolerance must be in [0, 1), got " +
                                   std::to_string(tolerance));
  }
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return Status::IoError("stat " + path + ": " + std::strerror(errno));
  }
  const uint64_t n = AlignDown(std::min<uint64_t>(sample_bytes, static_cast<uint64_t>(st.st_size)));
  if (n == 0) return Status::InvalidArgument("calibrate: " + path + " is too small");
  AlignedBuffer buf(n);
  if (!buf.data()) return Status::Unavailable("calibrate: out of memory");
  std::vector<QdMeasurement> t;
  double top = 0;
  for (unsigned qd : {1u, 2u, 4u, 8u, 16u, 32u}) {
    std::unique_ptr<UringReader> r;
    UringOptions o;
    o.queue_depth = qd;
    o.block_bytes = block_bytes;
    if (Status s = UringReader::Open(path, o, &r); !s.ok()) return s;
    auto t0 = std::chrono::steady_clock::now();
    if (Status s = r->Read(0, n, buf.data(), nullptr); !s.ok()) return s;
    double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    t.push_back({qd, static_cast<double>(n) / (1 << 20) / std::max(sec, 1e-9)});
    top = std::max(top, t.back().mib_per_s);
  }
  *best = t.back().queue_depth;
  for (const auto& m : t) {
    if (m.mib_per_s >= (1 - tolerance) * top) {
      *best = m.queue_depth;
      break;
    }
  }
  if (table) *table = t;
  return Status::Ok();
}

}  // namespace lull::snapshot
