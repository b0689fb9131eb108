#include "forecast/metrics.h"

#include <cmath>

namespace lull::forecast {

void ForecastMetrics::Add(double y, const Distribution& d, double naive_mae) {
  const double e = y - d.mean;
  abs_ += std::abs(e);
  sq_ += e * e;
  scaled_ += naive_mae > 0 ? std::abs(e) / naive_mae : 0;
  pin_ += 0.25 * (Pinball(y, d.p50, 0.5) + Pinball(y, d.p90, 0.9) + Pinball(y, d.p95, 0.95) +
                  Pinball(y, d.p99, 0.99));
  cov_ += y <= d.p95 + 1e-12;
  under_ += y > d.mean + 1e-12;
  ++n_;
}

void ForecastMetrics::Merge(const ForecastMetrics& o) {
  n_ += o.n_, cov_ += o.cov_, under_ += o.under_;
  abs_ += o.abs_, sq_ += o.sq_, scaled_ += o.scaled_, pin_ += o.pin_;
}

double ForecastMetrics::rmse() const { return n_ ? std::sqrt(sq_ / n_) : 0; }

}  // namespace lull::forecast
