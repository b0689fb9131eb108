// lull::migrate planning - when to migrate, and what to give the guest on the target.
//
// MigrationPlanner (timing). Fed one sample per control step: the guest's dirty rate
// (pages written per second, from the same dirty tracking the engine uses) and its CPU
// use. The dirty rate, as a fraction of `max_rate`, goes into a forecast::SeriesForecaster
// (the adaptive ensemble of forecast/). Decide() then says, per step:
//   kReserve  a lull is predicted within `prewarm_steps` (the forecast's p50 at some
//             horizon up to it falls under `lull_level`): reserve and pre-warm the target;
//   kMigrate  the guest is in a lull now and the lull is predicted to last the whole
//             migration (`migration_steps`): P(stay below lull_level) >= go_probability
//             and the forecast's median stays under `lull_level` at every horizon up to
//             it (the p90 is too wide to use on a guest that switches between two levels:
//             its quantiles come from residuals that are bimodal there);
//             or the caller's deadline (`max_wait_steps`) has come;
//   kRelease  a reservation is held but no lull is predicted any more and it is older
//             than `reservation_steps` (the lull did not come);
//   kWait     otherwise.
// The caller acts and reports back with Reserved()/Released(). Until `warmup` samples,
// only the deadline can trigger a migration.
//
// Provisioner (resources on the target). Instead of copying the source's configuration,
// the target's CPU, memory and I/O follow the predicted profile over time in phases: for
// each step ahead, the p90 forecast (utilization as a fraction of the guest's configured
// allocation) times the allocation, plus `headroom`, capped at the target's limits and
// never under `floor` of the allocation; consecutive steps whose needs differ by less
// than `hysteresis` merge into one phase. Correct() raises the current and all later
// phases when the measured use comes within `headroom` of the provision (a forecast that
// was too low is not trusted again for this plan), capped at the limits as always.
// The source makes the plan (it has the guest's history) and sends it in its HELLO
// (wire.h); the target rebuilds it with FromPhases(), which checks it and caps every
// phase at the *target's* limits (the source does not know them exactly), and applies it
// one step at a time (target.h, resource_control.h).
//
// Not thread-safe. Bad configuration is reported by Check()/Plan() as InvalidArgument.
#pragma once

#include <cstdint>
#include <vector>

#include "forecast/distribution.h"
#include "forecast/series_forecaster.h"
#include "forecast/status.h"

namespace lull::migrate {

struct PlannerConfig {
  double max_rate = 100000;    // dirty pages/s mapped to 1.0
  double lull_level = 0.1;     // fraction of max_rate under which the guest is in a lull
  int migration_steps = 5;     // expected migration length, in steps
  int prewarm_steps = 10;      // reserve when a lull is predicted this close
  int reservation_steps = 30;  // release a reservation older than this with no lull near
  double go_probability = 0.6;
  int warmup = 48;
  int max_wait_steps = 0;      // 0: wait for a lull forever
  lull::Status Check() const;
};

class MigrationPlanner {
 public:
  enum class Action { kWait, kReserve, kMigrate, kRelease };
  static const char* ActionName(Action a);

  explicit MigrationPlanner(const PlannerConfig& cfg = {});
  // One step: pages written per second in the step just ended.
  lull::Status Observe(double dirty_pages_per_s);
  Action Decide() const;
  void Reserved() { reserved_at_ = static_cast<long>(steps_); }
  void Released() { reserved_at_ = -1; }
  bool holding_reservation() const { return reserved_at_ >= 0; }
  size_t steps() const { return steps_; }
  // The forecast of the dirty rate `h` steps ahead, in pages/s (p50).
  double predicted_rate(int h) const;

 private:
  bool LullWithin(int steps) const;
  PlannerConfig cfg_;
  forecast::SeriesForecaster f_;
  double last_ = 0;
  size_t steps_ = 0;
  long reserved_at_ = -1;
};

struct Resources {
  double cpu = 0;         // vCPUs
  double memory_mib = 0;
  double io_mbps = 0;
};

struct ProvisionPhase {
  int start = 0, end = 0;  // steps [start, end) from the switch-over
  Resources r;
};

struct ProvisionConfig {
  double headroom = 0.15;   // over the p90 forecast
  double floor = 0.1;       // never below this fraction of the configured allocation
  double hysteresis = 0.1;  // relative change that starts a new phase
};

class Provisioner {
 public:
  // cpu/mem/io: forecasts for steps 1..H (same length, utilization fractions of
  // `configured`); `limits`: what the target can give.
  static lull::Status Plan(const std::vector<forecast::Distribution>& cpu,
                           const std::vector<forecast::Distribution>& mem,
                           const std::vector<forecast::Distribution>& io,
                           const Resources& configured, const Resources& limits,
                           const ProvisionConfig& cfg, Provisioner* out);
  // A plan received from elsewhere: phases ordered, contiguous from step 0, finite and
  // non-negative; each capped at `limits` (InvalidArgument naming the phase otherwise).
  static lull::Status FromPhases(const std::vector<ProvisionPhase>& phases, const Resources& limits,
                                 const ProvisionConfig& cfg, Provisioner* out);
  const std::vector<ProvisionPhase>& phases() const { return phases_; }
  const Resources& limits() const { return limits_; }
  const ProvisionConfig& config() const { return cfg_; }
  // What to give at `step` (the last phase holds after the plan's end).
  Resources At(int step) const;
  // Measured use at `step`: raise this and every later phase if it came too close.
  void Correct(int step, const Resources& measured);

 private:
  std::vector<ProvisionPhase> phases_;
  Resources limits_;
  ProvisionConfig cfg_;
};

}  // namespace lull::migrate
