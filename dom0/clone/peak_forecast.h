// lull::clone::PeakForecast - the demand the shadow scheduler provisions for.
//
// The forecast ensemble (forecast/series_forecaster.h) minimises absolute error, so its
// mean smooths a recurring step: on Azure VM 737498 (a daily 4x spike at the same time of
// day) it predicts 0.22 for a step that comes in at 0.58, while its seasonal member alone
// predicts 0.58 two steps ahead. For provisioning, missing a spike costs far more than an
// idle shadow, so the level used is the highest forecast among the trustworthy members:
// those ready, whose running MAE at this horizon's bucket is within 2x (+0.005) of the
// best member's; the ensemble's p90 is a floor. confidence = warm-up factor
// min(1, samples / 24) / (1 + MAE of the chosen member / 0.05), the ensemble's formula.
#pragma once

#include "forecast/series_forecaster.h"

namespace lull::clone {

struct PeakForecast {
  double level = 0;       // utilization, in the series' units
  double confidence = 0;
  int member = -1;        // index of the chosen model, -1 = the ensemble's p90
};

PeakForecast ForecastPeak(const forecast::SeriesForecaster& f, int horizon);

}  // namespace lull::clone
