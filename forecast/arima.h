// lull::forecast::Arima - ARIMA(p,d,q) with a mean, fitted online.
//
// Fitting (FitArima): difference d times, take the sample mean, then Hannan-Rissanen
// (a long AR by least squares gives residual estimates; regress on lagged values and
// lagged residuals) followed by Gauss-Newton on the conditional sum of squares (CSS),
// rejecting any step that leaves the stationary/invertible region. Orders are limited to
// p, q <= kMaxOrder and d <= 2, which keeps the online state in fixed arrays.
//
// Online model: fitted on the newest `window` samples of the series' History once
// `min_fit` samples exist, refitted every `refit_every` steps, and refitted early when the
// error drifts (the running mean square of the 1-step residual exceeds `drift_factor`
// times the fitted innovation variance, after `drift_min_steps` steps). Between refits
// it filters: each new sample updates the residual lags. Multi-step forecasts use the
// ARMA recursion with future innovations zero; their sigma comes from the psi weights
// (integrated d times), so the intervals widen with the horizon as ARIMA theory says.
#pragma once

#include <array>
#include <vector>

#include "forecast/model.h"
#include "forecast/status.h"

namespace lull::forecast {

constexpr int kMaxOrder = 4;

struct ArimaFit {
  std::vector<double> ar;  // phi_1..phi_p
  std::vector<double> ma;  // theta_1..theta_q (x_t = ... + e_t + theta_1 e_{t-1} + ...)
  double mean = 0;         // mean of the d-times differenced series
  double sigma2 = 0;       // innovation variance (CSS / effective n)
  int iterations = 0;      // Gauss-Newton iterations used
  // Newest CSS residuals of the fitted window, e_{n-1} first (0 beyond q's reach): the
  // state the online model filters on from, so a refit need not re-filter the window.
  std::array<double, kMaxOrder> residuals{};
};

// Fits ARIMA(p,d,q) to y[0..n). Needs n >= 3 (p+q+d) + 10 and orders within the limits;
// otherwise InvalidArgument naming the value at fault.
// `init`, when given (a previous fit of the same orders), is a warm start: Gauss-Newton
// begins from whichever of it and the Hannan-Rissanen estimate has the lower CSS, which
// cuts the iterations of a scheduled refit to a few.
Status FitArima(const double* y, size_t n, int p, int d, int q, ArimaFit* out,
                const ArimaFit* init = nullptr);

struct ArimaConfig {
  int p = 2, d = 0, q = 1;
  int window = 512;         // samples used per fit (capped by History::kCapacity)
  int min_fit = 48;         // first fit once this many samples exist
  int refit_every = 96;     // scheduled refit period, steps
  double drift_factor = 2.0;
  int drift_min_steps = 24;
};

class Arima final : public Model {
 public:
  explicit Arima(const ArimaConfig& cfg = {});
  // InvalidArgument if the orders are out of range; the model then never fits.
  Status status() const;
  const char* name() const override { return "arima"; }
  void Observe(double x, const History& hist, bool imputed) override;
  PointForecast Forecast(int h, const History& hist) const override;
  void ForecastMany(const int* hs, int n, const History& hist, PointForecast* out) const override;
  bool ready(const History&) const override { return fitted_; }
  size_t memory_bytes() const override { return sizeof(*this); }
  int refits() const { return refits_; }
  const std::array<double, kMaxOrder>& ar() const { return phi_; }
  const std::array<double, kMaxOrder>& ma() const { return theta_; }

 private:
  void Refit(const History& hist);
  double Diff(const History& hist, size_t lag) const;  // d-th difference at lag
  double PredictNextZ(const History& hist) const;

  ArimaConfig cfg_;
  bool valid_;
  bool fitted_ = false;
  std::array<double, kMaxOrder> phi_{}, theta_{};
  std::array<double, kMaxOrder> elag_{};  // e_t, e_{t-1}, ...
  double mu_ = 0, sigma2_ = 0;
  double pred_z_ = 0;      // forecast of the next differenced value
  double drift_ms_ = 0;    // running mean square residual since the last fit
  int since_fit_ = 0;
  int refits_ = 0;
};

}  // namespace lull::forecast
