// Baseline predictors: last value, simple moving average, exponentially weighted moving
// average (and a moving median, an ensemble member that is not one of the named baselines). They are the yardsticks the issue names (the ensemble must beat the best of
// them) and cheap members of the ensemble.
//
// All forecast a flat line (the same mean for every horizon). Their sigma is a running
// RMS of their own 1-step error, widened by sqrt(h) - a random-walk assumption that is
// rough but honest for flat forecasts.
//
// Ewma adapts its smoothing factor online by a gradient step on the squared 1-step error
// (the derivative of the smoothed level with respect to alpha is tracked recursively),
// clamped to [kMinAlpha, kMaxAlpha].
#pragma once

#include "forecast/model.h"

namespace lull::forecast {

// Running RMS of a model's 1-step error; shared by the baselines.
class ErrorScale {
 public:
  void Add(double err) {
    n_ = n_ < 1e9 ? n_ + 1 : n_;
    const double a = n_ < 50 ? 1.0 / n_ : 0.02;
    ms_ += a * (err * err - ms_);
  }
  double Sigma(int h) const;
 private:
  double ms_ = 0;
  double n_ = 0;
};

class LastValue final : public Model {
 public:
  const char* name() const override { return "last"; }
  void Observe(double x, const History& hist, bool imputed) override;
  PointForecast Forecast(int h, const History& hist) const override;
  size_t memory_bytes() const override { return sizeof(*this); }
 private:
  double last_ = 0;
  bool have_ = false;
  ErrorScale err_;
};

class MovingAverage final : public Model {
 public:
  explicit MovingAverage(int window = 12) : window_(window < 1 ? 1 : window) {}
  const char* name() const override { return "sma"; }
  void Observe(double x, const History& hist, bool imputed) override;
  PointForecast Forecast(int h, const History& hist) const override;
  size_t memory_bytes() const override { return sizeof(*this); }
 private:
  double Mean(const History& hist) const;
  int window_;
  double pred_ = 0;  // the mean forecast made at the previous step
  bool have_ = false;
  ErrorScale err_;
};

// Median of the newest `window` samples: the MAE-optimal flat forecast when the series
// is spiky (Bitbrains CPU), where a mean is dragged by every spike.
class MovingMedian final : public Model {
 public:
  static constexpr int kMaxWindow = 31;
  explicit MovingMedian(int window = 9) : window_(window < 1 ? 1 : (window > kMaxWindow ? kMaxWindow : window)) {}
  const char* name() const override { return "median"; }
  void Observe(double x, const History& hist, bool imputed) override;
  PointForecast Forecast(int h, const History& hist) const override;
  size_t memory_bytes() const override { return sizeof(*this); }
 private:
  int window_;
  double pred_ = 0;
  bool have_ = false;
  ErrorScale err_;
};

class Ewma final : public Model {
 public:
  static constexpr double kMinAlpha = 0.02, kMaxAlpha = 1.0;
  explicit Ewma(double alpha = 0.5, double learning_rate = 0.05, bool adaptive = true)
      : alpha_(alpha), lr_(learning_rate), adaptive_(adaptive) {}
  const char* name() const override { return "ewma"; }
  void Observe(double x, const History& hist, bool imputed) override;
  PointForecast Forecast(int h, const History& hist) const override;
  size_t memory_bytes() const override { return sizeof(*this); }
  double alpha() const { return alpha_; }
 private:
  double alpha_;
  double lr_;
  bool adaptive_;
  double level_ = 0;
  double dlevel_ = 0;  // d level / d alpha
  double ms_ = 1e-4;   // running mean square error, normalises the gradient step
  bool have_ = false;
  ErrorScale err_;
};

}  // namespace lull::forecast
