// lull::dom0::Workload - what each simulated guest demands, second by second.
//
// A workload is a list of guests, each with a CPU-demand series (in vCPUs) and a
// memory-use series (GiB) sampled every `step_s` seconds. It comes either from the
// built-in generator (on/off Markov-modulated bursts, diurnal cycles, memory growth;
// deterministic for a seed) or from the real traces in ../shared/traces (every format
// there, see LoadTraces). The simulated host replays it; the oracle policy reads its
// future. Within a trace sample, CPU demand carries a deterministic per-second jitter
// (hash of guest and second, +-jitter of the sample) so that 5-minute averages still
// have sub-interval bursts; the mean over the sample is preserved to within rounding.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dom0/host.h"
#include "forecast/status.h"

namespace lull::dom0 {

struct GuestSeries {
  GuestInfo info;
  std::string source;         // "builtin:batch", "planetlab:<file>", ...
  double step_s = 1;          // seconds per sample
  double jitter = 0;          // relative per-second CPU jitter inside a sample
  std::vector<float> cpu;     // demand in vCPUs, one per step
  std::vector<float> mem;     // memory in use, GiB, one per step
};

class Workload {
 public:
  double duration_s = 0;
  std::vector<GuestSeries> guests;

  // Demand at second t (clamped to the series); jitter applied for CPU.
  double Cpu(size_t g, int64_t t_s) const;
  double Mem(size_t g, int64_t t_s) const;
  // Max over seconds [t0, t1): what the oracle knows about the future.
  double MaxCpu(size_t g, int64_t t0, int64_t t1) const;
  double MaxMem(size_t g, int64_t t0, int64_t t1) const;
};

struct GeneratorConfig {
  int guests = 32;
  double duration_s = 86400;
  uint64_t seed = 1;
  double load = 0.6;   // scales every guest's busy levels (host demand ~ 8 of 16 CPUs)
};
// The built-in mix: batch (long lulls between bursts), web (diurnal with short bursts),
// database (steady, little to lend), cron (mostly idle, periodic spikes).
Status GenerateBuiltin(const GeneratorConfig& cfg, Workload* out);

struct TraceConfig {
  int guests = 32;               // take this many series (deterministic stride)
  double duration_s = 86400;     // replay at most this long
  uint64_t seed = 1;             // for synthetic memory where a trace has none
};
// Loads `dir`, which may be a dataset folder of ../shared/traces or any folder below it:
// planetlab (a day folder, or the planetlab folder = its first day), bitbrains_rnd
// (a month folder of ";\t" CSVs), azure_v1 (a wide "step,..." CSV; the avg file is used),
// alibaba_v2018 (machine_usage.csv, resampled to 60 s). Errors name the file and line.
Status LoadTraces(const std::string& dir, const TraceConfig& cfg, Workload* out);

}  // namespace lull::dom0
