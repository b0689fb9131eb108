// lull::forecast::Model - the one interface every single predictor implements.
//
// Protocol, per control step: the owner appends the sample to the series' History, then
// calls Observe(x, hist, imputed) on each model with the same x (hist.Lag(0) == x).
// `imputed` is true when the step was missing and x is the owner's own guess; models
// then advance their clocks but must not learn from x (no counts, no error statistics).
// Forecast(h, hist) returns the model's mean for h steps ahead (h >= 1) and its own
// estimate of the spread (standard deviation) of that prediction. Models hold no heap
// unless memory_bytes() says so; they never throw.
#pragma once

#include <cstddef>

#include "forecast/history.h"

namespace lull::forecast {

struct PointForecast {
  double mean = 0;
  double sigma = 0;  // the model's own spread estimate; 0 if it has none yet
};

class Model {
 public:
  virtual ~Model() = default;
  virtual const char* name() const = 0;
  virtual void Observe(double x, const History& hist, bool imputed) = 0;
  virtual PointForecast Forecast(int h, const History& hist) const = 0;
  // Forecasts for n increasing horizons at once; models whose multi-step forecast is a
  // recursion (ARIMA, Markov) override it to walk the recursion once.
  virtual void ForecastMany(const int* hs, int n, const History& hist, PointForecast* out) const {
    for (int i = 0; i < n; ++i) out[i] = Forecast(hs[i], hist);
  }
  // False while the model has too little data to be worth any weight.
  virtual bool ready(const History& hist) const { return hist.size() > 0; }
  virtual size_t memory_bytes() const = 0;
};

}  // namespace lull::forecast
