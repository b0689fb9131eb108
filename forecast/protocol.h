// lull::forecast::protocol - the numbers of the rolling-origin evaluation protocol, shared
// by lull-forecast-eval, the benchmark and (by value, in its command line) the
// statsmodels reference, so that "the same protocol" is one definition.
// docs/forecast.md explains each choice.
#pragma once

#include <vector>

namespace lull::forecast::protocol {

constexpr int kRefit = 144;           // ARIMA refit period, steps (ours and statsmodels')
constexpr int kWindow = 512;          // ARIMA fit window, steps
constexpr int kArimaP = 2, kArimaD = 0, kArimaQ = 1;
constexpr int kWarmup = 288;          // one day of 5-min samples
constexpr int kWarmupPlanetLab = 72;  // PlanetLab series are one day long
constexpr double kLullLevel = 0.1;    // inactivity question: stay below 10 % ...
constexpr int kLullWindow = 12;       // ... for the next 12 steps (1 h at 5 min)
constexpr int kHorizons[] = {1, 3, 12};

// Our ARIMA alone on series y exactly as statsmodels_ref.py runs statsmodels: fit at
// `warmup` on the newest kWindow samples, refit every kRefit steps, filter every step,
// forecast h = 1, 3, 12 at every origin t >= warmup - 1. NaN samples are imputed with
// the 1-step forecast. Returns the sum of all forecasts (so the work cannot be elided).
double RunArima(const std::vector<double>& y, int warmup);

}  // namespace lull::forecast::protocol
