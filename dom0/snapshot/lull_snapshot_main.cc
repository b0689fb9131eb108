// lull-snapshot - the snapshot module's CLI; lullctl's `snapshot` and `restore` verbs.
//
//   lull-snapshot guest DOMAIN --mib N        make a process-backed demo guest: its memory
//                                             is /dev/shm/lull-guest-DOMAIN (a kv store)
//   lull-snapshot snapshot DOMAIN [--dir D]   next generation of DOMAIN's memory in D
//                                             (default /var/lib/lull/snapshot/DOMAIN); lays
//                                             out the critical set predicted from D/touch.txt
//   lull-snapshot restore FILE [--mode M] [--queries N] [--to DOMAIN]
//                                             restore FILE (a .lsnap) with progress and ETA,
//                                             run N kv queries as the guest's first work,
//                                             record its first touches in touch.txt, and
//                                             write the memory to DOMAIN if given
//   lull-snapshot snapshot --xen DOMID [--dir D]   the same for a Xen PV domain (paused
//                                             for the capture); run in dom0 as root
//   lull-snapshot restore FILE --xen DOMID    restore into a paused Xen domain, verified
// Exit status 0 on success, 1 on an error (printed with what was wrong), 2 on bad usage.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>

#include "dom0/snapshot/critical_set.h"
#include "dom0/snapshot/restore.h"
#include "dom0/snapshot/store.h"
#include "dom0/snapshot/uring_reader.h"
#include "dom0/snapshot/workload.h"
#include "dom0/snapshot/xen_snapshot.h"

namespace snap = lull::snapshot;
using lull::Status;

namespace {

std::string GuestPath(const std::string& domain) { return "/dev/shm/lull-guest-" + domain; }

Status CheckDomainName(const std::string& domain) {
  if (domain.empty() || domain.find('/') != std::string::npos) {
    return Status::InvalidArgument("domain name '" + domain + "' must be non-empty, without '/'");
  }
  return Status::Ok();
}

// Writes `bytes` of restored memory as the domain's memory file: into a new file renamed
// over the old, so a failure leaves the domain's previous memory whole, never half.
Status WriteDomainMemory(const std::string& domain, const uint8_t* data, size_t bytes) {
  if (Status s = CheckDomainName(domain); !s.ok()) return s;
  const std::string path = GuestPath(domain), tmp = path + ".restoring";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::IoError("create " + tmp + ": " + std::strerror(errno));
  for (size_t off = 0; off < bytes;) {
    const ssize_t n = ::pwrite(fd, data + off, bytes - off, static_cast<off_t>(off));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      Status s = Status::IoError("write " + tmp + " at offset " + std::to_string(off) + ": " +
                                 (n < 0 ? std::strerror(errno) : "no space"));
      ::close(fd);
      ::unlink(tmp.c_str());
      return s;
    }
    off += static_cast<size_t>(n);
  }
  if (::close(fd) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
    Status s = Status::IoError("replace " + path + ": " + std::strerror(errno));
    ::unlink(tmp.c_str());
    return s;
  }
  return Status::Ok();
}

// Maps a domain's memory file; *pages gets its size.
Status MapDomain(const std::string& domain, bool create, uint64_t create_pages, uint8_t** mem,
                 uint64_t* pages) {
  if (Status s = CheckDomainName(domain); !s.ok()) return s;
  const std::string path = GuestPath(domain);
  int fd = ::open(path.c_str(), create ? O_RDWR | O_CREAT | O_TRUNC : O_RDONLY, 0600);
  if (fd < 0) {
    return Status::NotFound("domain " + domain + ": " + path + ": " + std::strerror(errno));
  }
  if (create && ::ftruncate(fd, static_cast<off_t>(create_pages * snap::kPageBytes)) != 0) {
    ::close(fd);
    return Status::IoError("resize " + path + ": " + std::strerror(errno));
  }
  struct stat st;
  ::fstat(fd, &st);
  if (st.st_size == 0 || st.st_size % snap::kPageBytes != 0) {
    ::close(fd);
    return Status::InvalidArgument("domain " + domain + ": memory file " + path + " is " +
                                   std::to_string(st.st_size) + " bytes, not whole pages");
  }
  *pages = static_cast<uint64_t>(st.st_size) / snap::kPageBytes;
  void* p = ::mmap(nullptr, static_cast<size_t>(st.st_size),
                   create ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) return Status::IoError("mmap " + path + ": " + std::strerror(errno));
  *mem = static_cast<uint8_t*>(p);
  return Status::Ok();
}

// The snapshot and the restore must agree on the cut: the same options for both. Region
// inference on, with the benchmark's regions of 1024 pages (see docs/snapshot.md).
snap::CriticalSetOptions CutOptions() {
  snap::CriticalSetOptions o;
  o.region_pages = 1024;
  return o;
}

int Fail(const Status& s) {
  std::fprintf(stderr, "lull-snapshot: %s\n", s.ToString().c_str());
  return 1;
}

// The first-touch history beside the snapshots. A missing file is no history; a damaged
// one is named on stderr and left as it is (false: do not rewrite it), and the command
// goes on without a prediction: a snapshot or a restore must not fail for want of one.
bool LoadHistory(const std::string& path, uint64_t pages, std::vector<snap::TouchTrace>* out) {
  out->clear();
  const Status st = snap::LoadTraces(path, pages, out);
  if (st.ok() || st.code() == Status::Code::kNotFound) return true;
  out->clear();
  std::fprintf(stderr, "lull-snapshot: ignoring the first-touch history (%s); %s is left as "
               "it is, no critical set is predicted from it\n", st.ToString().c_str(),
               path.c_str());
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  // `snapshot --xen DOMID`, `restore FILE --xen DOMID`: a Xen domain (xen_snapshot.h).
  if (int rc = 0; snap::RunXenCommand(argc, argv, &rc)) return rc;
  CLI::App app{"lull snapshot prefetch: snapshot and restore guests"};
  app.require_subcommand(1);
  std::string domain, dir, file, mode = "prefetch", to;
  uint64_t mib = 64, queries = 20000, seed = 1, first = 0;
  int decoder_nice = snap::RestoreOptions{}.decoder_nice;
  uint32_t block_kib = 0;  // 0: by mode, as the benchmark reads (128 KiB stream, 1 MiB eager)
  unsigned qd = snap::UringOptions{}.queue_depth;
  bool base = false, serial = false;
  auto* g = app.add_subcommand("guest", "create a process-backed demo guest (kv store)");
  g->add_option("DOMAIN", domain)->required();
  g->add_option("--mib", mib, "memory size in MiB")->check(CLI::Range(uint64_t{1}, uint64_t{1} << 20));
  g->add_option("--seed", seed);
  auto* s = app.add_subcommand("snapshot", "write the next snapshot generation of DOMAIN");
  s->add_option("DOMAIN", domain)->required();
  s->add_option("--dir", dir, "snapshot directory (default /var/lib/lull/snapshot/DOMAIN)");
  s->add_flag("--base", base, "write a base even if an increment would do");
  auto* r = app.add_subcommand("restore", "restore a snapshot file");
  r->add_option("FILE", file)->required();
  r->add_option("--mode", mode, "prefetch | lazy | eager")
      ->check(CLI::IsMember({"prefetch", "lazy", "eager"}));
  // Bounded: CLI11 reads "-1" into an unsigned as 2^64 - 1, a restore that never ends.
  r->add_option("--queries", queries, "kv queries the guest runs after resume (0: none)")
      ->check(CLI::Range(uint64_t{0}, uint64_t{1000000000}));
  r->add_option("--seed", seed);
  r->add_option("--first", first, "answers that make the guest's first useful work "
                "(default: a tenth of --queries)")->check(CLI::Range(uint64_t{1}, uint64_t{1000000000}));
  r->add_option("--decoder-nice", decoder_nice, "how much nicer than the stream's reader its "
                "decoders run")->check(CLI::Range(0, 39));
  r->add_option("--block-kib", block_kib, "prefetch/eager: the read stream's block, KiB, a "
                "multiple of 4 (default 128 for prefetch, 1024 for eager)")
      ->check(CLI::Range(4u, 65536u));
  r->add_option("--qd", qd, "prefetch/eager: the read stream's queue depth")
      ->check(CLI::Range(1u, 256u));
  r->add_flag("--serial", serial, "prefetch: start the guest after the whole prefetch "
              "(default: at once, pipelined)");
  r->add_option("--to", to, "write the restored memory to this domain");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help is 0; any usage error is 2
  }

  if (*g) {
    uint8_t* mem = nullptr;
    uint64_t pages = 0;
    if (Status st = MapDomain(domain, true, mib << 8, &mem, &pages); !st.ok()) return Fail(st);
    uint64_t recs = 0;
    snap::KvConfig kc;
    kc.seed = seed;
    Status st = snap::KvBuild(mem, pages * snap::kPageBytes, kc, &recs);
    ::munmap(mem, pages * snap::kPageBytes);
    if (!st.ok()) return Fail(st);
    std::printf("guest %s: %llu MiB at %s, %llu records\n", domain.c_str(),
                static_cast<unsigned long long>(mib), GuestPath(domain).c_str(),
                static_cast<unsigned long long>(recs));
    return 0;
  }
  if (*s) {
    if (dir.empty()) dir = "/var/lib/lull/snapshot/" + domain;
    ::mkdir("/var/lib/lull", 0755);
    ::mkdir("/var/lib/lull/snapshot", 0755);
    uint8_t* mem = nullptr;
    uint64_t pages = 0;
    if (Status st = MapDomain(domain, false, 0, &mem, &pages); !st.ok()) return Fail(st);
    snap::WriteOptions wo;
    wo.force_base = base;
    std::vector<snap::TouchTrace> traces;
    (void)LoadHistory(dir + "/touch.txt", pages, &traces);
    if (!traces.empty()) {
      snap::CriticalSet cs;
      if (Status st = snap::PredictCriticalSet(traces, nullptr, pages, CutOptions(), &cs);
          !st.ok()) {
        return Fail(st);
      }
      // The guest runs while the prefetch streams: expected first-touch order on disk.
      wo.critical = cs.touch_order;
      std::printf("critical set: %zu pages ranked from %zu restores, cut %llu, confidence %.2f\n",
                  cs.ranked.size(), traces.size(), static_cast<unsigned long long>(cs.cut),
                  cs.confidence);
      // Whether LZ4 pays on the critical path depends on the disk: its bandwidth, measured
      // on the newest generation (the restores that wrote touch.txt read it), as the
      // prefetch reads (128 KiB blocks, O_DIRECT where allowed).
      std::unique_ptr<snap::SnapshotChain> prev;
      unsigned qd = 0;
      std::vector<snap::QdMeasurement> table;
      if (snap::SnapshotChain::OpenLatest(dir, &prev).ok() &&
          snap::CalibrateQueueDepth(prev->newest().path, 32ull << 20, 128u << 10, &qd, &table)
              .ok()) {
        for (const auto& m : table) {
          wo.critical_read_mib_s = std::max(wo.critical_read_mib_s, m.mib_per_s);
        }
      }
    }
    snap::WriteReport rep;
    Status st = snap::WriteSnapshot(dir, mem, pages, wo, &rep);
    ::munmap(mem, pages * snap::kPageBytes);
    if (!st.ok()) return Fail(st);
    std::printf("%s: generation %llu (%s), %llu pages listed, %llu chunks written, %llu deduped, "
                "%llu zero, %.1f MiB on disk\n", rep.path.c_str(),
                static_cast<unsigned long long>(rep.generation), rep.base ? "base" : "increment",
                static_cast<unsigned long long>(rep.pages_listed),
                static_cast<unsigned long long>(rep.chunks_written),
                static_cast<unsigned long long>(rep.dedup_pages),
                static_cast<unsigned long long>(rep.zero_pages),
                static_cast<double>(rep.file_bytes) / (1 << 20));
    if (rep.critical_chunks) {
      std::printf("critical region: %llu chunks, %llu LZ4 (disk %.0f MiB/s, decode %.2f us a "
                  "page)\n", static_cast<unsigned long long>(rep.critical_chunks),
                  static_cast<unsigned long long>(rep.critical_lz4), wo.critical_read_mib_s,
                  rep.critical_decode_us);
    }
    return 0;
  }
  // restore
  if (block_kib % 4 != 0) {
    std::fprintf(stderr, "lull-snapshot: --block-kib must be a multiple of 4, got %u\n", block_kib);
    return 2;
  }
  // The target is checked before anything is restored or learnt.
  if (!to.empty()) {
    if (Status t = CheckDomainName(to); !t.ok()) return Fail(t);
  }
  std::unique_ptr<snap::SnapshotChain> chain;
  if (Status st = snap::SnapshotChain::Open(file, &chain); !st.ok()) return Fail(st);
  snap::RestoreOptions ro;
  ro.mode = mode == "lazy" ? snap::RestoreMode::kLazy
            : mode == "eager" ? snap::RestoreMode::kEager : snap::RestoreMode::kPrefetch;
  const std::string sdir = file.find('/') == std::string::npos
                               ? "." : file.substr(0, file.find_last_of('/'));
  std::vector<snap::TouchTrace> traces;
  const bool history_ok = LoadHistory(sdir + "/touch.txt", chain->guest_pages(), &traces);
  ro.decoder_nice = decoder_nice;
  // The prefetch stream's block is the benchmark's (docs/snapshot.md): small, so a guest's
  // demand read waits behind at most qd x 128 KiB; the eager read takes 1 MiB blocks.
  if (block_kib == 0) block_kib = ro.mode == snap::RestoreMode::kEager ? 1024 : 128;
  ro.uring.block_bytes = block_kib << 10;
  ro.uring.queue_depth = qd;
  if (serial) ro.start_pages = UINT64_MAX;
  if (!traces.empty()) {
    snap::CriticalSet cs;
    if (snap::PredictCriticalSet(traces, nullptr, chain->guest_pages(), CutOptions(), &cs).ok()) {
      ro.prefetch_pages = cs.cut;
    }
  }
  const bool tty = ::isatty(2);
  ro.progress = [&](const snap::RestoreProgress& p) {
    std::fprintf(stderr, "%s%-8s %5.1f%%  %8.1f / %.1f MiB  eta %.3f s%s", tty ? "\r" : "",
                 p.phase, p.total_bytes ? 100.0 * static_cast<double>(p.done_bytes) /
                                              static_cast<double>(p.total_bytes) : 100.0,
                 static_cast<double>(p.done_bytes) / (1 << 20),
                 static_cast<double>(p.total_bytes) / (1 << 20), p.eta_seconds, tty ? "" : "\n");
  };
  snap::KvResult kv;
  snap::GuestFn guest;
  if (queries > 0) {
    guest = [&](snap::GuestContext& ctx) {
      return snap::KvQuery(ctx.mem(), ctx.bytes(), queries, 0.99, seed,
                           first ? std::min(first, queries) : queries / 10,
                           [&] { ctx.MarkUsefulWork(); }, &kv);
    };
  }
  std::unique_ptr<snap::GuestMemory> mem;
  snap::RestoreReport rep;
  Status st = snap::Restore(*chain, ro, guest, &mem, &rep);
  if (tty) std::fprintf(stderr, "\n");
  if (!st.ok()) return Fail(st);
  std::printf("restored %s (%s): guest start %.4f s, first work %.4f s, resident %.4f s, "
              "verified %.4f s; read %.1f MiB, %llu faults, %llu pages prefetched in %.4f s%s\n",
              file.c_str(), snap::ModeName(ro.mode), rep.t_guest_start, rep.t_first_work,
              rep.t_resident, rep.t_verified, static_cast<double>(rep.bytes_read) / (1 << 20),
              static_cast<unsigned long long>(rep.faults),
              static_cast<unsigned long long>(rep.prefetched_pages), rep.prefetch_seconds,
              rep.direct_io ? ", O_DIRECT" : "");
  std::printf("before the first work: %llu faults, %llu read by the fault (%.4f s in those "
              "reads)\n", static_cast<unsigned long long>(rep.faults_before_first_work),
              static_cast<unsigned long long>(rep.fault_reads_before_first_work),
              rep.fault_read_seconds);
  if (ro.mode != snap::RestoreMode::kLazy) {
    std::printf("stream: %u KiB blocks, queue depth %u, decoders at nice %d; guest started "
                "%s\n", ro.uring.block_bytes >> 10, rep.queue_depth, rep.decoder_nice,
                ro.mode == snap::RestoreMode::kEager ? "after the whole read"
                : rep.prefetched_pages == 0          ? "at once (nothing to prefetch)"
                : serial                             ? "after the whole prefetch (--serial)"
                                                     : "at once, pipelined with the prefetch");
  }
  if (queries > 0) {
    std::printf("guest answered %llu/%llu queries\n", static_cast<unsigned long long>(kv.found),
                static_cast<unsigned long long>(queries));
    // Only a restore that prefetched nothing sees every first touch (a lazy one, REAP's
    // record phase, or a prefetch with no prediction yet; an eager one has no faults); a
    // prefetch restore's faults are just what the prediction missed, and learning from
    // those would teach it that the guest touched nothing else.
    if (rep.prefetched_pages == 0 && history_ok && !rep.first_touch.empty()) {
      traces.push_back({rep.first_touch, -1});
      if (Status t = snap::SaveTraces(sdir + "/touch.txt", traces); !t.ok()) return Fail(t);
      std::printf("first touches: %zu pages, trace %zu in %s/touch.txt\n",
                  rep.first_touch.size(), traces.size(), sdir.c_str());
    }
  }
  if (!to.empty()) {
    if (Status t = WriteDomainMemory(to, mem->data(), mem->bytes()); !t.ok()) return Fail(t);
    std::printf("memory written to %s\n", GuestPath(to).c_str());
  }
  return 0;
}
