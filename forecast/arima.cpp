#include "forecast/arima.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

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

// Normal equations of at most kMaxLong unknowns (the long AR of Hannan-Rissanen, or the
// p + q ARMA coefficients): fixed-capacity Eigen matrices on the stack, no heap per fit.
constexpr int kMaxLong = 16;
using SmallMat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, 0, kMaxLong, kMaxLong>;
using SmallVec = Eigen::Matrix<double, Eigen::Dynamic, 1, 0, kMaxLong, 1>;

// Solves A x = b with a tiny ridge so that flat series do not make A singular.
SmallVec SolveNormal(SmallMat A, const SmallVec& b) {
  const double ridge = 1e-9 * (A.trace() / std::max<Eigen::Index>(1, A.rows()) + 1e-12);
  A.diagonal().array() += ridge;
  return A.ldlt().solve(b);
}

// CSS residuals of the centred series w[0..n) under beta = (phi, theta): the sum of
// squares over t >= p, and the newest kMaxOrder residuals in tail (e_{n-1} first).
// With JtJ/Jte it also accumulates the Gauss-Newton normal equations J'J and J'e of the
// Jacobian J = d e_t / d beta, row by row: only the last q rows of J are kept (the MA
// recursion needs no more), so a fit never materialises the n x (p+q) Jacobian.
// The orders are template parameters: every loop over them unrolls and the residual
// and Jacobian lags live in registers, which matters because e_t depends on e_{t-1}
// (a serial chain through the whole window) and a fit evaluates the CSS ~15 times.
template <int P, int Q>
double CssT(const double* w, int n, const double* beta, double* tail, SmallMat* JtJ, SmallVec* Jte) {
  constexpr int K = P + Q;
  double phi[P + 1] = {}, theta[Q + 1] = {};
  for (int i = 0; i < P; ++i) phi[i] = beta[i];
  for (int j = 0; j < Q; ++j) theta[j] = beta[P + j];
  double e[kMaxOrder] = {};  // e[j] = e_{t-1-j}
  double sse = 0;
  if (!JtJ) {
    int t = P;
    if constexpr (Q == 1) {
      // MA(1): e_t = a_t - theta e_{t-1} with a_t the AR residual. Four steps at a time,
      // each e written in terms of the a's and e_{t-1} alone, so the serial dependency
      // (a multiply and an add) is paid once per four samples instead of every sample.
      const double th = theta[0], t2 = th * th, t3 = t2 * th, t4 = t3 * th;
      double ep = 0;
      for (; t + 3 < n; t += 4) {
        double a[4];
        for (int k = 0; k < 4; ++k) {
          a[k] = w[t + k];
          for (int i = 0; i < P; ++i) a[k] -= phi[i] * w[t + k - 1 - i];
        }
        const double e0 = a[0] - th * ep;
        const double e1 = (a[1] - th * a[0]) + t2 * ep;
        const double e2 = (a[2] - th * a[1] + t2 * a[0]) - t3 * ep;
        const double e3 = (a[3] - th * a[2] + t2 * a[1] - t3 * a[0]) + t4 * ep;
        sse += (e0 * e0 + e1 * e1) + (e2 * e2 + e3 * e3);
        e[3] = e0, e[2] = e1, e[1] = e2, e[0] = e3;
        ep = e3;
      }
    }
    for (; t < n; ++t) {
      double et = w[t];
      for (int i = 0; i < P; ++i) et -= phi[i] * w[t - 1 - i];
      for (int j = 0; j < Q; ++j) et -= theta[j] * e[j];
      sse += et * et;
      for (int j = kMaxOrder - 1; j > 0; --j) e[j] = e[j - 1];
      e[0] = et;
    }
  } else {
    double J[Q + 1][K + 1] = {};  // J[j] = Jacobian row of t-1-j
    // Upper triangle of J'J, packed row by row, and J'e.
    double A[(K + 1) * (K + 2) / 2] = {}, g[K + 1] = {};
    for (int t = P; t < n; ++t) {
      double et = w[t];
#pragma GCC unroll 8
      for (int i = 0; i < P; ++i) et -= phi[i] * w[t - 1 - i];
#pragma GCC unroll 8
      for (int j = 0; j < Q; ++j) et -= theta[j] * e[j];
      sse += et * et;
      double jac[K + 1];
#pragma GCC unroll 8
      for (int c = 0; c < K; ++c) {
        double v = c < P ? -w[t - 1 - c] : -e[c - P];
#pragma GCC unroll 8
        for (int j = 0; j < Q; ++j) v -= theta[j] * J[j][c];
        jac[c] = v;
      }
      int at = 0;
#pragma GCC unroll 8
      for (int r = 0; r < K; ++r) {
        g[r] += jac[r] * et;
#pragma GCC unroll 8
        for (int c = r; c < K; ++c) A[at++] += jac[r] * jac[c];
      }
      if constexpr (Q > 0) {
#pragma GCC unroll 8
        for (int j = Q - 1; j > 0; --j)
#pragma GCC unroll 8
          for (int c = 0; c < K; ++c) J[j][c] = J[j - 1][c];
#pragma GCC unroll 8
        for (int c = 0; c < K; ++c) J[0][c] = jac[c];
      }
#pragma GCC unroll 8
      for (int j = kMaxOrder - 1; j > 0; --j) e[j] = e[j - 1];
      e[0] = et;
    }
    JtJ->resize(K, K);
    Jte->resize(K);
    int at = 0;
    for (int r = 0; r < K; ++r) {
      (*Jte)[r] = g[r];
      for (int c = r; c < K; ++c, ++at) (*JtJ)(r, c) = (*JtJ)(c, r) = A[at];
    }
  }
  if (tail)
    for (int j = 0; j < kMaxOrder; ++j) tail[j] = n - 1 - j >= P ? e[j] : 0.0;
  return sse;
}

using CssFn = double (*)(const double*, int, const double*, double*, SmallMat*, SmallVec*);

template <int... I>
constexpr std::array<CssFn, sizeof...(I)> CssTable(std::integer_sequence<int, I...>) {
  return {&CssT<I / (kMaxOrder + 1), I % (kMaxOrder + 1)>...};
}
constexpr auto kCss = CssTable(std::make_integer_sequence<int, (kMaxOrder + 1) * (kMaxOrder + 1)>());

double Css(const double* w, int n, int p, int q, const double* beta, double* tail,
           SmallMat* JtJ = nullptr, SmallVec* Jte = nullptr) {
  return kCss[p * (kMaxOrder + 1) + q](w, n, beta, tail, JtJ, Jte);
}

// Gauss-Newton iterations per fit. Well-identified series converge in 2-4; on windows
// where AR and MA nearly cancel the CSS surface is a flat ridge and more iterations
// move the coefficients along it without changing the forecasts.
constexpr int kMaxGaussNewton = 6;

bool Admissible(const double* beta, int p, int q) {
  return RootsInside(beta, p, 1.0) && RootsInside(beta + p, q, -1.0);
}

// Hannan-Rissanen estimate of (phi, theta) for the centred w[0..m) into beta.
void HannanRissanen(const double* w, int m, int p, int q, double* beta) {
  const int k = p + q;
  std::fill(beta, beta + k, 0.0);
  std::vector<double> ehat(m, 0.0);
  int start = p;
  if (q > 0) {
    // Step 1: a long AR(L) by least squares gives residual estimates. Its normal
    // equations A(i,j) = sum_{t=L}^{m-1} w[t-1-i] w[t-1-j] are nearly Toeplitz: the first
    // row by dot products, then A(i+1,j+1) = A(i,j) + w[L-2-i] w[L-2-j] - w[m-2-i] w[m-2-j],
    // O(m L) instead of the O(m L^2) of forming X'X.
    const int L = std::min(std::max(2 * k, 10), m / 4);
    SmallMat A(L, L);
    SmallVec b(L);
    using CMap = Eigen::Map<const Eigen::VectorXd>;
    const int len = m - L;
    const CMap now(w + L, len), prev(w + L - 1, len);
    for (int j = 0; j < L; ++j) {  // Eigen's dot: SIMD with several partial sums
      const CMap lagged(w + L - 1 - j, len);
      A(0, j) = prev.dot(lagged);
      b[j] = now.dot(lagged);
    }
    for (int i = 0; i + 1 < L; ++i)
      for (int j = i; j + 1 < L; ++j)
        A(i + 1, j + 1) = A(i, j) + w[L - 2 - i] * w[L - 2 - j] - w[m - 2 - i] * w[m - 2 - j];
    A.triangularView<Eigen::StrictlyLower>() = A.transpose();
    const SmallVec a = SolveNormal(A, b);
    // ehat = w - X a, one lag (a SIMD axpy over the window) at a time.
    Eigen::Map<Eigen::VectorXd> eh(ehat.data() + L, len);
    eh = now;
    for (int i = 0; i < L; ++i) eh -= a[i] * CMap(w + L - 1 - i, len);
    start = L + q;
  }
  if (k == 0 || m - start <= k) return;
  // Step 2: regress w_t on its p lags and q lagged residual estimates.
  // Sums in local arrays (registers), not in the matrix: += into memory every sample
  // would chain each entry through a store and a load.
  double acc[2 * kMaxOrder][2 * kMaxOrder] = {}, bacc[2 * kMaxOrder] = {};
  double x[2 * kMaxOrder];
  for (int t = start; t < m; ++t) {
    for (int i = 0; i < p; ++i) x[i] = w[t - 1 - i];
    for (int j = 0; j < q; ++j) x[p + j] = ehat[t - 1 - j];
    for (int c = 0; c < k; ++c) {
      bacc[c] += x[c] * w[t];
      for (int r = 0; r <= c; ++r) acc[r][c] += x[r] * x[c];
    }
  }
  SmallMat A(k, k);
  SmallVec b(k);
  for (int c = 0; c < k; ++c) {
    b[c] = bacc[c];
    for (int r = 0; r <= c; ++r) A(r, c) = A(c, r) = acc[r][c];
  }
  const SmallVec sol = SolveNormal(A, b);
  for (int c = 0; c < k; ++c) beta[c] = sol[c];
  if (!Admissible(beta, p, q)) std::fill(beta, beta + k, 0.0);  // white noise; GN moves it
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
  if (n > (1u << 30)) return Status::InvalidArgument("ARIMA fit: " + std::to_string(n) + " samples is too many");
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(y[i]))
      return Status::InvalidArgument("ARIMA fit: sample " + std::to_string(i) + " is not finite");

  std::vector<double> w(y, y + n);
  for (int k = 0; k < d; ++k) {
    for (size_t i = w.size() - 1; i > 0; --i) w[i] -= w[i - 1];
    w.erase(w.begin());
  }
  const int m = static_cast<int>(w.size());
  double mean = 0;
  for (double v : w) mean += v;
  mean /= m;
  for (double& v : w) v -= mean;
  out->mean = mean;

  const int k = p + q;
  double beta[2 * kMaxOrder] = {}, tail[kMaxOrder];
  HannanRissanen(w.data(), m, p, q, beta);

  // Gauss-Newton on the conditional sum of squares (exact least squares when q == 0).
  if (init && static_cast<int>(init->ar.size()) == p && static_cast<int>(init->ma.size()) == q && k > 0) {
    double warm[2 * kMaxOrder];
    std::copy(init->ar.begin(), init->ar.end(), warm);
    std::copy(init->ma.begin(), init->ma.end(), warm + p);
    if (Admissible(warm, p, q) &&
        Css(w.data(), m, p, q, warm, nullptr) < Css(w.data(), m, p, q, beta, nullptr))
      std::copy(warm, warm + k, beta);
  }
  SmallMat JtJ;
  SmallVec Jte;
  double sse = Css(w.data(), m, p, q, beta, tail, &JtJ, &Jte);
  int it = 0;
  for (; it < kMaxGaussNewton && k > 0; ++it) {
    const SmallVec step = SolveNormal(JtJ, Jte);  // minimises |e - J step|: e(beta - step) ~ 0
    double scale = 1.0;
    bool improved = false;
    for (int half = 0; half < 12; ++half, scale *= 0.5) {
      double cand[2 * kMaxOrder], ctail[kMaxOrder];
      for (int c = 0; c < k; ++c) cand[c] = beta[c] - scale * step[c];
      if (!Admissible(cand, p, q)) continue;
      const double s2 = Css(w.data(), m, p, q, cand, ctail);
      if (s2 < sse) {
        const double rel = (sse - s2) / std::max(sse, 1e-300);
        // Converged when the coefficients move by less than 1e-4 (far below their
        // sampling error) or the CSS stops improving.
        improved = rel > 1e-6 && scale * step.cwiseAbs().maxCoeff() > 1e-4;
        std::copy(cand, cand + k, beta);
        std::copy(ctail, ctail + kMaxOrder, tail);
        sse = s2;
        break;
      }
    }
    if (!improved) break;
    sse = Css(w.data(), m, p, q, beta, tail, &JtJ, &Jte);
  }
  out->iterations = it;
  out->ar.assign(beta, beta + p);
  out->ma.assign(beta + p, beta + k);
  out->sigma2 = sse / std::max(1, m - p);
  std::copy(tail, tail + kMaxOrder, out->residuals.begin());
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
  // The fit's own newest residuals are the filter's state: CSS residuals of the window
  // under the new parameters, exactly what re-filtering the window would give.
  elag_ = fit.residuals;
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
