#include "forecast/baselines.h"

#include <algorithm>
#include <cmath>

namespace lull::forecast {

double ErrorScale::Sigma(int h) const { return std::sqrt(ms_ * std::max(1, h)); }

void LastValue::Observe(double x, const History&, bool imputed) {
  if (have_ && !imputed) err_.Add(x - last_);
  last_ = x;
  have_ = true;
}

PointForecast LastValue::Forecast(int h, const History&) const {
  return {last_, err_.Sigma(h)};
}

double MovingAverage::Mean(const History& hist) const {
  const size_t n = std::min<size_t>(window_, hist.size());
  if (n == 0) return 0;
  double s = 0;
  for (size_t i = 0; i < n; ++i) s += hist.Lag(i);
  return s / n;
}

void MovingAverage::Observe(double x, const History& hist, bool imputed) {
  if (have_ && !imputed) err_.Add(x - pred_);
  pred_ = Mean(hist);
  have_ = true;
}

PointForecast MovingAverage::Forecast(int h, const History&) const {
  return {pred_, err_.Sigma(h)};
}

void MovingMedian::Observe(double x, const History& hist, bool imputed) {
  if (have_ && !imputed) err_.Add(x - pred_);
  const int n = static_cast<int>(std::min<size_t>(window_, hist.size()));
  double v[kMaxWindow] = {};
  for (int i = 0; i < n; ++i) v[i] = hist.Lag(i);
  std::nth_element(v, v + n / 2, v + n);
  pred_ = v[n / 2];
  if (n % 2 == 0 && n > 0) pred_ = 0.5 * (pred_ + *std::max_element(v, v + n / 2));
  have_ = true;
}

PointForecast MovingMedian::Forecast(int h, const History&) const {
  return {pred_, err_.Sigma(h)};
}

void Ewma::Observe(double x, const History&, bool imputed) {
  if (!have_) {
    level_ = x;
    dlevel_ = 0;
    have_ = true;
    return;
  }
  const double e = x - level_;  // 1-step error of the forecast made last step
  if (!imputed) {
    err_.Add(e);
    if (adaptive_) {
      // Squared error E = e^2, dE/dalpha = -2 e dlevel. Normalised step so the rate
      // does not depend on the series' scale.
      ms_ += 0.05 * (e * e - ms_);
      const double grad = -2.0 * e * dlevel_ / (ms_ + 1e-8);
      alpha_ = std::clamp(alpha_ - lr_ * 0.01 * grad, kMinAlpha, kMaxAlpha);
    }
  }
  // level' = level + alpha (x - level); its derivative in alpha:
  dlevel_ = (1 - alpha_) * dlevel_ + e;
  level_ += alpha_ * e;
}

PointForecast Ewma::Forecast(int h, const History&) const {
  return {level_, err_.Sigma(h)};
}

}  // namespace lull::forecast
