#include "dom0/clone/peak_forecast.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace lull::clone {

PeakForecast ForecastPeak(const forecast::SeriesForecaster& f, int h) {
  h = std::max(1, h);
  const int bucket = h <= 1 ? 0 : (h <= 5 ? 1 : 2);
  const forecast::Distribution ens = f.forecast(h);
  const double warm = std::min(1.0, static_cast<double>(f.samples()) / 24.0);
  PeakForecast p;
  p.level = ens.p90;
  p.confidence = ens.confidence;
  double best = std::numeric_limits<double>::infinity();
  for (int i = 0; i < forecast::SeriesForecaster::kModels; ++i) {
    if (f.model(i).ready(f.history())) best = std::min(best, f.model_mae(i, bucket));
  }
  if (!std::isfinite(best)) return p;
  for (int i = 0; i < forecast::SeriesForecaster::kModels; ++i) {
    const auto& m = f.model(i);
    if (!m.ready(f.history())) continue;
    double mae = f.model_mae(i, bucket);
    if (mae > 2 * best + 0.005) continue;
    double v = m.Forecast(h, f.history()).mean;
    if (v > p.level) {
      p.level = v;
      p.member = i;
      p.confidence = warm / (1 + mae / 0.05);
    }
  }
  p.level = std::clamp(p.level, 0.0, 1.0);
  return p;
}

}  // namespace lull::clone
