// One control period for 1,000 guests: lull's (forecast ensemble per guest and resource,
// threshold search, host model, lease decisions) against the reactive baseline's (last
// period's idle capacity), side by side, with the ratio printed. The period's 60
// telemetry polls are measured separately (the same for both policies).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <map>

#include "dom0/engine.h"
#include "dom0/harness.h"
#include "dom0/sim_host.h"

namespace lull::dom0 {
namespace {

constexpr int kGuests = 1000;

struct Setup {
  explicit Setup(Policy p) {
    GeneratorConfig g{.guests = kGuests, .duration_s = 6 * 3600, .seed = 9};
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

std::map<std::string, double>& Results() { static std::map<std::string, double> r; return r; }

void ControlPeriod(benchmark::State& state, Policy p) {
  Setup s(p);
  for (auto _ : state) {
    s.engine->Control();
    benchmark::ClobberMemory();
  }
  state.counters["guests"] = kGuests;
  Results()[PolicyName(p)] = 0;  // filled from the reporter below
}

void Poll(benchmark::State& state) {
  Setup s(Policy::kLull);
  for (auto _ : state) s.engine->Poll();
  state.counters["guests"] = kGuests;
}

BENCHMARK_CAPTURE(ControlPeriod, lull, Policy::kLull)->Unit(benchmark::kMicrosecond)->MinTime(2.0);
BENCHMARK_CAPTURE(ControlPeriod, reactive_baseline, Policy::kReactive)->Unit(benchmark::kMicrosecond)->MinTime(2.0);
BENCHMARK(Poll)->Unit(benchmark::kMicrosecond);

// Prints the ratio lull / reactive after the runs, from the measured times.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& r : runs) times_[r.benchmark_name()] = r.GetAdjustedCPUTime();
    ConsoleReporter::ReportRuns(runs);
  }
  void Finalize() override {
    ConsoleReporter::Finalize();
    double l = times_["ControlPeriod/lull"], b = times_["ControlPeriod/reactive_baseline"];
    if (l > 0 && b > 0)
      std::printf("\ncontrol period, %d guests: lull %.1f us vs reactive baseline %.1f us of CPU: ratio %.2fx; "
                  "target < 1000 us: %s\n", kGuests, l, b, l / b, l < 1000 ? "met" : "NOT met");
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
