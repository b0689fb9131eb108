#include "forecast/arima.h"

#include <algorithm>
#include <cmath>
#include <string>

#include <Eigen/Dense>
#include <Eigen/Eigenvalues>

namespace lull::forecast {
namespace {

// Roots of z^k - c_1 z^{k-1} - ... - c_k all strictly inside the unit circle (sign = +1
// for an AR polynomial; for MA pass sign = -1 so the coefficients enter with a plus).
bool RootsInside(const double* c, int k, double sign, double limit = 0.995) {
  if (k == 0) return true;
  // Closed forms for the common low orders; the companion matrix only beyond.
  if (k == 1) return std::abs(c[0]) < limit;
  if (k == 2) {
    // z^2 - a z - b: both roots inside radius r iff |b| < r^2, a + b < r^2 - ... in the
    // scaled form: with a' = a / r, b' = b / r^2 the unit-circle triangle conditions hold.
    const double a = sign * c[0] / limit, b = sign * c[1] / (limit * limit);
    return std::abs(b) < 1 && a + b < 1 && b - a < 1;
  }
  Eigen::MatrixXd comp = Eigen::MatrixXd::Zero(k, k);
  for (int i = 0; i < k; ++i) comp(0, i) = sign * c[i];
  for (int i = 1; i < k; ++i) comp(i, i - 1) = 1;
  Eigen::EigenSolver<Eigen::MatrixXd> es(comp, false);
  for (int i = 0; i < k; ++i)
    if (std::abs(es.eigenvalues()[i]) >= limit) return false;
  return true;
}

// Least squares with a tiny ridge so that flat series do not make it singular.
Eigen::VectorXd SolveLs(const Eigen::MatrixXd& X, const Eigen::VectorXd& y) {
  Eigen::MatrixXd A = X.transpose() * X;
  const double ridge = 1e-9 * (A.trace() / std::max<Eigen::Index>(1, A.rows()) + 1e-12);
  A.diagonal().array() += ridge;
  return A.ldlt().solve(X.transpose() * y);
}

// CSS residuals of the centred series w under (phi, theta); returns the sum of squares
// over t >= p. Fills the Jacobian (d e_t / d beta) when J is not null.
double CssResiduals(const Eigen::VectorXd& w, int p, int q, const Eigen::VectorXd& beta,
                    Eigen::VectorXd* e, Eigen::MatrixXd* J) {
  const Eigen::Index n = w.size();
  e->setZero(n);
  if (J) J->setZero(n, p + q);
  double sse = 0;
  for (Eigen::Index t = p; t < n; ++t) {
    double et = w[t];
    for (int i = 0; i < p; ++i) et -= beta[i] * w[t - 1 - i];
    for (int j = 0; j < q; ++j)
      if (t - 1 - j >= 0) et -= beta[p + j] * (*e)[t - 1 - j];
    (*e)[t] = et;
    sse += et * et;
    if (J) {
      for (int k = 0; k < p + q; ++k) {
        double g = k < p ? -w[t - 1 - k] : ((t - 1 - (k - p) >= 0) ? -(*e)[t - 1 - (k - p)] : 0);
        for (int j = 0; j < q; ++j)
          if (t - 1 - j >= 0) g -= beta[p + j] * (*J)(t - 1 - j, k);
        (*J)(t, k) = g;
      }
    }
  }
  return sse;
}

// Gauss-Newton iterations per fit. Well-identified series converge in 2-4; on windows
// where AR and MA nearly cancel the CSS surface is a flat ridge and more iterations
// move the coefficients along it without changing the forecasts.
constexpr int kMaxGaussNewton = 6;

bool Admissible(const Eigen::VectorXd& beta, int p, int q) {
  return RootsInside(beta.data(), p, 1.0) && RootsInside(beta.data() + p, q, -1.0);
}

}  // namespace

Status FitArima(const double* y, size_t n, int p, int d, int q, ArimaFit* out,
                const ArimaFit* init) {
  if (p < 0 || p > kMaxOrder) return Status::InvalidArgument("ARIMA p=" + std::to_string(p) + " outside 0.." + std::to_string(kMaxOrder));
  if (q < 0 || q > kMaxOrder) return Status::InvalidArgument("ARIMA q=" + std::to_string(q) + " outside 0.." + std::to_string(kMaxOrder));
  if (d < 0 || d > 2) return Status::InvalidArgument("ARIMA d=" + std::to_string(d) + " outside 0..2");
  const size_t need = 3 * static_cast<size_t>(p + q + d) + 10;
  if (n < need)
    return Status::InvalidArgument("ARIMA fit needs at least " + std::to_string(need) +
                                   " samples, got " + std::to_string(n));
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(y[i]))
      return Status::InvalidArgument("ARIMA fit: sample " + std::to_string(i) + " is not finite");

  std::vector<double> z(y, y + n);
  for (int k = 0; k < d; ++k) {
    for (size_t i = z.size() - 1; i > 0; --i) z[i] -= z[i - 1];
    z.erase(z.begin());
  }
  const Eigen::Index m = static_cast<Eigen::Index>(z.size());
  Eigen::VectorXd w = Eigen::Map<Eigen::VectorXd>(z.data(), m);
  out->mean = w.mean();
  w.array() -= out->mean;

  Eigen::VectorXd beta = Eigen::VectorXd::Zero(p + q);
  Eigen::VectorXd ehat = Eigen::VectorXd::Zero(m);
  int start = p;
  if (q > 0) {
    // Hannan-Rissanen step 1: long AR for residual estimates.
    const int L = static_cast<int>(std::min<Eigen::Index>(std::max(2 * (p + q), 10), m / 4));
    Eigen::MatrixXd X(m - L, L);
    for (Eigen::Index t = L; t < m; ++t)
      for (int i = 0; i < L; ++i) X(t - L, i) = w[t - 1 - i];
    const Eigen::VectorXd a = SolveLs(X, w.tail(m - L));
    ehat.tail(m - L) = w.tail(m - L) - X * a;
    start = L + q;
  }
  if (p + q > 0 && m - start > p + q) {
    Eigen::MatrixXd X(m - start, p + q);
    for (Eigen::Index t = start; t < m; ++t) {
      for (int i = 0; i < p; ++i) X(t - start, i) = w[t - 1 - i];
      for (int j = 0; j < q; ++j) X(t - start, p + j) = ehat[t - 1 - j];
    }
    beta = SolveLs(X, w.tail(m - start));
    if (!Admissible(beta, p, q)) beta *= 0.0;  // fall back to white noise, let GN move
  }

  // Gauss-Newton on the conditional sum of squares (exact least squares when q == 0).
  Eigen::VectorXd e;
  Eigen::MatrixXd J;
  if (init && static_cast<int>(init->ar.size()) == p && static_cast<int>(init->ma.size()) == q && p + q > 0) {
    Eigen::VectorXd warm(p + q);
    for (int i = 0; i < p; ++i) warm[i] = init->ar[i];
    for (int j = 0; j < q; ++j) warm[p + j] = init->ma[j];
    if (Admissible(warm, p, q) &&
        CssResiduals(w, p, q, warm, &e, nullptr) < CssResiduals(w, p, q, beta, &e, nullptr))
      beta = warm;
  }
  double sse = CssResiduals(w, p, q, beta, &e, &J);
  int it = 0;
  for (; it < kMaxGaussNewton && p + q > 0; ++it) {
    Eigen::VectorXd step = SolveLs(J, e);  // minimises |e - J step|: e(beta - step) ~ 0
    double scale = 1.0;
    bool improved = false;
    for (int half = 0; half < 12; ++half, scale *= 0.5) {
      Eigen::VectorXd cand = beta - scale * step;
      if (!Admissible(cand, p, q)) continue;
      Eigen::VectorXd e2;
      const double s2 = CssResiduals(w, p, q, cand, &e2, nullptr);
      if (s2 < sse) {
        const double rel = (sse - s2) / std::max(sse, 1e-300);
        // Converged when the coefficients move by less than 1e-4 (far below their
        // sampling error) or the CSS stops improving.
        improved = rel > 1e-6 && scale * step.cwiseAbs().maxCoeff() > 1e-4;
        beta = cand;
        sse = s2;
        break;
      }
    }
    if (!improved) break;
    sse = CssResiduals(w, p, q, beta, &e, &J);
  }
  out->iterations = it;
  out->ar.assign(beta.data(), beta.data() + p);
  out->ma.assign(beta.data() + p, beta.data() + p + q);
  out->sigma2 = sse / std::max<Eigen::Index>(1, m - p);
  return Status::Ok();
}

Arima::Arima(const ArimaConfig& cfg) : cfg_(cfg) {
  valid_ = cfg_.p >= 0 && cfg_.p <= kMaxOrder && cfg_.q >= 0 && cfg_.q <= kMaxOrder &&
           cfg_.d >= 0 && cfg_.d <= 2 && cfg_.window >= 16 && cfg_.refit_every >= 1;
  cfg_.window = std::min<int>(cfg_.window, History::kCapacity);
  cfg_.min_fit = std::clamp(cfg_.min_fit, 3 * (cfg_.p + cfg_.q + cfg_.d) + 11, cfg_.window);
}

Status Arima::status() const {
  if (valid_) return Status::Ok();
  return Status::InvalidArgument("ArimaConfig: need 0<=p,q<=" + std::to_string(kMaxOrder) +
                                 ", 0<=d<=2, window>=16, refit_every>=1; got p=" +
                                 std::to_string(cfg_.p) + " d=" + std::to_string(cfg_.d) +
                                 " q=" + std::to_string(cfg_.q));
}

double Arima::Diff(const History& hist, size_t lag) const {
  switch (cfg_.d) {
    case 0: return hist.Lag(lag);
    case 1: return hist.Lag(lag) - hist.Lag(lag + 1);
    default: return hist.Lag(lag) - 2 * hist.Lag(lag + 1) + hist.Lag(lag + 2);
  }
}

double Arima::PredictNextZ(const History& hist) const {
  double z = mu_;
  for (int i = 0; i < cfg_.p; ++i) z += phi_[i] * (Diff(hist, i) - mu_);
  for (int j = 0; j < cfg_.q; ++j) z += theta_[j] * elag_[j];
  return z;
}

void Arima::Refit(const History& hist) {
  const size_t n = std::min<size_t>(cfg_.window, hist.size());
  double buf[History::kCapacity];
  hist.CopyLast(n, buf);
  ArimaFit fit, prev;
  if (fitted_) {
    prev.ar.assign(phi_.begin(), phi_.begin() + cfg_.p);
    prev.ma.assign(theta_.begin(), theta_.begin() + cfg_.q);
  }
  if (!FitArima(buf, n, cfg_.p, cfg_.d, cfg_.q, &fit, fitted_ ? &prev : nullptr).ok()) return;
  phi_.fill(0);
  theta_.fill(0);
  std::copy(fit.ar.begin(), fit.ar.end(), phi_.begin());
  std::copy(fit.ma.begin(), fit.ma.end(), theta_.begin());
  mu_ = fit.mean;
  sigma2_ = std::max(fit.sigma2, 1e-10);
  // Re-filter the window with the new parameters so the residual lags are consistent.
  elag_.fill(0);
  std::vector<double> z(buf, buf + n);
  for (int k = 0; k < cfg_.d; ++k)
    for (size_t i = z.size() - 1; i > static_cast<size_t>(k); --i) z[i] -= z[i - 1];
  for (size_t t = cfg_.d + cfg_.p; t < n; ++t) {
    double pred = mu_;
    for (int i = 0; i < cfg_.p; ++i) pred += phi_[i] * (z[t - 1 - i] - mu_);
    for (int j = 0; j < cfg_.q; ++j) pred += theta_[j] * elag_[j];
    for (int j = kMaxOrder - 1; j > 0; --j) elag_[j] = elag_[j - 1];
    elag_[0] = z[t] - pred;
  }
  fitted_ = true;
  since_fit_ = 0;
  drift_ms_ = sigma2_;
  ++refits_;
}

void Arima::Observe(double, const History& hist, bool imputed) {
  if (!valid_) return;
  if (fitted_ && hist.size() > static_cast<size_t>(cfg_.d)) {
    const double e = imputed ? 0.0 : Diff(hist, 0) - pred_z_;
    for (int j = kMaxOrder - 1; j > 0; --j) elag_[j] = elag_[j - 1];
    elag_[0] = e;
    if (!imputed) drift_ms_ += 0.05 * (e * e - drift_ms_);
  }
  ++since_fit_;
  const bool drifted = fitted_ && since_fit_ >= cfg_.drift_min_steps &&
                       drift_ms_ > cfg_.drift_factor * sigma2_;
  if (hist.size() >= static_cast<size_t>(cfg_.min_fit) &&
      (!fitted_ || since_fit_ >= cfg_.refit_every || drifted))
    Refit(hist);
  if (fitted_) pred_z_ = PredictNextZ(hist);
}

PointForecast Arima::Forecast(int h, const History& hist) const {
  PointForecast f;
  ForecastMany(&h, 1, hist, &f);
  return f;
}

void Arima::ForecastMany(const int* hs, int n, const History& hist, PointForecast* out) const {
  if (n == 0) return;
  if (!fitted_) {
    for (int i = 0; i < n; ++i) out[i] = {hist.size() ? hist.Lag(0) : 0.0, 0.0};
    return;
  }
  const int hmax = std::max(1, hs[n - 1]);
  constexpr int kPsi = 64;  // beyond this the variance grows linearly (rarely used)
  const int hp = std::min(hmax, kPsi);
  // psi weights of the ARMA part, integrated d times, for the forecast variance.
  double psi[kPsi];
  for (int j = 0; j < hp; ++j) {
    double v = j == 0 ? 1.0 : (j <= cfg_.q ? theta_[j - 1] : 0.0);
    for (int i = 1; i <= std::min(j, cfg_.p); ++i) v += phi_[i - 1] * psi[j - i];
    psi[j] = v;
  }
  for (int k = 0; k < cfg_.d; ++k)
    for (int j = 1; j < hp; ++j) psi[j] += psi[j - 1];
  // ARMA recursion on the differenced series with future innovations set to zero.
  double zl[kMaxOrder], el[kMaxOrder];
  for (int i = 0; i < kMaxOrder; ++i) {
    zl[i] = i < cfg_.p ? Diff(hist, i) : 0;
    el[i] = elag_[i];
  }
  double y1 = hist.Lag(0), y2 = cfg_.d == 2 ? hist.Lag(1) : 0;  // for integration
  double yhat = y1, var = 0;
  int next = 0;
  for (int k = 1; k <= hmax && next < n; ++k) {
    double z = mu_;
    for (int i = 0; i < cfg_.p; ++i) z += phi_[i] * (zl[i] - mu_);
    for (int j = 0; j < cfg_.q; ++j) z += theta_[j] * el[j];
    for (int i = kMaxOrder - 1; i > 0; --i) { zl[i] = zl[i - 1]; el[i] = el[i - 1]; }
    zl[0] = z;
    el[0] = 0;
    if (cfg_.d == 0) yhat = z;
    else if (cfg_.d == 1) yhat = y1 + z, y1 = yhat;
    else { yhat = 2 * y1 - y2 + z; y2 = y1; y1 = yhat; }
    const double ps = psi[std::min(k, hp) - 1];
    var += ps * ps;
    while (next < n && std::max(1, hs[next]) == k) out[next++] = {yhat, std::sqrt(var * sigma2_)};
  }
}

}  // namespace lull::forecast
