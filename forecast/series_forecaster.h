// lull::forecast::SeriesForecaster - the adaptive ensemble over one utilization series.
//
// Members: last value, moving average, adaptive EWMA, ARIMA, seasonal signature, the
// Markov chain and a moving median (each a forecast::Model over a shared History). Per step, observe():
//   1. validates the sample (policy below);
//   2. scores the forecasts every model made 1, 3 and 12 steps ago against it: a running
//      absolute error and pinball loss (tau 0.9) per model and horizon bucket;
//   3. updates the models (EWMA alpha by a gradient step, ARIMA refits on schedule/drift);
//   4. makes and stores the new 1/3/12-step forecasts.
// forecast(h) combines the ready models with the weights of the bucket nearest h
// (1 | 2..5 | 6+). Two combiners learn online: exponentiated-gradient steps on the
// combined absolute error (w_m *= exp(-eta * sign(yhat - y) * (f_m - yhat) / MAE), mixed
// with `share` of uniform) and inverse error (w_m ~ exp(-kappa (err_m / err_best - 1))).
// By default (kAuto) their weight vectors are blended by the same softmax over the two
// combiners' recent MAE, so the ensemble follows whichever combines better. The quantiles are the ensemble mean plus
// offsets learnt online from the ensemble's own residuals by pinball-loss gradient steps
// (adaptive conformal style), scaled by sqrt(h / H) off the tracked horizons; before 20
// residuals exist they come from the models' own sigmas (normal approximation).
// confidence = min(1, n / warmup) / (1 + recent MAE at that horizon / 0.05).
//
// Input policy (documented contract):
//   NaN                 -> missing step: History gets the ensemble's 1-step mean so lags
//                          stay aligned with time; no model learns from it, no error is
//                          scored. Returns OK.
//   (1, max_value]      -> clamped to 1.0 (Bitbrains reports CPU up to ~112 %). OK.
//   < 0, > max_value, +-inf -> InvalidArgument naming the value; state untouched.
// Gaps and timestamps are the caller's business (one call per control step); see
// forecast/traces.h for resampling irregular traces into steps with NaN for gaps.
//
// prob_stay_below: the Markov chain's stay probability; when an InactivityLstm is given
// in the config, both are scored online (Brier score at inactivity_level /
// inactivity_window) and the one with the lower running score answers.
//
// Not thread-safe; one instance per series, one thread at a time. No exceptions.
#pragma once

#include <array>
#include <cstddef>

#include "forecast/arima.h"
#include "forecast/baselines.h"
#include "forecast/distribution.h"
#include "forecast/history.h"
#include "forecast/lstm.h"
#include "forecast/markov.h"
#include "forecast/seasonal.h"
#include "forecast/status.h"

namespace lull::forecast {

struct EnsembleConfig {
  ArimaConfig arima;
  SeasonalConfig seasonal;
  MarkovConfig markov;
  int sma_window = 12;
  int median_window = 9;
  double ewma_alpha = 0.5;
  double max_value = 1.25;       // above this a sample is rejected, (1, max] is clamped
  int warmup = 24;               // real samples before confidence can reach 1
  double error_rate = 0.03;      // EWMA rate of the per-model error trackers
  // How the models are combined: exponentiated-gradient steps on the ensemble's absolute
  // loss (learns a mixture, can beat every member), a softmax of each model's recent
  // MAE (tends to pick the best member), or kAuto: both run, and their weight vectors
  // are blended by the same softmax over the two combiners' own recent MAE.
  enum class Weighting { kAuto, kExpGradient, kInverseError };
  Weighting weighting = Weighting::kAuto;
  double eta = 0.3;              // exponentiated-gradient step, per unit of recent MAE
  double share = 0.02;           // fixed-share mixing, lets a dormant model come back
  double kappa = 6.0;            // sharpness of the inverse-error reweighting
  double quantile_lr = 1.0;      // pinball-gradient step, in units of the recent MAE
  const InactivityLstm* lstm = nullptr;  // optional, shared, must outlive the forecaster
  double inactivity_level = 0.1;
  int inactivity_window = 12;    // <= kMaxPending
};

class SeriesForecaster {
 public:
  static constexpr int kModels = 7;
  static constexpr int kBuckets = 3;
  static constexpr std::array<int, kBuckets> kHorizons = {1, 3, 12};
  static constexpr int kMaxPending = 12;
  static constexpr std::array<double, 4> kTaus = {0.5, 0.9, 0.95, 0.99};

  explicit SeriesForecaster(const EnsembleConfig& cfg = {});
  // Checks a sample against the input policy: OK with *out set to the value to use
  // (NaN stays NaN), or InvalidArgument naming the value.
  static Status Check(double value, double max_value, double* out);

  lull::Status observe(double value);
  Distribution forecast(int horizon_steps) const;  // horizon >= 1 (smaller is taken as 1)
  double prob_stay_below(double level, int window_steps) const;
  size_t memory_bytes() const;

  // Introspection for the evaluation and tests.
  const Model& model(int i) const;
  const History& history() const { return hist_; }
  double model_mae(int i, int bucket) const { return err_[bucket][i]; }
  double model_pinball(int i, int bucket) const { return pin_[bucket][i]; }
  double weight(int i, int horizon) const;
  double markov_prob_stay_below(double level, int window) const;
  double lstm_prob_stay_below(double level, int window) const;  // NaN without an LSTM
  bool using_lstm() const;
  size_t samples() const { return real_; }

 private:
  static int Bucket(int h) { return h <= 1 ? 0 : (h <= 5 ? 1 : 2); }
  void Weights(int bucket, double* w) const;
  void WeightsEg(int bucket, const bool* ready, int nready, double* w) const;
  void WeightsInverse(int bucket, const bool* ready, double* w) const;
  // w = the kAuto blend of the two combiners' weights (or one of them, per the config).
  void Blend(int bucket, const double* we, const double* wi, double* w) const;
  // Ensemble mean (and sigma) at horizon kHorizons[bucket] from the cached forecasts.
  double CachedMean(int bucket, double* sigma) const;
  double Mean(int h, const double* w, double* sigma) const;
  void Score(double x);
  void ScoreInactivity(double x);
  Model& mutable_model(int i);

  EnsembleConfig cfg_;
  History hist_;
  LastValue last_;
  MovingAverage sma_;
  Ewma ewma_;
  Arima arima_;
  Seasonal seasonal_;
  MarkovChain markov_;
  MovingMedian median_;

  struct Pending {  // forecasts made at one step
    std::array<std::array<float, kModels>, kBuckets> model{};
    std::array<float, kBuckets> ens{}, ens_eg{}, ens_inv{};
    std::array<unsigned char, kBuckets> ready_mask{};
    bool made = false;
  };
  std::array<Pending, kMaxPending> pend_{};
  // The models' forecasts at kHorizons and each bucket's weights, as of the last
  // observe (valid once one sample was taken); forecast() reads them.
  std::array<std::array<PointForecast, kBuckets>, kModels> fc_{};
  std::array<std::array<double, kModels>, kBuckets> wcache_{};
  bool cache_valid_ = false;
  size_t step_ = 0;   // all steps, including missing ones
  size_t real_ = 0;   // non-missing samples
  std::array<std::array<double, kModels>, kBuckets> err_{}, pin_{}, logw_{};
  std::array<std::array<int, kModels>, kBuckets> nerr_{};
  std::array<std::array<double, 4>, kBuckets> qoff_{};
  std::array<double, kBuckets> scale_{};
  std::array<int, kBuckets> nres_{};
  std::array<std::array<double, 2>, kBuckets> comb_err_{};  // MAE of EG, inverse combiners

  // Online Brier comparison of the two inactivity predictors.
  InactivityLstm::State lstm_state_;
  struct InactPending { float p_markov = 0, p_lstm = 0; bool alive = false, made = false; };
  std::array<InactPending, kMaxPending> inact_{};
  double brier_markov_ = 0, brier_lstm_ = 0;
  int nbrier_ = 0;
};

}  // namespace lull::forecast
