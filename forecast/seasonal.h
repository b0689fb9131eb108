// lull::forecast::Seasonal - the repeating-signature predictor (PRESS-style).
//
// Every `detect_every` steps it looks for a dominant period in the series' History by
// autocorrelation over lags [min_period, size/2]: the lag with the highest ACF that is a
// local maximum and above `min_acf` wins. When a period P is known, the forecast for h
// steps ahead is the mean of the values at the same phase in the last one or two periods
// (x[t+h-P], x[t+h-2P]). Without a period the model is not ready() and gets no weight in
// the ensemble. Detection is O(n * n/2) but amortised over detect_every steps.
#pragma once

#include "forecast/model.h"

namespace lull::forecast {

struct SeasonalConfig {
  int min_period = 4;
  int detect_every = 256;
  double min_acf = 0.3;
};

// Dominant period of x[0..n) by autocorrelation, 0 if none passes min_acf. *acf_out
// receives the winning correlation. Exposed for tests and the evaluation.
int DetectPeriod(const double* x, size_t n, int min_period, double min_acf, double* acf_out);

class Seasonal final : public Model {
 public:
  explicit Seasonal(const SeasonalConfig& cfg = {}) : cfg_(cfg) {}
  const char* name() const override { return "seasonal"; }
  void Observe(double x, const History& hist, bool imputed) override;
  PointForecast Forecast(int h, const History& hist) const override;
  bool ready(const History& hist) const override {
    return period_ > 0 && hist.size() >= static_cast<size_t>(period_) + 1;
  }
  size_t memory_bytes() const override { return sizeof(*this); }
  int period() const { return period_; }

 private:
  double PredictAt(int h, const History& hist) const;
  SeasonalConfig cfg_;
  int period_ = 0;
  int since_detect_ = 0;
  bool detected_once_ = false;
  double pred_ = 0;  // 1-step forecast made at the previous step, for the error scale
  double ms_ = 0;
  bool have_pred_ = false;
};

}  // namespace lull::forecast
