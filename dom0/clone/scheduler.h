// lull::clone::CloneScheduler - when to activate, return and resize shadows.
//
// Called once per control step with the demand measured over the last step and, for the
// predictive policy, the forecast demand for the next steps (requests per second, with a
// confidence in [0, 1] per horizon). Capacity is counted in requests per second: the
// primary's plus each active shadow's. Policies:
//   kNone        never activates (the baseline without shadows);
//   kReactive    demand = the measured demand: a shadow comes when load is already high;
//   kPredictive  demand = max(measured, forecast over horizons 1..lead) counting only
//                forecasts with confidence >= min_confidence, where
//                lead = ceil(measured activation time / step) + lead_margin_steps, so a
//                shadow is serving at least one activation time before the spike.
// Up: target = the fewest shadows k with demand <= high * capacity(k); scale-up is never
// delayed (lateness is what costs latency). Down, one shadow at a time, only when
//   - demand stayed <= low * capacity(active - 1) for calm_steps consecutive steps
//     (predictive: the forecast over 1..max(lead, calm_steps) must agree), and
//   - the last change is at least min_dwell_steps old.
// low < high is the hysteresis band; together with the dwell this bounds flapping to one
// change per min_dwell_steps even on a demand that oscillates across the threshold.
// Resize: the active shadows' vCPUs follow their measured load (shadow_rps per shadow) to
// keep it near high * capacity, within [min_vcpus, max_vcpus], under the same dwell
// (after the last count change and after the last resize).
// Deterministic and allocation-free per step; not thread-safe.
#pragma once

#include <string>
#include <vector>

#include "forecast/status.h"

namespace lull::clone {

enum class Policy { kNone, kReactive, kPredictive };
const char* PolicyName(Policy p);
Status ParsePolicy(const std::string& name, Policy* out);

struct SchedulerConfig {
  Policy policy = Policy::kPredictive;
  double high = 0.8;               // activate above this fraction of capacity
  double low = 0.6;                // release below this fraction of the smaller capacity
  double min_confidence = 0.5;
  int min_dwell_steps = 3;
  int calm_steps = 2;
  int lead_margin_steps = 1;
  double initial_activation_s = 0.05;  // assumed until the first activation is measured
  double step_seconds = 1.0;
  double primary_rps = 500;        // capacity of the primary
  double per_vcpu_rps = 250;       // capacity of one shadow vCPU
  int shadow_vcpus = 4;            // profile of a newly activated shadow
  int min_vcpus = 1, max_vcpus = 8;
  bool resize = true;
  Status Validate() const;
};

struct SchedulerInput {
  double measured_rps = 0;          // demand over the last step
  double shadow_rps = 0;            // of which served by active shadows (for resizing)
  std::vector<double> forecast_rps; // [h-1] = forecast demand h steps ahead
  std::vector<double> confidence;   // same length
  int active = 0;                   // shadows serving now
  int pool_size = 0;                // shadows that exist (active + idle)
  int active_vcpus = 0;             // vCPUs of each active shadow (0: the profile)
};

struct Decision {
  int target_active = 0;
  int target_vcpus = 0;             // for the active shadows; 0 = leave as is
  double demand_rps = 0;            // the demand the decision was made for
  std::string reason;
};

class CloneScheduler {
 public:
  explicit CloneScheduler(const SchedulerConfig& cfg)
      : cfg_(cfg), activation_s_(cfg.initial_activation_s) {}
  // The measured activation time (seconds) updates the lead; a running maximum is kept
  // so one fast activation does not shorten it.
  void ObserveActivation(double seconds);
  int lead_steps() const;
  double activation_seconds() const { return activation_s_; }
  Decision Step(const SchedulerInput& in);
  const SchedulerConfig& config() const { return cfg_; }
  int changes() const { return changes_; }

 private:
  double Capacity(int shadows, int vcpus) const {
    return cfg_.primary_rps + shadows * vcpus * cfg_.per_vcpu_rps;
  }
  SchedulerConfig cfg_;
  double activation_s_;
  int since_change_ = 1 << 20;
  int since_vcpu_change_ = 1 << 20;
  int calm_ = 0;
  int changes_ = 0;
};

}  // namespace lull::clone
