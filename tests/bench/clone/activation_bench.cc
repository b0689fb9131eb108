// Warm-shadow activation against its baseline, a cold start, in the same run.
//
//   warm: an idle shadow of the pool (started, cache warm, SIGSTOPped, HAProxy slot in
//         maint) is resumed, health-probed, weighted and set `ready` (ShadowPool::Activate)
//   cold: what activation costs without the pool: start a backend from the golden
//         config (exec, open volume, warm the cache, listen), probe it, give it a HAProxy
//         slot and set it `ready`.
// Both end with a HAProxy server able to take requests. Manual time: the wall time of
// exactly those steps; the deactivation / teardown between iterations is not counted.
// Target: warm activation under 50 ms on this machine. The summary prints the ratio.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <map>
#include <chrono>
#include <cstdio>
#include <vector>

#include "tests/bench/clone/bench_env.h"

namespace lull::clone::bench {
namespace {

// A warm image: the cache is filled before READY.
GoldenConfig Golden() { return MakeGolden(5000, 100, 1024, 1024); }

std::vector<double> g_warm_ms;

double Ms(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

void BM_WarmActivation(benchmark::State& state) {
  BenchDir dir("bench-warm");
  PoolConfig pc;
  ShadowPool pool;
  Status s = dir.Prepare(Golden(), 4, &pc);
  if (s.ok()) s = pool.Start(pc);
  if (s.ok()) s = pool.SetSize(1);
  if (!s.ok()) {
    state.SkipWithError(s.ToString().c_str());
    return;
  }
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    s = pool.Activate();
    double ms = Ms(t0);
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
    state.SetIterationTime(ms / 1000.0);
    g_warm_ms.push_back(ms);
    if (!(s = pool.Deactivate()).ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
  }
}

void BM_ColdStart(benchmark::State& state) {
  BenchDir dir("bench-cold");
  PoolConfig pc;
  ShadowPool pool;  // for HAProxy and its slot s1; no shadow is pre-started
  Status s = dir.Prepare(Golden(), 4, &pc);
  if (s.ok()) s = pool.Start(pc);
  if (!s.ok()) {
    state.SkipWithError(s.ToString().c_str());
    return;
  }
  for (auto _ : state) {
    ProcessInstance inst("web-cold", pc.golden_path, pc.backend_path, pc.dir);
    auto t0 = std::chrono::steady_clock::now();
    s = inst.Start(4);
    if (s.ok()) s = inst.Probe(1000);
    if (s.ok()) s = pool.lb().SetAddress("s1", inst.port());
    if (s.ok()) s = pool.lb().SetWeight("s1", 64);
    if (s.ok()) s = pool.lb().SetState("s1", "ready");
    double ms = Ms(t0);
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
    state.SetIterationTime(ms / 1000.0);
    pool.lb().SetState("s1", "maint");
    inst.Stop();
  }
}

BENCHMARK(BM_WarmActivation)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ColdStart)->UseManualTime()->Unit(benchmark::kMillisecond);

class Capture : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& r : runs) {
      if (r.run_type == Run::RT_Iteration && !r.error_occurred) {
        ms[r.benchmark_name()] = r.GetAdjustedRealTime();  // in the benchmark's unit (ms)
      }
    }
    ConsoleReporter::ReportRuns(runs);
  }
  std::map<std::string, double> ms;
};

}  // namespace
}  // namespace lull::clone::bench

int main(int argc, char** argv) {
  using namespace lull::clone::bench;
  benchmark::Initialize(&argc, argv);
  Capture rep;
  benchmark::RunSpecifiedBenchmarks(&rep);
  benchmark::Shutdown();
  auto w = rep.ms.find("BM_WarmActivation/manual_time");
  auto c = rep.ms.find("BM_ColdStart/manual_time");
  if (w == rep.ms.end() || c == rep.ms.end()) {
    std::printf("\nactivation: a benchmark did not run (see errors above)\n");
    return 1;
  }
  std::sort(g_warm_ms.begin(), g_warm_ms.end());
  double p50 = g_warm_ms[g_warm_ms.size() / 2];
  double p99 = g_warm_ms[std::min(g_warm_ms.size() - 1, g_warm_ms.size() * 99 / 100)];
  double mx = g_warm_ms.back();
  std::printf("\nActivation of a serving instance (wall time, ms)\n");
  std::printf("  warm shadow (pool)      mean %7.2f  p50 %7.2f  p99 %7.2f  max %7.2f  (n=%zu)\n",
              w->second, p50, p99, mx, g_warm_ms.size());
  std::printf("  cold start (baseline)   mean %7.2f\n", c->second);
  std::printf("  ratio cold / warm       %7.1fx\n", c->second / w->second);
  std::printf("  target warm < 50 ms:    p99 %.2f ms -> %s\n", p99, p99 < 50 ? "MET" : "NOT MET");
  return 0;
}
