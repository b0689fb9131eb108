#include "forecast/seasonal.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <Eigen/Dense>

namespace lull::forecast {

int DetectPeriod(const double* x, size_t n, int min_period, double min_acf, double* acf_out) {
  if (acf_out) *acf_out = 0;
  if (n < static_cast<size_t>(4 * min_period) || min_period < 1) return 0;
  double mean = 0;
  for (size_t i = 0; i < n; ++i) mean += x[i];
  mean /= n;
  double var = 0;
  for (size_t i = 0; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
  if (var <= 1e-12 * n) return 0;
  const size_t max_lag = n / 2;
  std::vector<double> acf(max_lag + 2, 0.0);
  // Centre once, then one vectorised dot product per lag (Eigen's dot keeps several
  // partial sums in SIMD registers; the plain loop is one long dependency chain).
  Eigen::VectorXd c = Eigen::Map<const Eigen::VectorXd>(x, static_cast<Eigen::Index>(n)).array() - mean;
  for (size_t lag = 1; lag <= max_lag + 1 && lag < n; ++lag) {
    const Eigen::Index len = static_cast<Eigen::Index>(n - lag);
    acf[lag] = c.tail(len).dot(c.head(len)) / var;
  }
  int best = 0;
  double best_acf = min_acf;
  for (size_t lag = min_period; lag <= max_lag; ++lag) {
    // A local maximum: a slowly decaying ACF (trend, random walk) has none at small lags.
    if (acf[lag] > best_acf && acf[lag] >= acf[lag - 1] && acf[lag] >= acf[lag + 1]) {
      best = static_cast<int>(lag);
      best_acf = acf[lag];
    }
  }
  if (acf_out) *acf_out = best ? best_acf : 0;
  return best;
}

double Seasonal::PredictAt(int h, const History& hist) const {
  const int P = period_;
  // Lag (in History terms) of the same phase one period back: t+h-P is lag P-h; for h>P
  // wrap into the last period.
  const int hh = ((h - 1) % P) + 1;
  const size_t lag1 = static_cast<size_t>(P - hh);
  double v = hist.Lag(lag1);
  if (hist.size() >= lag1 + P + 1) v = 0.5 * (v + hist.Lag(lag1 + P));
  return v;
}

void Seasonal::Observe(double x, const History& hist, bool imputed) {
  if (have_pred_ && !imputed) ms_ += 0.02 * ((x - pred_) * (x - pred_) - ms_);
  // Detect once enough history exists for the shortest period, then every detect_every
  // steps: the O(n^2) scan is amortised, and periods do not change quickly.
  const bool first = period_ == 0 && !detected_once_ && hist.size() >= static_cast<size_t>(8 * cfg_.min_period);
  if (++since_detect_ >= cfg_.detect_every || first) {
    detected_once_ = true;
    since_detect_ = 0;
    double buf[History::kCapacity];
    const size_t n = hist.size();
    hist.CopyLast(n, buf);
    const int p = DetectPeriod(buf, n, cfg_.min_period, cfg_.min_acf, nullptr);
    if (p != period_) ms_ = 0, have_pred_ = false;
    period_ = p;
  }
  if (ready(hist)) {
    pred_ = PredictAt(1, hist);
    have_pred_ = true;
  }
}

PointForecast Seasonal::Forecast(int h, const History& hist) const {
  if (!ready(hist)) return {hist.size() ? hist.Lag(0) : 0.0, 0.0};
  return {PredictAt(std::max(1, h), hist), std::sqrt(ms_)};
}

}  // namespace lull::forecast
