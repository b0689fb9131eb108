// lull::forecast::Distribution - what every forecast returns.
//
// Utilization is a fraction of the guest's allocation (1.0 = 100 %). The quantiles are of
// the predicted value at one horizon (not of a path); they are non-decreasing
// (p50 <= p90 <= p95 <= p99) and lie in [0, 1]. `confidence` in [0, 1] says how much the
// predictor trusts itself: 0 before it has seen enough samples, and lower the larger its
// recent error at this horizon (see docs/forecast.md for the formula).
#pragma once

namespace lull::forecast {

struct Distribution {
  double mean = 0, p50 = 0, p90 = 0, p95 = 0, p99 = 0;  // utilization, fraction of 1.0
  double confidence = 0;                                // 0..1, how much to trust it
};

}  // namespace lull::forecast
