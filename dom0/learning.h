// lull::dom0::ThresholdTuner - the learning loop's per-guest threshold.
//
// The engine lends from a guest only when the predicted probability that the guest
// stays below the lending level for the whole lease window is at least the guest's
// threshold. After every leased control period the tuner sees whether the lease was
// violated (demand came back and forced a revocation) and what it cost the guest
// (CPU-seconds it could not run, scaled to a typical miss). A violation raises the
// threshold by `step * cost_factor`; a clean period lowers it by
// `step * target / (1 - target)`, so the threshold settles where the violation rate
// equals the target. Critical guests have a higher floor, best-effort a lower one.
// Host pressure (the host's predicted demand near its capacity) adds a bonus to every
// guest's threshold.
#pragma once

#include <algorithm>

#include "dom0/host.h"

namespace lull::dom0 {

struct TunerConfig {
  double target_violation_rate = 0.02;
  double step = 0.01;
  double floor[3] = {0.97, 0.80, 0.70};   // by PriorityClass
  double initial[3] = {0.99, 0.90, 0.85};
  double ceiling = 0.999;
  double pressure_level = 0.85;           // host demand / capacity where bonus starts
  double pressure_bonus = 0.05;
};

class ThresholdTuner {
 public:
  ThresholdTuner() = default;
  ThresholdTuner(const TunerConfig* cfg, PriorityClass cls)
      : cfg_(cfg), cls_(cls), thr_(cfg->initial[static_cast<int>(cls)]) {}

  // One leased period ended; `violated` if a revocation was forced, `cost_cpu_s` what
  // the guest lost to it.
  void Record(bool violated, double cost_cpu_s) {
    ++periods_;
    if (violated) {
      ++violations_;
      double factor = std::clamp(1.0 + cost_cpu_s / 0.05, 1.0, 3.0);
      thr_ += cfg_->step * factor;
    } else {
      double t = cfg_->target_violation_rate;
      thr_ -= cfg_->step * t / (1.0 - t);
    }
    thr_ = std::clamp(thr_, cfg_->floor[static_cast<int>(cls_)], cfg_->ceiling);
    rate_ = 0.98 * rate_ + 0.02 * (violated ? 1.0 : 0.0);
  }
  // The threshold to use now, given host pressure (predicted demand / capacity).
  double Threshold(double host_load) const {
    double bonus = host_load > cfg_->pressure_level
                       ? cfg_->pressure_bonus * (host_load - cfg_->pressure_level) / (1.0 - cfg_->pressure_level + 1e-9)
                       : 0.0;
    return std::min(cfg_->ceiling, thr_ + std::max(0.0, bonus));
  }
  double base() const { return thr_; }
  double violation_rate() const { return rate_; }
  uint64_t periods() const { return periods_; }
  uint64_t violations() const { return violations_; }

 private:
  const TunerConfig* cfg_ = nullptr;
  PriorityClass cls_ = PriorityClass::kStandard;
  double thr_ = 0.9, rate_ = 0;
  uint64_t periods_ = 0, violations_ = 0;
};

}  // namespace lull::dom0
