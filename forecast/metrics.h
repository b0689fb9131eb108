// Accuracy metrics of the rolling-origin evaluation, as online accumulators.
//
// ForecastMetrics takes (actual, Distribution) pairs and reports MAE, RMSE, MASE (MAE
// divided by the in-sample MAE of the 1-step naive forecast, supplied by the caller),
// mean pinball loss over tau = 0.5/0.9/0.95/0.99, p95 coverage (share of actuals <= p95)
// and the under-prediction rate (share of actuals above the mean forecast - the costly
// direction for lull, which lends capacity on a low forecast).
// BrierScore is the mean squared error of a probability against a 0/1 outcome.
#pragma once

#include <cstddef>

#include "forecast/distribution.h"

namespace lull::forecast {

class ForecastMetrics {
 public:
  void Add(double actual, const Distribution& d, double naive_mae);
  void Merge(const ForecastMetrics& o);
  // Adds totals computed elsewhere (statsmodels_ref.py writes sums, not samples).
  void MergeSums(size_t n, double sum_abs, double sum_sq, double sum_scaled, double sum_pinball,
                 size_t covered, size_t under) {
    n_ += n, abs_ += sum_abs, sq_ += sum_sq, scaled_ += sum_scaled, pin_ += sum_pinball;
    cov_ += covered, under_ += under;
  }
  size_t n() const { return n_; }
  double mae() const { return n_ ? abs_ / n_ : 0; }
  double rmse() const;
  double mase() const { return n_ ? scaled_ / n_ : 0; }
  double pinball() const { return n_ ? pin_ / n_ : 0; }
  double coverage95() const { return n_ ? static_cast<double>(cov_) / n_ : 0; }
  double under_rate() const { return n_ ? static_cast<double>(under_) / n_ : 0; }

 private:
  size_t n_ = 0, cov_ = 0, under_ = 0;
  double abs_ = 0, sq_ = 0, scaled_ = 0, pin_ = 0;
};

class BrierScore {
 public:
  void Add(double p, bool outcome) {
    const double y = outcome ? 1.0 : 0.0;
    sum_ += (p - y) * (p - y);
    pos_ += outcome;
    ++n_;
  }
  void Merge(const BrierScore& o) { sum_ += o.sum_; n_ += o.n_; pos_ += o.pos_; }
  double score() const { return n_ ? sum_ / n_ : 0; }
  double base_rate() const { return n_ ? static_cast<double>(pos_) / n_ : 0; }
  size_t n() const { return n_; }

 private:
  double sum_ = 0;
  size_t n_ = 0, pos_ = 0;
};

// Pinball (quantile) loss of predicting q for the tau-quantile when y happened.
inline double Pinball(double y, double q, double tau) {
  return y >= q ? tau * (y - q) : (1 - tau) * (q - y);
}

}  // namespace lull::forecast
