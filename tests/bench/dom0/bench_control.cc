// One control period for 1,000 guests: all of lulld's work in one simulated minute, i.e.
// 60 telemetry polls (1 s apart) and the Control step that ends the period, for lull
// (forecast ensemble per guest and resource, threshold search, host model, leases)
// against the reactive baseline (last period's idle capacity, no forecasting), side by
// side with the ratio printed. The simulated host's own Step is excluded (paused).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <map>

#include "dom0/engine.h"
#include "dom0/harness.h"
#include "dom0/profiler.h"
#include "dom0/sim_host.h"

namespace lull::dom0 {
namespace {

constexpr int kGuests = 1000;

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

void ControlPeriod(benchmark::State& state, Policy p) {
  Setup s(p);
  const int steps = static_cast<int>(s.engine->config().control_period_s);
  for (auto _ : state) {
    for (int i = 0; i < steps; ++i) {
      state.PauseTiming();
      s.host->Step();
      state.ResumeTiming();
      s.engine->Poll();  // the last one runs Control
    }
    benchmark::ClobberMemory();
  }
  state.counters["periods"] = static_cast<double>(s.engine->stats().control_periods);
  state.counters["guests"] = kGuests;
}

// The share of lull's period that is the forecast ensemble itself: one observe per guest
// and resource, as Control does.
void ProfilerObserve(benchmark::State& state) {
  std::vector<std::unique_ptr<GuestProfiler>> p;
  for (int i = 0; i < kGuests; ++i) p.push_back(std::make_unique<GuestProfiler>(1));
  uint64_t x = 1;
  auto next = [&x] { x = x * 6364136223846793005ULL + 1442695040888963407ULL; return (x >> 11) * (1.0 / 9007199254740992.0); };
  for (int k = 0; k < 60; ++k) for (auto& g : p) g->Observe(next(), 0.5);  // warm up
  for (auto _ : state)
    for (auto& g : p) g->Observe(next() * 0.5, 0.4 + 0.1 * next());
  state.counters["guests"] = kGuests;
}

BENCHMARK_CAPTURE(ControlPeriod, lull, Policy::kLull)->Unit(benchmark::kMicrosecond)->Iterations(100);
BENCHMARK_CAPTURE(ControlPeriod, reactive_baseline, Policy::kReactive)->Unit(benchmark::kMicrosecond)->Iterations(100);
BENCHMARK(ProfilerObserve)->Unit(benchmark::kMicrosecond);

// Prints the ratio lull / reactive after the runs, from the measured times.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& r : runs) times_[r.benchmark_name()] = r.GetAdjustedCPUTime();
    ConsoleReporter::ReportRuns(runs);
  }
  void Finalize() override {
    ConsoleReporter::Finalize();
    // Names carry suffixes such as "/iterations:100": match on the prefix.
    auto get = [this](const std::string& prefix) {
      for (const auto& [k, v] : times_) if (k.rfind(prefix, 0) == 0) return v;
      return 0.0;
    };
    double l = get("ControlPeriod/lull"), b = get("ControlPeriod/reactive_baseline");
    if (l > 0 && b > 0)
      std::printf("\ncontrol period, %d guests: lull %.1f us vs reactive baseline %.1f us of CPU: ratio %.2fx; "
                  "target < 1000 us: %s\n", kGuests, l, b, l / b, l < 1000 ? "met" : "NOT met");
    double o = get("ProfilerObserve");
    if (o > 0 && l > 0)
      std::printf("of which the forecast ensemble's observe (2 series per guest): %.1f us (%.0f%%)\n", o, 100 * o / l);
  }
 private:
  std::map<std::string, double> times_;
};

}  // namespace
}  // namespace lull::dom0

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  lull::dom0::RatioReporter rep;
  benchmark::RunSpecifiedBenchmarks(&rep);
  benchmark::Shutdown();
}
