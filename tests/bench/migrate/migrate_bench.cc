// Migration benchmark: the page encoders side by side with their baselines (Google
// Benchmark), then whole migrations of process-backed guests between two network
// namespaces joined by a tc-shaped veth link (loopback with a send-rate cap where
// namespaces are not allowed), with the ratios the issue asks for.
//
//   lull-bench-migrate [--guest-mib 1024] [--mbit 1000] [--skip-scenarios]
//                      [--max-seconds 30] [benchmark flags]
//
// Guests (dirty rates are page writes per second of 64 random bytes, i.e. what a
// cache-line-sized store pattern does to a page):
//   low       2k writes/s over 5 % of memory
//   moderate  20k writes/s over 10 %
//   heavy     80k writes/s over 50 % (as raw pages: ~2.7x a 1 Gbit/s link)
// Modes: plain pre-copy; + differential (XBZRLE); + LZ4; and lull (both, started when
// the planner predicts a lull, with the target reserved ahead). The lull mode runs on
// the same guest with a busy/lull cycle (busy at the nominal rate for 4 s, 1/50 of it
// for 8 s), against "+ LZ4 started at once" on that cycling guest.
#include <benchmark/benchmark.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/bench/bench_args.h"
#include "dom0/migrate/codec.h"
#include "dom0/migrate/process_guest.h"
#include "dom0/migrate/source.h"
#include "dom0/migrate/target.h"
#include "dom0/migrate/when_idle.h"
#include "tests/bench/bench_results.h"
#include "tests/bench/migrate/netns.h"

namespace lull::migrate {
namespace {

constexpr size_t kPs = 4096;

// ---- encoders ----------------------------------------------------------------------

// The straightforward XBZRLE encoder, one byte at a time (the baseline our word-at-a-time
// scan is measured against). Same output format.
long NaiveXbzrle(const uint8_t* a, const uint8_t* b, size_t n, uint8_t* out, size_t limit) {
  size_t i = 0, o = 0;
  auto uleb = [&](size_t v) {
    while (v >= 0x80) { out[o++] = uint8_t(v | 0x80); v >>= 7; }
    out[o++] = uint8_t(v);
  };
  while (i < n) {
    size_t z = i;
    while (i < n && a[i] == b[i]) ++i;
    if (i == n) break;
    size_t c = i;
    while (i < n && a[i] != b[i]) ++i;
    if (o + 10 + (i - c) >= limit) return -1;
    uleb(z == c ? 0 : c - z);
    uleb(i - c);
    std::memcpy(out + o, b + c, i - c);
    o += i - c;
  }
  return long(o);
}

// 256 pages (1 MiB, cache-resident like the pages being sent), each with 64 changed
// bytes: the re-dirtied page of a guest that stores a cache line.
struct Pages {
  std::vector<uint8_t> old_, new_, out;
  Pages() : old_(256 * kPs), new_(256 * kPs), out(XbzrleBound(kPs)) {
    std::mt19937_64 r(5);
    for (auto& b : old_) b = uint8_t(r());
    new_ = old_;
    for (int p = 0; p < 256; ++p) {
      size_t off = (r() % (kPs - 64)) & ~size_t{7};
      for (int i = 0; i < 64; ++i) new_[p * kPs + off + i] ^= uint8_t(r() | 1);
    }
  }
};

using Encoder = long (*)(const uint8_t*, const uint8_t*, size_t, uint8_t*, size_t);
template <Encoder E>
void BM_Encode(benchmark::State& st) {
  Pages p;
  size_t i = 0;
  for (auto _ : st) {
    size_t k = (i++ & 255) * kPs;
    benchmark::DoNotOptimize(E(&p.old_[k], &p.new_[k], kPs, p.out.data(), kPs / 2));
  }
  st.SetBytesProcessed(int64_t(st.iterations()) * kPs);
}
void BM_Memcpy(benchmark::State& st) {  // the copy every page send makes anyway
  Pages p;
  size_t i = 0;
  for (auto _ : st) {
    size_t k = (i++ & 255) * kPs;
    std::memcpy(p.out.data(), &p.new_[k], kPs);
    benchmark::ClobberMemory();
  }
  st.SetBytesProcessed(int64_t(st.iterations()) * kPs);
}
void BM_Lz4Text(benchmark::State& st) {
  std::vector<uint8_t> page(kPs), out(Lz4Bound(kPs));
  const char* words[] = {"the ", "guest ", "page ", "lull ", "memory ", "dirty ", "xen ", "cpu "};
  std::mt19937_64 r(6);
  for (size_t i = 0; i < kPs;)
    for (const char* w = words[r() & 7]; *w && i < kPs; ++w) page[i++] = uint8_t(*w);
  for (auto _ : st) benchmark::DoNotOptimize(Lz4Compress(page.data(), kPs, out.data(), kPs, 1));
  st.SetBytesProcessed(int64_t(st.iterations()) * kPs);
}
BENCHMARK(BM_Encode<XbzrleEncode>)->Name("encode/xbzrle");
BENCHMARK(BM_Encode<NaiveXbzrle>)->Name("encode/xbzrle_bytewise");
BENCHMARK(BM_Memcpy)->Name("encode/memcpy");
BENCHMARK(BM_Lz4Text)->Name("encode/lz4_text");

// ---- scenarios ---------------------------------------------------------------------

struct Row {
  std::string guest, mode;
  MigrateStats st;
  lull::Status status;
  double waited_s = 0;
};

// The target lulld: a forked process (in the target namespace) serving migrations until
// its control pipe closes; guests that arrive are dropped once committed.
pid_t StartTarget(const NetnsLink* link, uint16_t* port, int* ctl) {
  int up[2], down[2];
  if (pipe(up) || pipe(down)) return -1;
  pid_t pid = fork();
  if (pid != 0) {
    close(up[1]);
    close(down[0]);
    *ctl = down[1];
    uint16_t p = 0;
    if (pid < 0 || read(up[0], &p, sizeof p) != sizeof p) p = 0;
    close(up[0]);
    *port = p;
    return p ? pid : -1;
  }
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  close(up[0]);
  close(down[1]);
  if (link && !link->EnterTarget().ok()) _exit(2);
  ProcessGuestFactory factory;
  ServerOptions so;
  so.bind = link ? link->target_addr() : "127.0.0.1";
  so.io_timeout_ms = 60000;
  std::unique_ptr<MigrationServer> server;
  lull::Status s = MigrationServer::Start(&factory, so, &server);
  if (!s.ok()) {
    std::fprintf(stderr, "target: %s\n", s.ToString().c_str());
    _exit(3);
  }
  uint16_t p = server->port();
  if (write(up[1], &p, sizeof p) != sizeof p) _exit(4);
  for (;;) {
    pollfd pfd{down[0], POLLIN, 0};
    if (poll(&pfd, 1, 200) == 1) break;  // parent closed the pipe (or died)
    while (auto g = factory.TakeStarted()) g.reset();  // the moved guest's run ends here
  }
  server->Stop();
  _exit(0);
}

WorkloadConfig Workload(const std::string& kind, bool cycling) {
  WorkloadConfig w;
  w.write_bytes = 64;
  if (kind == "low") { w.rate = 2000; w.hot_fraction = 0.05; }
  if (kind == "moderate") { w.rate = 20000; w.hot_fraction = 0.10; }
  if (kind == "heavy") { w.rate = 80000; w.hot_fraction = 0.50; }
  if (cycling) w.phases = {{4000, w.rate}, {8000, w.rate / 50}};
  return w;
}

Row RunOne(const std::string& kind, const std::string& mode, size_t mib, const std::string& host,
           uint16_t port, uint64_t rate_cap, double max_s) {
  Row row{kind, mode, {}, {}, 0};
  bool cycling = mode == "lull" || mode == "+lz4 (cycling)";
  std::unique_ptr<ProcessGuest> g;
  row.status = ProcessGuest::Spawn(mib << 20, Workload(kind, cycling), FillConfig{}, &g);
  if (!row.status.ok()) return row;
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  MigrateOptions o;
  o.xbzrle = mode != "plain";
  o.lz4 = mode != "plain" && mode != "+diff";
  o.max_downtime_ms = 60;
  o.max_seconds = max_s;
  o.max_rounds = 60;
  o.io_timeout_ms = 60000;
  o.rate_limit_bytes_per_s = rate_cap;
  if (mode == "lull") {
    WhenIdleOptions wo;
    wo.planner.max_rate = double(Workload(kind, false).rate);
    wo.planner.lull_level = 0.1;
    wo.planner.migration_steps = 12;
    wo.planner.prewarm_steps = 10;
    wo.planner.warmup = 40;
    wo.planner.go_probability = 0.4;
    wo.planner.max_wait_steps = 150;
    wo.step_ms = 400;
    WhenIdleResult wr;
    row.status = WaitForLull(g.get(), host, port, wo, &wr);
    if (!row.status.ok()) return row;
    row.waited_s = wr.waited_s;
    o.reservation = wr.reservation;
  }
  row.status = Migrate(g.get(), host, port, o, &row.st);
  return row;
}

void PrintRow(const Row& r, const Row* plain) {
  char ratio[32] = "";
  if (plain && plain->st.wire_bytes && r.st.wire_bytes)
    std::snprintf(ratio, sizeof ratio, "%.2fx", double(plain->st.wire_bytes) / double(r.st.wire_bytes));
  std::printf("  %-9s %-15s %8.2f %10.1f %10.1f %6d %-9s %8s %s\n", r.guest.c_str(), r.mode.c_str(),
              r.st.total_ms / 1e3, r.st.downtime_ms, double(r.st.wire_bytes) / (1 << 20), r.st.rounds,
              r.status.ok() ? "yes" : "NO", ratio,
              r.status.ok() ? (r.waited_s > 0 ? ("waited " + std::to_string(int(r.waited_s)) + " s for the lull").c_str() : "")
                            : r.status.ToString().substr(0, 90).c_str());
  std::fflush(stdout);
}

}  // namespace
}  // namespace lull::migrate

int main(int argc, char** argv) {
  using namespace lull::migrate;
  size_t mib = 1024;
  int mbit = 1000;
  double max_s = 30;
  bool scenarios = true;
  std::vector<char*> rest{argv[0]};
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    constexpr const char* kTool = "lull-bench-migrate";
    if (a == "--guest-mib" && i + 1 < argc) {
      if (!lull::bench::ParseArg<size_t>(kTool, a, argv[++i], 1, size_t{1} << 20, &mib)) return 2;
    } else if (a == "--mbit" && i + 1 < argc) {
      if (!lull::bench::ParseArg(kTool, a, argv[++i], 1, 1000000, &mbit)) return 2;
    } else if (a == "--max-seconds" && i + 1 < argc) {
      if (!lull::bench::ParseArg(kTool, a, argv[++i], 0.001, 86400.0, &max_s)) return 2;
    }
    else if (a == "--skip-scenarios") scenarios = false;
    else rest.push_back(argv[i]);
  }
  int rc = static_cast<int>(rest.size());
  benchmark::Initialize(&rc, rest.data());
  if (benchmark::ReportUnrecognizedArguments(rc, rest.data())) return 1;
  lull::bench::ResultReporter rep("bytes_per_second");
  benchmark::RunSpecifiedBenchmarks(&rep);
  auto& b = rep.results;
  double x = b["encode/xbzrle"], naive = b["encode/xbzrle_bytewise"], mc = b["encode/memcpy"];
  std::printf("\nXBZRLE encoding, 4 KiB pages with 64 changed bytes, one core:\n"
              "  ours %.2f GB/s   target 2 GB/s (XBZRLE's published speed): %.2fx\n"
              "  vs byte-at-a-time baseline %.2f GB/s: %.2fx   vs memcpy of the page %.2f GB/s: %.2fx\n"
              "  LZ4 on text pages %.2f GB/s\n",
              x / 1e9, x / 2e9, naive / 1e9, naive > 0 ? x / naive : 0, mc / 1e9, mc > 0 ? x / mc : 0,
              b["encode/lz4_text"] / 1e9);
  if (!scenarios) return 0;
  lull::Status probe = ProcessGuest::Probe();
  if (!probe.ok()) {
    std::printf("\nmigration scenarios skipped: %s\n", probe.ToString().c_str());
    return 0;
  }

  NetnsLink link;
  lull::Status ns = link.Create("lullmig" + std::to_string(getpid()), mbit);
  uint64_t cap = 0;
  std::string host = "127.0.0.1";
  if (ns.ok()) {
    std::printf("\nlink: veth between two network namespaces, tc tbf %d Mbit/s each way\n", mbit);
    host = link.target_addr();
  } else {
    cap = uint64_t(mbit) * 1000000 / 8;
    std::printf("\nlink: LOOPBACK with a %d Mbit/s send cap (%s)\n", mbit, ns.ToString().c_str());
  }
  uint16_t port = 0;
  int ctl = -1;
  pid_t target = StartTarget(ns.ok() ? &link : nullptr, &port, &ctl);
  if (target < 0) {
    std::printf("could not start the target\n");
    return 1;
  }
  if (ns.ok() && !link.EnterSource().ok()) {
    std::printf("could not enter the source namespace\n");
    return 1;
  }
  std::printf("guests of %zu MiB; max %g s per migration; max downtime asked 60 ms\n", mib, max_s);
  std::printf("  %-9s %-15s %8s %10s %10s %6s %-9s %8s\n", "guest", "mode", "total s", "downtime ms",
              "wire MiB", "rounds", "done", "vs plain");
  std::map<std::string, Row> rows;
  for (const char* kind : {"low", "moderate", "heavy"}) {
    for (const char* mode : {"plain", "+diff", "+lz4", "+lz4 (cycling)", "lull"}) {
      Row r = RunOne(kind, mode, mib, host, port, cap, max_s);
      rows[std::string(kind) + "/" + mode] = r;
      PrintRow(r, std::string(mode) == "plain" ? nullptr : &rows[std::string(kind) + "/plain"]);
    }
  }
  close(ctl);
  waitpid(target, nullptr, 0);
  link.Destroy();

  auto& hp = rows["heavy/plain"];
  auto& hd = rows["heavy/+diff"];
  auto& hl = rows["heavy/+lz4"];
  auto& md = rows["moderate/+lz4"];
  auto& ml = rows["moderate/lull"];
  auto& mp = rows["moderate/plain"];
  std::printf("\ntargets:\n");
  std::printf("  heavy guest, bytes: plain %.0f MiB%s vs +diff %.0f MiB = %.2fx, vs +lz4 %.0f MiB = %.2fx"
              " (target >= 2x)\n",
              double(hp.st.wire_bytes) / (1 << 20), hp.status.ok() ? "" : " (gave up)",
              double(hd.st.wire_bytes) / (1 << 20),
              hd.st.wire_bytes ? double(hp.st.wire_bytes) / double(hd.st.wire_bytes) : 0,
              double(hl.st.wire_bytes) / (1 << 20),
              hl.st.wire_bytes ? double(hp.st.wire_bytes) / double(hl.st.wire_bytes) : 0);
  std::printf("  moderate guest, bytes: plain %.0f MiB vs +lz4 %.0f MiB = %.2fx\n",
              double(mp.st.wire_bytes) / (1 << 20), double(md.st.wire_bytes) / (1 << 20),
              md.st.wire_bytes ? double(mp.st.wire_bytes) / double(md.st.wire_bytes) : 0);
  std::printf("  moderate guest, downtime: +lz4 %.1f ms, lull %.1f ms, plain %.1f ms (target < 100 ms)\n",
              md.st.downtime_ms, ml.st.downtime_ms, mp.st.downtime_ms);
  std::printf("  heavy guest converges: plain %s, +diff %s, +lz4 %s, lull %s\n",
              hp.status.ok() ? "yes" : "no", hd.status.ok() ? "yes" : "no", hl.status.ok() ? "yes" : "no",
              rows["heavy/lull"].status.ok() ? "yes" : "no");
  std::printf("  XBZRLE encode %.2f GB/s per core (target 2 GB/s): %.2fx\n", x / 1e9, x / 2e9);
  return 0;
}
