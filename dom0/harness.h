// lull::dom0::Harness - runs lulld's engine on the simulated host and compares policies.
//
// One run = one workload, one task set, one policy, on a fresh SimHost; Compare runs the
// four policies on the very same workload and tasks (same seed) and FormatTable prints
// the table of `make run`. All numbers come from the run: the host measures demand,
// unmet demand, waits and revocation latency; the engine and task queue measure what
// was handed out and when tasks completed.
#pragma once

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "dom0/engine.h"
#include "dom0/sim_host.h"
#include "dom0/tasks.h"
#include "dom0/workload.h"

namespace lull::dom0 {

// The oracle's view of a Workload (time in host ns = seconds of the workload).
class WorkloadFuture : public FutureView {
 public:
  explicit WorkloadFuture(const Workload* w);
  double MaxCpu(DomId d, uint64_t t0_ns, uint64_t t1_ns) const override;
  double MaxMem(DomId d, uint64_t t0_ns, uint64_t t1_ns) const override;
  double MaxHostCpu(uint64_t t0_ns, uint64_t t1_ns) const override;
 private:
  const Workload* w_;
};

struct RunConfig {
  SimHostConfig host;
  EngineConfig engine;
  std::vector<Task> tasks;                       // the same for every policy
  std::function<void(double done_fraction)> progress;
  std::function<void(Policy, const PeriodRecord&)> period_hook;
  std::vector<DomId> traced;                     // guests whose periods reach the hook
};

struct PolicyResult {
  Policy policy = Policy::kNone;
  SimStats host;
  EngineStats engine;
  double handed_cpu_s = 0, handed_gib_h = 0;
  double unmet_cpu_share = 0, unmet_mem_share = 0;
  double wait_p99_ms = 0;
  double revoke_p50_ms = 0, revoke_p99_ms = 0, revoke_max_ms = 0;
  size_t tasks_total = 0, tasks_done = 0, deadline_misses = 0;
  double completion_mean_s = 0, completion_p95_s = 0;
};

Status RunPolicy(const Workload& w, const RunConfig& cfg, Policy p, PolicyResult* out);
Status Compare(const Workload& w, const RunConfig& cfg, std::vector<PolicyResult>* out);
std::string FormatTable(const std::vector<PolicyResult>& r);
// Targets of issue 4: lull >= 80 % of the oracle's CPU-seconds, unmet <= 1 % and <= 1/3
// of reactive's. Empty string when met, else what was missed.
std::string CheckTargets(const std::vector<PolicyResult>& r);
double Percentile(std::vector<double> v, double q);
// A host size for a workload (`host.pcpus = 0`): the 99.9th percentile of the guests'
// total CPU demand plus 10 %, at least 2, so that lending nothing leaves (almost) no
// demand unmet, as the built-in workload does on 16 CPUs. Traces differ wildly in how
// busy their VMs are.
int AutoHostCpus(const Workload& w);

// The progress of a long run (make run). On a terminal a bar redrawn in place; anywhere
// else (a log file, CI, a pipe) one line each time another `step_pct` percent is done,
// so a captured log holds a handful of lines, not thousands of carriage returns.
class Progress {
 public:
  Progress(std::FILE* out, bool tty, int step_pct = 10) : out_(out), tty_(tty), step_(step_pct < 1 ? 1 : step_pct) {}
  // `fraction` of the whole run is done, currently in `label`.
  void Update(double fraction, const char* label);
  void Done();
  int lines() const { return lines_; }  // lines written (non-terminal mode)

 private:
  std::FILE* out_;
  bool tty_;
  int step_;
  int last_pct_ = -1;   // last percentage printed (non-terminal)
  int lines_ = 0;
};

}  // namespace lull::dom0
