// lull::forecast::GuestForecaster - CPU and memory of one guest, forecast together.
//
// Two SeriesForecasters (one per resource) plus a JointMarkovChain over (CPU level,
// memory level), which captures cross-resource sequences such as a CPU burst followed by
// memory growth. observe(cpu, mem) validates both samples first; if either is rejected
// neither forecaster changes (the error names the resource and value). NaN in one
// resource marks it missing for this step; the joint chain only learns from steps where
// both are present.
#pragma once

#include "forecast/markov.h"
#include "forecast/series_forecaster.h"

namespace lull::forecast {

struct GuestConfig {
  EnsembleConfig cpu, mem;
  JointMarkovConfig joint;
};

class GuestForecaster {
 public:
  explicit GuestForecaster(const GuestConfig& cfg = {});
  lull::Status observe(double cpu, double mem);
  Distribution forecast_cpu(int h) const { return cpu_.forecast(h); }
  Distribution forecast_mem(int h) const { return mem_.forecast(h); }
  double prob_cpu_stay_below(double level, int window) const { return cpu_.prob_stay_below(level, window); }
  double prob_mem_stay_below(double level, int window) const { return mem_.prob_stay_below(level, window); }
  // From the joint chain: P(both below their levels for the next `window` steps), and
  // P(memory at or above `level` h steps ahead) given the current joint state.
  double prob_both_stay_below(double cpu_level, double mem_level, int window) const {
    return joint_.ProbBothStayBelow(cpu_level, mem_level, window);
  }
  double prob_mem_at_least(double level, int h) const { return joint_.ProbMemAtLeast(level, h); }
  const SeriesForecaster& cpu() const { return cpu_; }
  const SeriesForecaster& mem() const { return mem_; }
  const JointMarkovChain& joint() const { return joint_; }
  size_t memory_bytes() const;

 private:
  double max_cpu_, max_mem_;
  SeriesForecaster cpu_, mem_;
  JointMarkovChain joint_;
};

}  // namespace lull::forecast
