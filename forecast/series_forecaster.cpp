#include "forecast/series_forecaster.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

namespace lull::forecast {
namespace {

constexpr std::array<double, 4> kZ = {0.0, 1.2815516, 1.6448536, 2.3263479};  // normal quantiles of kTaus

std::string Num(double v) {
  char b[48];
  std::snprintf(b, sizeof b, "%.6g", v);
  return b;
}

}  // namespace

SeriesForecaster::SeriesForecaster(const EnsembleConfig& cfg)
    : cfg_(cfg),
      sma_(cfg.sma_window),
      ewma_(cfg.ewma_alpha),
      arima_(cfg.arima),
      seasonal_(cfg.seasonal),
      markov_(cfg.markov),
      median_(cfg.median_window) {
  cfg_.inactivity_window = std::clamp(cfg_.inactivity_window, 1, kMaxPending);
}

const Model& SeriesForecaster::model(int i) const {
  return const_cast<SeriesForecaster*>(this)->mutable_model(i);
}

Model& SeriesForecaster::mutable_model(int i) {
  switch (i) {
    case 0: return last_;
    case 1: return sma_;
    case 2: return ewma_;
    case 3: return arima_;
    case 4: return seasonal_;
    case 5: return markov_;
    default: return median_;
  }
}

Status SeriesForecaster::Check(double value, double max_value, double* out) {
  if (std::isnan(value)) {
    *out = value;
    return Status::Ok();
  }
  if (!std::isfinite(value) || value < 0 || value > max_value)
    return Status::InvalidArgument("utilization sample " + Num(value) +
                                   " is outside [0, " + Num(max_value) +
                                   "] (fraction of 1.0; NaN marks a missing step)");
  *out = std::min(value, 1.0);
  return Status::Ok();
}

void SeriesForecaster::WeightsEg(int b, const bool* ready, int nready, double* w) const {
  double mx = -1e300, sum = 0;
  for (int i = 0; i < kModels; ++i) if (ready[i]) mx = std::max(mx, logw_[b][i]);
  for (int i = 0; i < kModels; ++i) sum += w[i] = ready[i] ? std::exp(logw_[b][i] - mx) : 0.0;
  for (int i = 0; i < kModels; ++i)
    w[i] = ready[i] ? (1 - cfg_.share) * w[i] / sum + cfg_.share / nready : 0.0;
}

void SeriesForecaster::WeightsInverse(int b, const bool* ready, double* w) const {
  double best = std::numeric_limits<double>::infinity(), sum = 0;
  for (int i = 0; i < kModels; ++i)
    if (ready[i] && nerr_[b][i] >= 3) best = std::min(best, err_[b][i]);
  for (int i = 0; i < kModels; ++i) {
    if (!ready[i]) { w[i] = 0; continue; }
    if (nerr_[b][i] < 3 || !std::isfinite(best)) {
      // Not scored yet: a small prior weight, so a new model can earn its place.
      w[i] = std::isfinite(best) ? 0.05 : 1.0;
    } else {
      w[i] = std::exp(-cfg_.kappa * (err_[b][i] / std::max(best, 1e-9) - 1.0));
    }
    sum += w[i];
  }
  for (int i = 0; i < kModels; ++i) w[i] /= sum;
}

void SeriesForecaster::Weights(int b, double* w) const {
  bool ready[kModels];
  int nready = 0;
  for (int i = 0; i < kModels; ++i) nready += ready[i] = model(i).ready(hist_);
  if (nready == 0) {  // nothing ready: last value
    for (int i = 0; i < kModels; ++i) w[i] = i == 0;
    return;
  }
  double we[kModels], wi[kModels];
  WeightsEg(b, ready, nready, we);
  WeightsInverse(b, ready, wi);
  Blend(b, we, wi, w);
}

void SeriesForecaster::Blend(int b, const double* we, const double* wi, double* w) const {
  using W = EnsembleConfig::Weighting;
  if (cfg_.weighting != W::kAuto) {
    const double* src = cfg_.weighting == W::kExpGradient ? we : wi;
    std::copy(src, src + kModels, w);
    return;
  }
  const double e0 = comb_err_[b][0], e1 = comb_err_[b][1], best = std::max(std::min(e0, e1), 1e-9);
  double a = 0.5;
  if (nres_[b] >= 10) {
    const double x0 = std::exp(-cfg_.kappa * (e0 / best - 1)), x1 = std::exp(-cfg_.kappa * (e1 / best - 1));
    a = x0 / (x0 + x1);
  }
  for (int i = 0; i < kModels; ++i) w[i] = a * we[i] + (1 - a) * wi[i];
}

double SeriesForecaster::CachedMean(int b, double* sigma) const {
  double m = 0, s = 0;
  for (int i = 0; i < kModels; ++i) {
    const double w = wcache_[b][i];
    if (w <= 0) continue;
    m += w * fc_[i][b].mean;
    s += w * fc_[i][b].sigma;
  }
  if (sigma) *sigma = s;
  return m;
}

double SeriesForecaster::weight(int i, int horizon) const {
  if (cache_valid_) return wcache_[Bucket(horizon)][i];
  double w[kModels];
  Weights(Bucket(horizon), w);
  return w[i];
}

double SeriesForecaster::Mean(int h, const double* w, double* sigma) const {
  double m = 0, s = 0;
  for (int i = 0; i < kModels; ++i) {
    if (w[i] <= 0) continue;
    const PointForecast f = model(i).Forecast(h, hist_);
    m += w[i] * f.mean;
    s += w[i] * f.sigma;
  }
  if (sigma) *sigma = s;
  return m;
}

void SeriesForecaster::Score(double x) {
  for (int b = 0; b < kBuckets; ++b) {
    const int H = kHorizons[b];
    if (step_ < static_cast<size_t>(H)) continue;
    const Pending& p = pend_[(step_ - H) % kMaxPending];
    if (!p.made) continue;
    const double a = cfg_.error_rate;
    for (int i = 0; i < kModels; ++i) {
      if (!(p.ready_mask[b] >> i & 1)) continue;
      const double e = x - p.model[b][i];
      const double pin = e >= 0 ? 0.9 * e : -0.1 * e;  // pinball at tau 0.9 on the mean
      const double r = nerr_[b][i] < 1.0 / a ? 1.0 / (nerr_[b][i] + 1) : a;
      err_[b][i] += r * (std::abs(e) - err_[b][i]);
      pin_[b][i] += r * (pin - pin_[b][i]);
      ++nerr_[b][i];
    }
    // Ensemble residual: quantile offsets by pinball-loss gradient steps.
    const double res = x - p.ens[b];
    const double rs = nres_[b] < 1.0 / a ? 1.0 / (nres_[b] + 1) : a;
    comb_err_[b][0] += rs * (std::abs(x - p.ens_eg[b]) - comb_err_[b][0]);
    comb_err_[b][1] += rs * (std::abs(x - p.ens_inv[b]) - comb_err_[b][1]);
    if (nres_[b] > 0) {
      const double res_eg = x - p.ens_eg[b];
      // Exponentiated gradient on |yhat - y|: d/dw_m = sign(yhat - y) f_m (shifted by
      // yhat, which the simplex makes free), in units of the recent ensemble MAE.
      const double sg = res_eg < 0 ? 1.0 : (res_eg > 0 ? -1.0 : 0.0);
      const double unit = std::max(scale_[b], 1e-4);
      double mx = -1e300;
      for (int i = 0; i < kModels; ++i) {
        if (!(p.ready_mask[b] >> i & 1)) continue;
        logw_[b][i] -= cfg_.eta * sg * (p.model[b][i] - p.ens_eg[b]) / unit;
        mx = std::max(mx, logw_[b][i]);
      }
      for (int i = 0; i < kModels; ++i) logw_[b][i] = std::max(logw_[b][i] - mx, -30.0);
    }
    scale_[b] += rs * (std::abs(res) - scale_[b]);
    const double lr = cfg_.quantile_lr * std::max(scale_[b], 1e-4);
    static constexpr std::array<double, 4> kStep = {0.1, 0.3, 0.5, 1.0};
    for (int k = 0; k < 4; ++k) {
      const double tau = kTaus[k];
      if (nres_[b] == 0) qoff_[b][k] = 0;
      qoff_[b][k] += lr * kStep[k] * (tau - (res < qoff_[b][k] ? 1.0 : 0.0));
    }
    ++nres_[b];
  }
}

void SeriesForecaster::ScoreInactivity(double x) {
  const int W = cfg_.inactivity_window;
  for (int k = 1; k <= W; ++k) {
    if (step_ < static_cast<size_t>(k)) break;
    InactPending& p = inact_[(step_ - k) % kMaxPending];
    if (!p.made) continue;
    if (!(x < cfg_.inactivity_level)) p.alive = false;
    if (k == W) {
      const double y = p.alive ? 1.0 : 0.0;
      brier_markov_ += (p.p_markov - y) * (p.p_markov - y);
      brier_lstm_ += (p.p_lstm - y) * (p.p_lstm - y);
      ++nbrier_;
      p.made = false;
    }
  }
}

Status SeriesForecaster::observe(double value) {
  double x;
  Status st = Check(value, cfg_.max_value, &x);
  if (!st.ok()) return st;
  const bool missing = std::isnan(x);
  if (missing) {
    if (hist_.size() == 0) {  // nothing to impute from: just let time pass
      ++step_;
      pend_[(step_ - 1) % kMaxPending].made = false;
      inact_[(step_ - 1) % kMaxPending].made = false;
      return Status::Ok();
    }
    x = std::clamp(CachedMean(0, nullptr), 0.0, 1.0);
  } else {
    Score(x);
    if (cfg_.lstm) ScoreInactivity(x);
    ++real_;
  }
  hist_.Push(x);
  for (int i = 0; i < kModels; ++i) mutable_model(i).Observe(x, hist_, missing);
  if (cfg_.lstm) cfg_.lstm->Step(&lstm_state_, x);

  // Remember this step's forecasts for scoring H steps later, and keep them (and each
  // bucket's weights) for forecast(): nothing they depend on changes before the next
  // observe, so forecast() at a tracked horizon is a weighted sum, not a model walk.
  Pending& p = pend_[step_ % kMaxPending];
  p.made = true;
  unsigned char mask = 0;
  for (int i = 0; i < kModels; ++i) {
    const Model& m = model(i);
    if (!m.ready(hist_)) continue;
    m.ForecastMany(kHorizons.data(), kBuckets, hist_, fc_[i].data());
    mask |= static_cast<unsigned char>(1u << i);
  }
  bool ready[kModels];
  int nready = 0;
  for (int i = 0; i < kModels; ++i) nready += ready[i] = mask >> i & 1;
  for (int b = 0; b < kBuckets; ++b) {
    double* w = wcache_[b].data();
    double we[kModels], wi[kModels];
    if (nready > 0) {
      WeightsEg(b, ready, nready, we);
      WeightsInverse(b, ready, wi);
      Blend(b, we, wi, w);
    } else {
      for (int i = 0; i < kModels; ++i) w[i] = we[i] = wi[i] = i == 0;
    }
    double ens = 0, ens_eg = 0, ens_inv = 0;
    for (int i = 0; i < kModels; ++i) {
      p.model[b][i] = ready[i] ? static_cast<float>(fc_[i][b].mean) : 0.f;
      if (!ready[i]) continue;
      ens += w[i] * fc_[i][b].mean;
      ens_eg += we[i] * fc_[i][b].mean;
      ens_inv += wi[i] * fc_[i][b].mean;
    }
    if (nready == 0) ens = ens_eg = ens_inv = x;  // nothing ready: the last value
    p.ready_mask[b] = mask;
    p.ens[b] = static_cast<float>(ens);
    p.ens_eg[b] = static_cast<float>(ens_eg);
    p.ens_inv[b] = static_cast<float>(ens_inv);
  }
  cache_valid_ = true;
  if (cfg_.lstm) {
    InactPending& q = inact_[step_ % kMaxPending];
    q.p_markov = static_cast<float>(markov_.ProbStayBelow(cfg_.inactivity_level, cfg_.inactivity_window));
    q.p_lstm = static_cast<float>(cfg_.lstm->Prob(lstm_state_, cfg_.inactivity_level, cfg_.inactivity_window));
    q.alive = true;
    q.made = true;
  }
  ++step_;
  return Status::Ok();
}

Distribution SeriesForecaster::forecast(int h) const {
  h = std::max(1, h);
  const int b = Bucket(h);
  double sigma, mean;
  if (cache_valid_ && h == kHorizons[b]) {
    mean = CachedMean(b, &sigma);
  } else {  // an untracked horizon (or nothing observed yet): ask the models
    double w[kModels];
    if (cache_valid_) std::copy(wcache_[b].begin(), wcache_[b].end(), w);
    else Weights(b, w);
    mean = Mean(h, w, &sigma);
  }
  Distribution d;
  d.mean = std::clamp(mean, 0.0, 1.0);
  double q[4];
  if (nres_[b] >= 20) {
    const double s = std::sqrt(static_cast<double>(h) / kHorizons[b]);
    for (int k = 0; k < 4; ++k) q[k] = mean + qoff_[b][k] * s;
  } else {
    for (int k = 0; k < 4; ++k) q[k] = mean + kZ[k] * sigma;
  }
  for (int k = 1; k < 4; ++k) q[k] = std::max(q[k], q[k - 1]);
  for (double& v : q) v = std::clamp(v, 0.0, 1.0);
  d.p50 = q[0], d.p90 = q[1], d.p95 = q[2], d.p99 = q[3];
  const double warm = std::min(1.0, static_cast<double>(real_) / std::max(1, cfg_.warmup));
  const double mae = nres_[b] > 0 ? scale_[b] : 0.1;
  d.confidence = hist_.size() == 0 ? 0.0 : warm / (1.0 + mae / 0.05);
  return d;
}

double SeriesForecaster::markov_prob_stay_below(double level, int window) const {
  return markov_.ProbStayBelow(level, window);
}

double SeriesForecaster::lstm_prob_stay_below(double level, int window) const {
  if (!cfg_.lstm) return std::numeric_limits<double>::quiet_NaN();
  return cfg_.lstm->Prob(lstm_state_, level, window);
}

bool SeriesForecaster::using_lstm() const {
  return cfg_.lstm && nbrier_ >= 20 && brier_lstm_ < brier_markov_;
}

double SeriesForecaster::prob_stay_below(double level, int window_steps) const {
  if (window_steps < 1) return 1.0;
  if (using_lstm()) return lstm_prob_stay_below(level, window_steps);
  return markov_prob_stay_below(level, window_steps);
}

size_t SeriesForecaster::memory_bytes() const {
  // The object itself plus what its members hold on the heap (the Markov chain's tables).
  return sizeof(*this) + markov_.memory_bytes() - sizeof(markov_);
}

}  // namespace lull::forecast
