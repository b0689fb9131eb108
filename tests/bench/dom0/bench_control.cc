// One control step of lulld's engine for 1,000 guests: Engine::Poll, which samples every
// guest's telemetry, credits and expires leases, closes the guests whose (staggered)
// sample interval ends now - their forecast ensembles' observe, threshold search and
// lease decisions - and hands lendable capacity to tasks. lull (forecast ensemble per
// guest and resource) against the reactive baseline (last interval's idle capacity, no
// forecasting), side by side, ratio printed against the 1 ms target. Each run averages
// whole sample intervals (60 steps each) so the amortized forecasting share is in it.
// The simulated host's own Step is excluded; the cost is the thread's CPU time.
#include <benchmark/benchmark.h>
#include <time.h>

#include <cstdio>

#include "dom0/engine.h"
#include "dom0/harness.h"
#include "dom0/profiler.h"
#include "dom0/sim_host.h"
#include "tests/bench/bench_results.h"

namespace lull::dom0 {
namespace {

constexpr int kGuests = 1000;

double ThreadCpuUs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

struct Setup {
  explicit Setup(Policy p) {
    GeneratorConfig g{.guests = kGuests, .duration_s = 12 * 3600, .seed = 9};
    (void)GenerateBuiltin(g, &w);
    host = std::make_unique<SimHost>(SimHostConfig{.pcpus = 500}, &w);
    future = std::make_unique<WorkloadFuture>(&w);
    Task t;
    t.kind = TaskKind::kScrub; t.cpu_s = 1e12; t.max_cpus = 4; t.deadline_ns = ~0ULL >> 2;
    for (int i = 0; i < 200; ++i) (void)tasks.Add(t);
    EngineConfig c;
    c.policy = p;
    engine = std::make_unique<Engine>(host.get(), &tasks, c, future.get());
    (void)engine->Start();
    // Warm the forecasters up: one simulated hour.
    for (int i = 0; i < 3600; ++i) { host->Step(); engine->Poll(); }
  }
  Workload w;
  std::unique_ptr<SimHost> host;
  std::unique_ptr<WorkloadFuture> future;
  TaskQueue tasks;
  std::unique_ptr<Engine> engine;
};

void ControlStep(benchmark::State& state, Policy p) {
  Setup s(p);
  const uint64_t leases0 = s.engine->stats().leases_granted;
  double cpu_us = 0;
  for (auto _ : state) {
    state.PauseTiming();
    s.host->Step();
    state.ResumeTiming();
    double t0 = ThreadCpuUs();
    s.engine->Poll();
    cpu_us += ThreadCpuUs() - t0;
  }
  state.counters["cpu_us"] = cpu_us / static_cast<double>(state.iterations());
  state.counters["leases"] = static_cast<double>(s.engine->stats().leases_granted - leases0);
  state.counters["guests"] = kGuests;
}

// The forecast ensemble itself: one observe per guest and resource, as a guest's close
// does; a control step does 1/60 of this.
void ProfilerObserve(benchmark::State& state) {
  std::vector<std::unique_ptr<GuestProfiler>> p;
  for (int i = 0; i < kGuests; ++i) p.push_back(std::make_unique<GuestProfiler>(1));
  uint64_t x = 1;
  auto next = [&x] { x = x * 6364136223846793005ULL + 1442695040888963407ULL; return (x >> 11) * (1.0 / 9007199254740992.0); };
  for (int k = 0; k < 60; ++k) for (auto& g : p) g->Observe(next(), 0.5);  // warm up
  double cpu_us = 0;
  for (auto _ : state) {
    double t0 = ThreadCpuUs();
    for (auto& g : p) g->Observe(next() * 0.5, 0.4 + 0.1 * next());
    cpu_us += ThreadCpuUs() - t0;
  }
  state.counters["cpu_us"] = cpu_us / static_cast<double>(state.iterations());
  state.counters["guests"] = kGuests;
}

// 600 steps = ten sample intervals: every guest closes ten times in each run.
BENCHMARK_CAPTURE(ControlStep, lull, Policy::kLull)->Unit(benchmark::kMicrosecond)->Iterations(600);
BENCHMARK_CAPTURE(ControlStep, reactive_baseline, Policy::kReactive)->Unit(benchmark::kMicrosecond)->Iterations(600);
BENCHMARK(ProfilerObserve)->Unit(benchmark::kMicrosecond)->Iterations(20);

}  // namespace
}  // namespace lull::dom0

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  lull::bench::ResultReporter rep("cpu_us");
  benchmark::RunSpecifiedBenchmarks(&rep);
  benchmark::Shutdown();
  auto get = [&rep](const std::string& prefix) {
    for (const auto& [k, v] : rep.results) if (k.rfind(prefix, 0) == 0) return v;
    return 0.0;
  };
  const double l = get("ControlStep/lull"), b = get("ControlStep/reactive_baseline");
  const double o = get("ProfilerObserve");
  const int steps = 60;  // control steps per sample interval (1 s steps, 60 s interval)
  if (l > 0 && b > 0)
    std::printf("\ncontrol step, %d guests: lull %.1f us vs reactive baseline %.1f us of CPU: ratio %.2fx; "
                "target < 1000 us: %s\n", lull::dom0::kGuests, l, b, l / b, l < 1000 ? "met" : "NOT met");
  if (o > 0 && l > 0)
    std::printf("of which the amortized forecast ensemble's observe (2 series x %d guests / %d steps): "
                "%.1f us (%.0f%%); unamortized it would be %.1f us in one step\n",
                lull::dom0::kGuests, steps, o / steps, 100 * o / steps / l, o);
  return 0;
}
