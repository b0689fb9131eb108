#include "dom0/snapshot/restore.h"

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>

namespace lull::snapshot {
namespace {

using Clock = std::chrono::steady_clock;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             Clock::now().time_since_epoch()).count();
}

// Shared state of one restore: the mapping, who owns each page, counters, first error.
class Installer {
 public:
  Installer(const SnapshotChain& chain, uint8_t* mem, int uffd)
      : chain_(chain), mem_(mem), uffd_(uffd), n_(chain.guest_pages()),
        claimed_(new std::atomic<uint8_t>[n_]), in_stream_(n_, 0) {
    for (uint64_t i = 0; i < n_; ++i) claimed_[i].store(0, std::memory_order_relaxed);
  }

  // The pipelined prefetch: pages of the prefetch stream are marked before it starts; the
  // stream publishes which file it reads and how far its data has arrived. A fault on a
  // marked page the stream has already asked the disk for waits for the stream's copy
  // (which wakes it) instead of queueing its own read behind the stream's.
  void MarkInStream(uint64_t p) { in_stream_[p] = 1; }
  void StreamAt(uint32_t file, uint64_t window) {
    stream_window_.store(window, std::memory_order_relaxed);
    stream_have_.store(0, std::memory_order_relaxed);
    stream_file_.store(file, std::memory_order_release);
  }
  void StreamHave(uint64_t abs_end) { stream_have_.store(abs_end, std::memory_order_release); }
  void StreamEnd() { stream_file_.store(-1, std::memory_order_release); }
  bool Coming(uint64_t p) const {
    if (!in_stream_[p]) return false;
    const auto l = chain_.loc(p);
    if (l.chunk == kZeroChunk) return false;
    if (stream_file_.load(std::memory_order_acquire) != static_cast<int64_t>(l.file)) return false;
    const uint64_t off = chain_.file(l.file).chunks[l.chunk].offset;
    return off < stream_have_.load(std::memory_order_acquire) +
                     stream_window_.load(std::memory_order_relaxed);
  }

  // Claims a page: true if the caller is now the one who must install it.
  bool Claim(uint64_t p) { return claimed_[p].exchange(1, std::memory_order_acq_rel) == 0; }
  bool Claimed(uint64_t p) const { return claimed_[p].load(std::memory_order_acquire) != 0; }

  // Installs `k` consecutive decoded pages from p on that the caller claimed, in one
  // UFFDIO_COPY (wakes any thread faulting on them).
  Status Install(uint64_t p, const uint8_t* src, uint64_t k = 1) {
    uint8_t* dst = mem_ + p * kPageBytes;
    if (uffd_ < 0) {
      std::memcpy(dst, src, k * kPageBytes);
    } else {
      uffdio_copy c{};
      c.dst = reinterpret_cast<uintptr_t>(dst);
      c.src = reinterpret_cast<uintptr_t>(src);
      c.len = k * kPageBytes;
      if (::ioctl(uffd_, UFFDIO_COPY, &c) != 0 && errno != EEXIST) {
        return Status::Internal("UFFDIO_COPY page " + std::to_string(p) + ": " +
                                std::strerror(errno));
      }
    }
    resident_.fetch_add(k, std::memory_order_acq_rel);
    return Status::Ok();
  }
  Status InstallZero(uint64_t p) {
    if (uffd_ >= 0) {
      uffdio_zeropage z{};
      z.range.start = reinterpret_cast<uintptr_t>(mem_ + p * kPageBytes);
      z.range.len = kPageBytes;
      if (::ioctl(uffd_, UFFDIO_ZEROPAGE, &z) != 0 && errno != EEXIST) {
        return Status::Internal("UFFDIO_ZEROPAGE page " + std::to_string(p) + ": " +
                                std::strerror(errno));
      }
    }  // without userfaultfd the fresh anonymous page is already zero
    resident_.fetch_add(1, std::memory_order_acq_rel);
    return Status::Ok();
  }
  // Claimed page whose content could not be produced: release waiters, remember the error.
  void Fail(uint64_t p, const Status& s) {
    Record(s);
    (void)InstallZero(p);
  }
  void Wake(uint64_t p) {
    uffdio_range r{reinterpret_cast<uintptr_t>(mem_ + p * kPageBytes), kPageBytes};
    (void)::ioctl(uffd_, UFFDIO_WAKE, &r);
  }
  // Claims, reads with pread and installs one page (the demand path).
  bool FetchOne(uint64_t p) {  // false: someone else had claimed it
    if (!Claim(p)) return false;
    struct Demand {  // the prefetch stream holds back while this read waits
      std::atomic<int>& n;
      explicit Demand(std::atomic<int>& c) : n(c) { n.fetch_add(1, std::memory_order_relaxed); }
      ~Demand() { n.fetch_sub(1, std::memory_order_relaxed); }
    } demand(demand_);
    uint8_t buf[kPageBytes];
    uint64_t got = 0;
    Status s = chain_.ReadPage(p, buf, &got);
    bytes_read_.fetch_add(got, std::memory_order_relaxed);
    if (!s.ok()) {
      Fail(p, s);
      return true;
    }
    if (chain_.loc(p).chunk == kZeroChunk) {
      s = InstallZero(p);
    } else {
      s = Install(p, buf);
    }
    if (!s.ok()) Record(s);
    return true;
  }

  void Record(const Status& s) {
    std::lock_guard<std::mutex> l(mu_);
    if (err_.ok()) err_ = s;
    failed_.store(true);
  }
  Status error() const {
    std::lock_guard<std::mutex> l(mu_);
    return err_;
  }
  bool failed() const { return failed_.load(); }
  const std::atomic<int>* demand() const { return &demand_; }
  uint64_t resident() const { return resident_.load(std::memory_order_acquire); }
  void NoteFault() { last_fault_ns_.store(NowNs(), std::memory_order_relaxed); }
  int64_t last_fault_ns() const { return last_fault_ns_.load(std::memory_order_relaxed); }
  void AddRead(uint64_t b) { bytes_read_.fetch_add(b, std::memory_order_relaxed); }
  uint64_t bytes_read() const { return bytes_read_.load(); }
  const SnapshotChain& chain() const { return chain_; }
  uint8_t* mem() const { return mem_; }

 private:
  const SnapshotChain& chain_;
  uint8_t* mem_;
  int uffd_;
  uint64_t n_;
  std::unique_ptr<std::atomic<uint8_t>[]> claimed_;
  std::vector<uint8_t> in_stream_;  // written before the stream and the handler start
  std::atomic<int64_t> stream_file_{-1};
  std::atomic<int> demand_{0};  // demand reads in progress
  std::atomic<uint64_t> stream_have_{0}, stream_window_{0};
  std::atomic<uint64_t> resident_{0}, bytes_read_{0};
  std::atomic<int64_t> last_fault_ns_{0};
  mutable std::mutex mu_;
  Status err_;
  std::atomic<bool> failed_{false};
};

// The decoder threads of a stream: how many, and how much nicer than the reader.
struct Decoders {
  unsigned threads = 2;
  int nice_delta = 0;
};

// Makes the calling thread `delta` nicer (Linux keeps nice per thread), capped at 19, and
// returns the nice it now runs at. Making oneself nicer needs no privilege; a failure
// leaves the thread as it was.
int LowerThreadPriority(int delta) {
  const id_t tid = static_cast<id_t>(::syscall(SYS_gettid));
  errno = 0;
  const int cur = ::getpriority(PRIO_PROCESS, tid);
  if (errno != 0 || delta <= 0) return cur;
  const int want = std::min(19, cur + delta);
  return ::setpriority(PRIO_PROCESS, tid, want) == 0 ? want : cur;
}

// Where one stream's part stands in its whole, for progress: `base` bytes of `total` were
// read by earlier parts, the first of which started at `t0_ns`.
struct ProgressSpan {
  uint64_t base = 0, total = 0;
  int64_t t0_ns = 0;
};

// Streams the chunks of `pages` (all held by file `fi`, sorted by chunk offset, their
// extent within buf.size()) with one sequential io_uring read into `buf` and installs each
// page as soon as its chunk has arrived. Pages claimed by someone else meanwhile are
// skipped. Returns once every page is installed, so the caller may reuse `buf`.
// *read_seconds gets the read alone (first submission to last completion), the number to
// compare with fio.
Status StreamPages(Installer& in, uint32_t fi, const std::vector<uint64_t>& pages,
                   const UringOptions& uo, const Decoders& dec, const char* phase,
                   const std::function<void(const RestoreProgress&)>& progress,
                   const ProgressSpan& span, AlignedBuffer& buf, RestoreReport* rep,
                   double* read_seconds, uint64_t* stream_bytes) {
  if (pages.empty()) return Status::Ok();
  const SnapshotChain& ch = in.chain();
  const SnapshotFile& f = ch.file(fi);
  auto chunk_of = [&](uint64_t p) -> const ChunkEntry& { return f.chunks[ch.loc(p).chunk]; };
  const uint64_t begin = AlignDown(chunk_of(pages.front()).offset);
  uint64_t end = 0;
  for (uint64_t p : pages) end = std::max(end, chunk_of(p).offset + chunk_of(p).stored_bytes);
  const uint64_t len = end - begin;
  if (AlignUp(len) > buf.size()) {
    return Status::Internal("restore: a stream of " + std::to_string(len) +
                            " bytes does not fit its " + std::to_string(buf.size()) +
                            "-byte read buffer");
  }
  std::unique_ptr<UringReader> r;
  if (Status s = UringReader::Open(f.path, uo, &r); !s.ok()) return s;
  rep->direct_io = r->direct();
  rep->queue_depth = r->queue_depth();
  // Decoding (LZ4 + hash + UFFDIO_COPY) costs about as much as the read, so it runs on
  // `dec.threads` helper threads while this one only keeps the queue full (installing here
  // between completions would leave the device idle meanwhile); this thread joins them
  // once the read is done. The helpers run nicer than this thread (dec.nice_delta,
  // RestoreOptions::decoder_nice says why), so a completion gets this thread at once.
  // The unit of work is a run: pages consecutive in guest memory whose chunks are
  // consecutive in the file (a critical set laid out in address order gives long runs),
  // installed with one UFFDIO_COPY. A run is taken (CAS on `next`) once it has arrived.
  constexpr size_t kMaxRun = 64;
  std::vector<size_t> run_start;  // index into pages; run r is [run_start[r], run_start[r+1])
  for (size_t i = 0; i < pages.size(); ++i) {
    const bool joins = i > 0 && pages[i] == pages[i - 1] + 1 &&
                       i - run_start.back() < kMaxRun &&
                       chunk_of(pages[i]).offset ==
                           chunk_of(pages[i - 1]).offset + chunk_of(pages[i - 1]).stored_bytes;
    if (!joins) run_start.push_back(i);
  }
  const size_t runs = run_start.size();
  run_start.push_back(pages.size());
  std::atomic<uint64_t> have{0};
  std::atomic<size_t> next{0};
  std::atomic<bool> read_done{false};
  auto arrived = [&](size_t r) {
    const ChunkEntry& c = chunk_of(pages[run_start[r + 1] - 1]);
    return c.offset + c.stored_bytes - begin <= have.load(std::memory_order_acquire);
  };
  // Installs run r: claims its pages, checks each chunk, copies the claimed stretches.
  auto install_run = [&](size_t r, uint8_t* scratch) {
    const size_t a = run_start[r], b = run_start[r + 1];
    // Fast path: raw chunks (the critical region) are checked and copied in place.
    size_t general = a;  // where the general path (decode into scratch) starts
    bool raw = true;
    for (size_t i = a; i < b && raw; ++i) raw = chunk_of(pages[i]).codec == kRaw;
    if (raw) {
      size_t claimed = a;
      while (claimed < b && in.Claim(pages[claimed])) ++claimed;
      const uint8_t* base = buf.data() + (chunk_of(pages[a]).offset - begin);
      for (size_t i = a; i < claimed; ++i) {
        const uint8_t* src = nullptr;
        Status d = ch.CheckChunk(ch.loc(pages[i]).file, ch.loc(pages[i]).chunk,
                                 base + (i - a) * kPageBytes, scratch, &src);
        if (!d.ok()) {
          if (i > a) (void)in.Install(pages[a], base, i - a);
          for (size_t j = i; j < claimed; ++j) in.Fail(pages[j], d);
          return;
        }
      }
      if (claimed > a) {
        if (Status st = in.Install(pages[a], base, claimed - a); !st.ok()) return in.Record(st);
      }
      // Someone else claimed pages[claimed]; the rest goes the general way below.
      general = claimed + 1;
      if (general >= b) return;
    }
    size_t from = general;  // start of the stretch being gathered in scratch
    auto flush = [&](size_t to) -> bool {
      if (to == from) return true;
      Status st = in.Install(pages[from], scratch, to - from);
      if (!st.ok()) in.Record(st);
      return st.ok();
    };
    for (size_t i = general; i < b; ++i) {
      const uint64_t p = pages[i];
      if (!in.Claim(p)) {  // a fault got there first; install what we have so far
        if (!flush(i)) return;
        from = i + 1;
        continue;
      }
      const ChunkEntry& c = chunk_of(p);
      uint8_t* slot = scratch + (i - from) * kPageBytes;
      const uint8_t* src = nullptr;
      Status d = ch.CheckChunk(ch.loc(p).file, ch.loc(p).chunk,
                               buf.data() + (c.offset - begin), slot, &src);
      if (!d.ok()) {
        flush(i);
        return in.Fail(p, d);
      }
      if (src != slot) std::memcpy(slot, src, kPageBytes);
    }
    flush(b);
  };
  std::atomic<int> helper_nice{0};
  auto drain = [&](bool wait) {
    if (wait) helper_nice.store(LowerThreadPriority(dec.nice_delta), std::memory_order_relaxed);
    AlignedBuffer scratch(kMaxRun * kPageBytes);
    for (;;) {
      if (in.failed()) return;
      size_t r = next.load(std::memory_order_acquire);
      if (r >= runs) return;
      if (!arrived(r)) {
        if (!wait || read_done.load(std::memory_order_acquire)) return;
        // Sleep until more has arrived (no spinning: the reader needs the CPU).
        const uint64_t seen = have.load(std::memory_order_acquire);
        if (!arrived(r) && !read_done.load(std::memory_order_acquire)) have.wait(seen);
        continue;
      }
      if (!next.compare_exchange_weak(r, r + 1, std::memory_order_acq_rel)) continue;
      install_run(r, scratch.data());
    }
  };
  in.StreamAt(fi, static_cast<uint64_t>(uo.queue_depth) * uo.block_bytes);
  in.StreamHave(begin);
  std::vector<std::thread> helpers;
  for (unsigned k = 0; k < std::max(1u, dec.threads); ++k) helpers.emplace_back(drain, true);
  const int64_t t0 = NowNs();
  Status s = r->Read(begin, len, buf.data(), [&](uint64_t got) -> Status {
    have.store(got, std::memory_order_release);
    have.notify_all();
    in.StreamHave(begin + got);
    if (progress) {
      const uint64_t done = span.base + got;
      const double el = static_cast<double>(NowNs() - span.t0_ns) * 1e-9;
      const double rate = el > 0 ? static_cast<double>(done) / el : 0;
      const uint64_t left = span.total > done ? span.total - done : 0;
      progress({phase, done, span.total, rate > 0 ? static_cast<double>(left) / rate : 0});
    }
    return in.failed() ? in.error() : Status::Ok();
  });
  if (read_seconds) *read_seconds += static_cast<double>(NowNs() - t0) * 1e-9;
  if (!s.ok()) in.Record(s);
  read_done.store(true, std::memory_order_release);
  have.fetch_add(1, std::memory_order_release);  // wake the helpers to see read_done
  have.notify_all();
  drain(false);
  for (auto& t : helpers) t.join();
  rep->decoder_nice = helper_nice.load(std::memory_order_relaxed);
  in.StreamEnd();
  if (s.ok() && in.failed()) s = in.error();
  in.AddRead(r->bytes_read());
  if (stream_bytes) *stream_bytes += r->bytes_read();
  return s;
}

// Installs `want` (pages, any order) by grouping them per file, in chunk order. Each file
// is streamed in parts whose extent fits `window` bytes, through one read buffer reused
// part after part, so a restore holds at most that much of a file in memory whatever the
// guest's size (a whole 2 GiB image is ~900 MiB; dom0's memory is small).
Status StreamSet(Installer& in, const std::vector<uint64_t>& want, const UringOptions& uo,
                 const Decoders& dec, uint64_t window, const char* phase,
                 const std::function<void(const RestoreProgress&)>& progress,
                 RestoreReport* rep, double* read_seconds, uint64_t* stream_bytes) {
  const SnapshotChain& ch = in.chain();
  std::vector<std::vector<uint64_t>> per(ch.size());
  for (uint64_t p : want) {
    if (in.Claimed(p)) continue;
    const auto l = ch.loc(p);
    if (l.chunk == kZeroChunk) {
      if (in.Claim(p)) {
        if (Status s = in.InstallZero(p); !s.ok()) return s;
      }
      continue;
    }
    per[l.file].push_back(p);
  }
  window = std::max<uint64_t>(AlignUp(window), uint64_t{1} << 20);
  AlignedBuffer buf;
  for (uint32_t fi = 0; fi < per.size(); ++fi) {
    auto& v = per[fi];
    if (v.empty()) continue;
    const auto& chunks = ch.file(fi).chunks;
    auto start = [&](uint64_t p) { return chunks[ch.loc(p).chunk].offset; };
    auto stop = [&](uint64_t p) { return start(p) + chunks[ch.loc(p).chunk].stored_bytes; };
    std::sort(v.begin(), v.end(), [&](uint64_t a, uint64_t b) { return start(a) < start(b); });
    // Parts: runs of v whose extent, from the aligned start of their first chunk, fits the
    // window (a chunk is at most 4 KiB, so every part holds at least one).
    std::vector<size_t> cut{0};
    for (size_t i = 1; i < v.size(); ++i) {
      if (stop(v[i]) - AlignDown(start(v[cut.back()])) > window) cut.push_back(i);
    }
    cut.push_back(v.size());
    std::vector<uint64_t> len(cut.size() - 1);  // each part's bytes, as StreamPages reads
    ProgressSpan span;
    span.t0_ns = NowNs();
    uint64_t most = 0;
    for (size_t k = 0; k < len.size(); ++k) {
      // A file's chunks do not overlap, so in offset order the last one ends the part.
      len[k] = stop(v[cut[k + 1] - 1]) - AlignDown(start(v[cut[k]]));
      span.total += len[k];
      most = std::max(most, AlignUp(len[k]));
    }
    if (buf.size() < most) {
      buf = AlignedBuffer(most);
      if (!buf.data()) return Status::Unavailable("restore: out of memory for a read buffer");
      rep->read_buffer_bytes = std::max<uint64_t>(rep->read_buffer_bytes, buf.size());
    }
    for (size_t k = 0; k < len.size(); ++k) {
      const std::vector<uint64_t> part(v.begin() + static_cast<ptrdiff_t>(cut[k]),
                                       v.begin() + static_cast<ptrdiff_t>(cut[k + 1]));
      if (Status s = StreamPages(in, fi, part, uo, dec, phase, progress, span, buf, rep,
                                 read_seconds, stream_bytes);
          !s.ok()) {
        return s;
      }
      span.base += len[k];
    }
  }
  return Status::Ok();
}

// Serves missing-page faults until `stop`; records the first-touch order. A fault on a
// page the prefetch stream is about to deliver is deferred (its copy wakes the guest);
// deferred faults are looked at again every millisecond and read here if the stream moved
// on without them (a failed or finished stream, another file).
void HandleFaults(int uffd, Installer& in, const std::atomic<bool>& stop,
                  std::vector<uint64_t>* trace, std::vector<int64_t>* when,
                  std::vector<int64_t>* read_when, std::vector<int64_t>* read_took) {
  const uintptr_t base = reinterpret_cast<uintptr_t>(in.mem());
  uffd_msg msgs[64];
  std::vector<uint64_t> deferred;
  auto serve = [&](uint64_t p) -> bool {  // false: deferred
    if (in.Claimed(p)) {
      in.Wake(p);  // someone else is installing it; their copy wakes us, this re-checks
    } else if (in.Coming(p)) {
      return false;
    } else {
      const int64_t t = NowNs();
      if (in.FetchOne(p)) {
        read_when->push_back(NowNs());
        read_took->push_back(read_when->back() - t);
      }
    }
    return true;
  };
  while (!stop.load(std::memory_order_acquire)) {
    pollfd pfd{uffd, POLLIN, 0};
    int rc = ::poll(&pfd, 1, deferred.empty() ? 20 : 1);
    if (!deferred.empty()) {
      std::erase_if(deferred, [&](uint64_t p) { return serve(p); });
    }
    if (rc <= 0) continue;
    ssize_t n = ::read(uffd, msgs, sizeof(msgs));
    if (n <= 0) continue;
    for (ssize_t i = 0; i < n / static_cast<ssize_t>(sizeof(uffd_msg)); ++i) {
      if (msgs[i].event != UFFD_EVENT_PAGEFAULT) continue;
      const uint64_t p = (msgs[i].arg.pagefault.address - base) / kPageBytes;
      trace->push_back(p);
      when->push_back(NowNs());
      in.NoteFault();
      if (!serve(p)) deferred.push_back(p);
    }
  }
}

}  // namespace

const char* ModeName(RestoreMode m) {
  switch (m) {
    case RestoreMode::kLazy: return "lazy";
    case RestoreMode::kEager: return "eager";
    case RestoreMode::kPrefetch: return "prefetch";
  }
  return "?";
}

void GuestContext::MarkUsefulWork() {
  int64_t zero = 0;
  marked_ns_.compare_exchange_strong(zero, NowNs());
}

Status GuestMemory::Map(uint64_t pages, std::unique_ptr<GuestMemory>* out) {
  void* p = ::mmap(nullptr, pages * kPageBytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    return Status::Unavailable("mmap guest memory of " + std::to_string(pages) + " pages: " +
                               std::strerror(errno));
  }
  std::unique_ptr<GuestMemory> g(new GuestMemory());
  g->p_ = static_cast<uint8_t*>(p);
  g->pages_ = pages;
  *out = std::move(g);
  return Status::Ok();
}

GuestMemory::~GuestMemory() {
  if (p_) ::munmap(p_, pages_ * kPageBytes);
}

Status Restore(const SnapshotChain& chain, const RestoreOptions& opt, const GuestFn& guest,
               std::unique_ptr<GuestMemory>* out, RestoreReport* report) {
  const int64_t t0 = NowNs();
  auto since = [&] { return static_cast<double>(NowNs() - t0) * 1e-9; };
  RestoreReport rep;
  rep.mode = opt.mode;
  const uint64_t n = chain.guest_pages();
  if (opt.decoder_nice < 0 || opt.decoder_nice > 39) {
    return Status::InvalidArgument("restore: decoder_nice must be 0..39 (how much nicer the "
                                   "decoders run than the restoring thread), got " +
                                   std::to_string(opt.decoder_nice));
  }
  const Decoders dec{opt.decoders, opt.decoder_nice};

  // 1. Instantiate.
  std::unique_ptr<GuestMemory> gm;
  if (Status s = GuestMemory::Map(n, &gm); !s.ok()) return s;
  int uffd = -1;
  struct UffdCloser { int& fd; ~UffdCloser() { if (fd >= 0) ::close(fd); } } uc{uffd};
  if (opt.mode != RestoreMode::kEager) {
    uffd = static_cast<int>(::syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
    if (uffd < 0) {
      return Status::PermissionDenied(std::string("userfaultfd: ") + std::strerror(errno) +
                                      " (needs root or vm.unprivileged_userfaultfd=1)");
    }
    uffdio_api api{UFFD_API, 0, 0};
    uffdio_register reg{};
    reg.range = {reinterpret_cast<uintptr_t>(gm->data()), gm->bytes()};
    reg.mode = UFFDIO_REGISTER_MODE_MISSING;
    if (::ioctl(uffd, UFFDIO_API, &api) != 0 || ::ioctl(uffd, UFFDIO_REGISTER, &reg) != 0) {
      return Status::Unavailable(std::string("userfaultfd register: ") + std::strerror(errno));
    }
  }
  Installer in(chain, gm->data(), uffd);
  std::vector<uint64_t> all(n);
  for (uint64_t p = 0; p < n; ++p) all[p] = p;

  // 2-3. Prefetch (critical set) or eager (everything), newest generation per page.
  // The prefetch is pipelined: it streams on its own thread and the guest starts once the
  // first `start_pages` of it are in; faults on pages the stream is about to deliver wait
  // for it, the others are read at once, beside the stream.
  std::thread prefetcher;
  Status prefetch_status;
  std::atomic<bool> prefetch_over{true};
  if (opt.mode == RestoreMode::kPrefetch) {
    const auto& crit = chain.critical();
    auto want = std::make_shared<std::vector<uint64_t>>(
        crit.begin(),
        crit.begin() + static_cast<ptrdiff_t>(std::min<uint64_t>(opt.prefetch_pages, crit.size())));
    for (uint64_t p : *want) in.MarkInStream(p);
    rep.prefetched_pages = want->size();
    prefetch_over.store(false);
    prefetcher = std::thread([&, want] {
      UringOptions uo = opt.uring;
      uo.yield_to = in.demand();  // the guest's own reads go first
      prefetch_status = StreamSet(in, *want, uo, dec, opt.window_bytes, "prefetch",
                                  opt.progress, &rep, &rep.prefetch_seconds,
                                  &rep.prefetch_bytes);
      if (!prefetch_status.ok()) in.Record(prefetch_status);
      prefetch_over.store(true, std::memory_order_release);
    });
    const uint64_t start = std::min<uint64_t>(opt.start_pages, want->size());
    while (in.resident() < start && !prefetch_over.load(std::memory_order_acquire) &&
           !in.failed()) {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  } else if (opt.mode == RestoreMode::kEager) {
    Status s = StreamSet(in, all, opt.uring, dec, opt.window_bytes, "eager",
                         opt.progress, &rep, &rep.prefetch_seconds, nullptr);
    if (!s.ok()) return s;
    rep.prefetch_bytes = in.bytes_read();
    rep.t_resident = since();
  }

  // 4. Run the guest while faults are served and the rest arrives.
  std::atomic<bool> stop{false};
  std::thread handler;
  std::vector<int64_t> fault_ns, read_ns, read_took;
  if (uffd >= 0) {
    handler = std::thread(HandleFaults, uffd, std::ref(in), std::cref(stop), &rep.first_touch,
                          &fault_ns, &read_ns, &read_took);
  }
  GuestContext ctx(gm->data(), gm->bytes());
  Status guest_status;
  int64_t guest_done_ns = 0;
  rep.t_guest_start = since();
  std::thread vcpu;
  std::atomic<bool> guest_done{!guest};
  if (guest) {
    vcpu = std::thread([&] {
      guest_status = guest(ctx);
      guest_done_ns = NowNs();
      guest_done.store(true);
    });
  }
  auto fill = [&]() -> Status {
    if (opt.mode == RestoreMode::kPrefetch) {
      // The fill yields to the guest's start: the disk first serves its demand faults
      // (a miss of the prediction), and streams the rest once the guest has done its
      // first useful work, finished, or gone fill_quiet_ns without a fault.
      const int64_t start = NowNs();
      while (!ctx.marked() && !guest_done.load() && !in.failed()) {
        const int64_t quiet_since = std::max(start, in.last_fault_ns());
        if (NowNs() - quiet_since > opt.fill_quiet_ns) break;
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
      if (prefetcher.joinable()) prefetcher.join();
      if (in.failed()) return in.error();
      UringOptions uo = opt.uring;
      uo.yield_to = in.demand();
      return StreamSet(in, all, uo, Decoders{1, opt.decoder_nice}, opt.window_bytes, "fill",
                       opt.progress, &rep, nullptr, nullptr);
    }
    for (uint64_t p = 0; p < n && !in.failed(); ++p) in.FetchOne(p);  // one page per read
    return in.error();
  };
  Status fs;
  if (opt.mode == RestoreMode::kPrefetch) fs = fill();
  if (vcpu.joinable()) vcpu.join();
  if (opt.mode == RestoreMode::kLazy && fs.ok() && !in.failed() && !opt.record_only) {
    fs = fill();
  }
  if (prefetcher.joinable()) prefetcher.join();
  if (!fs.ok()) in.Record(fs);
  if (opt.mode != RestoreMode::kEager) rep.t_resident = since();
  stop.store(true, std::memory_order_release);
  if (handler.joinable()) handler.join();
  if (in.failed()) return in.error();  // the mapping is destroyed with gm
  if (!guest_status.ok()) return guest_status;
  rep.t_guest_done = guest ? static_cast<double>(guest_done_ns - t0) * 1e-9 : rep.t_guest_start;
  rep.t_first_work = ctx.marked() ? static_cast<double>(ctx.marked_ns() - t0) * 1e-9
                                  : rep.t_guest_done;
  rep.faults = rep.first_touch.size();
  const int64_t mark = ctx.marked() ? ctx.marked_ns() : guest_done_ns;
  rep.faults_before_first_work = static_cast<uint64_t>(
      std::upper_bound(fault_ns.begin(), fault_ns.end(), mark) - fault_ns.begin());
  rep.fault_reads = read_ns.size();
  rep.fault_reads_before_first_work = static_cast<uint64_t>(
      std::upper_bound(read_ns.begin(), read_ns.end(), mark) - read_ns.begin());
  for (uint64_t i = 0; i < rep.fault_reads_before_first_work; ++i) {
    rep.fault_read_seconds += static_cast<double>(read_took[i]) * 1e-9;
  }
  rep.bytes_read = in.bytes_read();
  if (opt.record_only) {
    if (report) *report = std::move(rep);
    return Status::Ok();  // the partial mapping is destroyed with gm
  }
  if (in.resident() != n) {
    return Status::Internal("restore: " + std::to_string(in.resident()) + " of " +
                            std::to_string(n) + " pages present at the end");
  }

  // 5. Verify the whole image against the manifest.
  if (opt.verify) {
    for (uint64_t p = 0; p < n; ++p) {
      if (PageHash(gm->data() + p * kPageBytes) != chain.page_hash(p)) {
        const auto l = chain.loc(p);
        return Status::Corruption("restore: page " + std::to_string(p) +
                                  " does not match the manifest after restore (generation " +
                                  std::to_string(chain.file(l.file).header.generation) +
                                  ", chunk " + std::to_string(l.chunk) + ")");
      }
    }
  }
  rep.t_verified = since();
  if (uffd >= 0) {
    uffdio_range r{reinterpret_cast<uintptr_t>(gm->data()), gm->bytes()};
    (void)::ioctl(uffd, UFFDIO_UNREGISTER, &r);
  }
  if (report) *report = std::move(rep);
  *out = std::move(gm);
  return Status::Ok();
}

}  // namespace lull::snapshot
