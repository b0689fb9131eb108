// lull::clone::Controller - one control loop over a ShadowPool: measure, forecast, decide,
// act. Used by `lull-clone serve` and by the spike benchmark, so both run the same code.
//
// Each Step(): reads HAProxy's per-server request counters (`show stat` stot) to get the
// demand of the last step in requests per second (all servers) and the part the shadows
// served; feeds demand / util_scale_rps to a forecast::SeriesForecaster; asks
// ForecastPeak for horizons 1..lead; runs the CloneScheduler; applies its decision to the
// pool (Activate / Deactivate / Resize), feeding each measured activation time back to
// the scheduler's lead. The time fed back runs from the step's measurement to the shadow
// serving: the decision itself (HAProxy stats, the forecaster's ensemble) is part of
// being late, and on a loaded machine it can take longer than the activation. Warm() feeds a history (same units) before the first step, e.g.
// the earlier days of a trace. Not thread-safe.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "dom0/clone/pool.h"
#include "dom0/clone/scheduler.h"
#include "forecast/series_forecaster.h"
#include "forecast/status.h"

namespace lull::clone {

struct StepRecord {
  double measured_rps = 0, shadow_rps = 0, demand_rps = 0;
  double forecast_rps = 0, confidence = 0;   // at the lead horizon
  int active_before = 0, active_after = 0, vcpus = 0;
  double activation_ms = 0;                  // of an activation done in this step, else 0
  double decision_ms = 0;                    // from the measurement to the decision
  std::string reason;
};

class Controller {
 public:
  // util_scale_rps: requests per second that the forecaster sees as utilization 1.0.
  Controller(ShadowPool* pool, const SchedulerConfig& cfg, double util_scale_rps);
  Status Warm(const std::vector<double>& history);
  // Starts the measurement window (call once before the first Step).
  Status Begin();
  Status Step(StepRecord* rec);
  CloneScheduler& scheduler() { return sched_; }
  const forecast::SeriesForecaster& forecaster() const { return fc_; }

 private:
  Status Counters(uint64_t* total, uint64_t* shadows);
  ShadowPool* pool_;
  CloneScheduler sched_;
  forecast::SeriesForecaster fc_;
  double scale_;
  uint64_t last_total_ = 0, last_shadow_ = 0;
  std::chrono::steady_clock::time_point last_t_;
  int vcpus_ = 0;
};

}  // namespace lull::clone
