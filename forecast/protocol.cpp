#include "forecast/protocol.h"

#include <algorithm>
#include <cmath>

#include "forecast/arima.h"

namespace lull::forecast::protocol {

double RunArima(const std::vector<double>& y, int warmup) {
  ArimaConfig ac;
  ac.p = kArimaP, ac.d = kArimaD, ac.q = kArimaQ;
  ac.min_fit = warmup, ac.refit_every = kRefit, ac.window = kWindow;
  // statsmodels refits on a fixed schedule only; so does this run.
  ac.drift_factor = 1e300;
  Arima a(ac);
  History h;
  double sink = 0;
  PointForecast f[3];
  for (size_t t = 0; t < y.size(); ++t) {
    const bool miss = std::isnan(y[t]);
    const double v = miss ? (h.size() ? std::clamp(a.Forecast(1, h).mean, 0.0, 1.0) : 0.0)
                          : std::min(y[t], 1.0);
    h.Push(v);
    a.Observe(v, h, miss);
    if (static_cast<int>(t) >= warmup - 1) {
      a.ForecastMany(kHorizons, 3, h, f);
      sink += f[0].mean + f[1].mean + f[2].mean;
    }
  }
  return sink;
}

}  // namespace lull::forecast::protocol
