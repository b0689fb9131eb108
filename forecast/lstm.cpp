#include "forecast/lstm.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>

#include <Eigen/Dense>

namespace lull::forecast {
namespace {

// Flat parameter layout for hidden size H, head features F = H + 3, head units K:
//   Wx[4H] | Wh[4H x H, column-major] | b[4H] | V1[K x F] | c1[K] | v2[K] | c2[1]
struct Layout {
  int H, F, K;
  size_t wx, wh, b, v1, c1, v2, c2, total;
  explicit Layout(int h) : H(h), F(h + 3), K(InactivityLstm::kHead) {
    wx = 0;
    wh = wx + 4 * H;
    b = wh + static_cast<size_t>(4 * H) * H;
    v1 = b + 4 * H;
    c1 = v1 + static_cast<size_t>(K) * F;
    v2 = c1 + K;
    c2 = v2 + K;
    total = c2 + 1;
  }
};

using Vec = Eigen::VectorXd;
using CMap = Eigen::Map<const Eigen::MatrixXd>;
using CVMap = Eigen::Map<const Eigen::VectorXd>;
using MMap = Eigen::Map<Eigen::MatrixXd>;
using VMap = Eigen::Map<Eigen::VectorXd>;

double Sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

struct HeadOut {
  Vec feat, a;
  double p;
};

HeadOut Head(const Layout& L, const double* w, const Vec& h, double u, double level, int window) {
  HeadOut o;
  o.feat.resize(L.F);
  o.feat.head(L.H) = h;
  o.feat[L.H] = level;
  o.feat[L.H + 1] = window / 12.0;
  o.feat[L.H + 2] = u - level;
  CMap V1(w + L.v1, L.K, L.F);
  o.a = (V1 * o.feat + CVMap(w + L.c1, L.K)).array().tanh();
  o.p = Sigmoid(CVMap(w + L.v2, L.K).dot(o.a) + w[L.c2]);
  return o;
}

}  // namespace

InactivityLstm::InactivityLstm() : hidden_(12) {
  Layout L(hidden_);
  w_.assign(L.total, 0.0);
  std::mt19937 rng(1);
  std::uniform_real_distribution<double> U(-0.3, 0.3);
  for (double& v : w_) v = U(rng);
  for (int j = 0; j < hidden_; ++j) w_[L.b + hidden_ + j] = 1.0;  // forget gate bias
  Pack();
}

void InactivityLstm::Pack() {
  const Layout L(hidden_);
  const int H = hidden_;
  gates_.fill(0.f);
  head_.fill(0.f);
  v2_.fill(0.f);
  // Gate g (i, f, o, candidate), unit j -> packed row g * kMaxHidden + j.
  for (int g = 0; g < 4; ++g)
    for (int j = 0; j < H; ++j) {
      const int src = g * H + j, row = g * kMaxHidden + j;
      for (int c = 0; c < H; ++c)
        gates_[c * kGateRows + row] = static_cast<float>(w_[L.wh + static_cast<size_t>(c) * 4 * H + src]);
      gates_[kMaxHidden * kGateRows + row] = static_cast<float>(w_[L.wx + src]);
      gates_[(kMaxHidden + 1) * kGateRows + row] = static_cast<float>(w_[L.b + src]);
    }
  // Head features: h (padded to kMaxHidden), level, W/12, u - level, 1 (the bias c1).
  for (int k = 0; k < L.K; ++k) {
    for (int f = 0; f < L.F; ++f) {
      const int col = f < H ? f : kMaxHidden + (f - H);
      head_[col * kHead + k] = static_cast<float>(w_[L.v1 + static_cast<size_t>(f) * L.K + k]);
    }
    head_[(kMaxHidden + 3) * kHead + k] = static_cast<float>(w_[L.c1 + k]);
    v2_[k] = static_cast<float>(w_[L.v2 + k]);
  }
  c2_ = static_cast<float>(w_[L.c2]);
}

// Step and Prob run once per control step per series: float, fixed sizes, no heap.
// Float changes the probabilities by ~1e-6, far below what the Brier score resolves.
void InactivityLstm::Step(State* s, double u) const {
  using GateMat = Eigen::Matrix<float, kGateRows, kGateCols>;
  using Vec16 = Eigen::Array<float, kMaxHidden, 1>;
  Eigen::Matrix<float, kGateCols, 1> in;
  in.head<kMaxHidden>() = Eigen::Map<const Eigen::Matrix<float, kMaxHidden, 1>>(s->h.data());
  in[kMaxHidden] = static_cast<float>(u);
  in[kMaxHidden + 1] = 1.f;
  const Eigen::Matrix<float, kGateRows, 1> g = Eigen::Map<const GateMat, Eigen::Aligned16>(gates_.data()) * in;
  const Vec16 i = g.segment<kMaxHidden>(0).array().logistic();
  const Vec16 f = g.segment<kMaxHidden>(kMaxHidden).array().logistic();
  const Vec16 o = g.segment<kMaxHidden>(2 * kMaxHidden).array().logistic();
  const Vec16 cand = g.segment<kMaxHidden>(3 * kMaxHidden).array().tanh();
  Eigen::Map<Vec16> c(s->c.data());
  c = f * c + i * cand;
  Eigen::Map<Vec16>(s->h.data()) = o * c.tanh();
  s->u = static_cast<float>(u);
}

double InactivityLstm::Prob(const State& s, double level, int window) const {
  using HeadMat = Eigen::Matrix<float, kHead, kHeadCols>;
  Eigen::Matrix<float, kHeadCols, 1> feat;
  feat.head<kMaxHidden>() = Eigen::Map<const Eigen::Matrix<float, kMaxHidden, 1>>(s.h.data());
  feat[kMaxHidden] = static_cast<float>(level);
  feat[kMaxHidden + 1] = static_cast<float>(window / 12.0);
  feat[kMaxHidden + 2] = static_cast<float>(s.u - level);
  feat[kMaxHidden + 3] = 1.f;
  const Eigen::Array<float, kHead, 1> a =
      (Eigen::Map<const HeadMat, Eigen::Aligned16>(head_.data()) * feat).array().tanh();
  const float logit = (a * Eigen::Map<const Eigen::Array<float, kHead, 1>, Eigen::Aligned16>(v2_.data())).sum() + c2_;
  return Sigmoid(logit);
}

Status InactivityLstm::Train(const std::vector<std::vector<double>>& series,
                             const LstmTrainConfig& cfg, LstmTrainReport* report) {
  if (cfg.hidden < 1 || cfg.hidden > kMaxHidden)
    return Status::InvalidArgument("LSTM hidden=" + std::to_string(cfg.hidden) + " outside 1.." + std::to_string(kMaxHidden));
  if (cfg.levels.empty() || cfg.windows.empty() || cfg.bptt < 1)
    return Status::InvalidArgument("LSTM training needs levels, windows and bptt >= 1");
  for (int W : cfg.windows)
    if (W < 1 || W > 48) return Status::InvalidArgument("LSTM training window " + std::to_string(W) + " outside 1..48");
  for (size_t k = 0; k < series.size(); ++k)
    for (size_t t = 0; t < series[k].size(); ++t)
      if (!std::isfinite(series[k][t]))
        return Status::InvalidArgument("LSTM training series " + std::to_string(k) + " has a non-finite value at " + std::to_string(t));

  hidden_ = cfg.hidden;
  const int H = hidden_;
  const Layout L(H);
  std::mt19937 rng(cfg.seed);
  {
    std::uniform_real_distribution<double> U(-1.0, 1.0);
    w_.assign(L.total, 0.0);
    const double sh = 1.0 / std::sqrt(H), sf = 1.0 / std::sqrt(L.F);
    for (size_t i = 0; i < L.v1; ++i) w_[i] = U(rng) * sh;
    for (size_t i = L.v1; i < L.total; ++i) w_[i] = U(rng) * sf;
    for (int j = 0; j < H; ++j) w_[L.b + H + j] = 1.0;
  }
  std::vector<double> m(L.total, 0.0), v(L.total, 0.0), grad(L.total);
  const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
  long adam_t = 0;
  const int T = cfg.bptt;
  // Per-step caches of one chunk.
  std::vector<Vec> hs(T + 1), cs(T + 1), gi(T), gf(T), go(T), gc(T), tc(T);
  std::vector<double> us(T);
  std::vector<Vec> dh_head(T);
  std::vector<size_t> order(series.size());
  std::iota(order.begin(), order.end(), 0);
  std::uniform_int_distribution<size_t> pickL(0, cfg.levels.size() - 1), pickW(0, cfg.windows.size() - 1);
  size_t steps = 0;
  if (report) *report = {};

  for (int ep = 0; ep < cfg.epochs && steps < cfg.max_steps; ++ep) {
    std::shuffle(order.begin(), order.end(), rng);
    double loss_sum = 0;
    size_t loss_n = 0;
    for (size_t si : order) {
      const std::vector<double>& x = series[si];
      Vec h = Vec::Zero(H), c = Vec::Zero(H);
      for (size_t start = 0; start + 1 < x.size() && steps < cfg.max_steps; start += T) {
        const int n = static_cast<int>(std::min<size_t>(T, x.size() - 1 - start));
        std::fill(grad.begin(), grad.end(), 0.0);
        CMap Wh(w_.data() + L.wh, 4 * H, H);
        CVMap Wx(w_.data() + L.wx, 4 * H), B(w_.data() + L.b, 4 * H);
        hs[0] = h;
        cs[0] = c;
        int nq = 0;
        for (int t = 0; t < n; ++t) {
          const double u = x[start + t];
          us[t] = u;
          Vec g = Wx * u + Wh * hs[t] + B;
          gi[t] = g.segment(0, H).unaryExpr([](double z) { return Sigmoid(z); });
          gf[t] = g.segment(H, H).unaryExpr([](double z) { return Sigmoid(z); });
          go[t] = g.segment(2 * H, H).unaryExpr([](double z) { return Sigmoid(z); });
          gc[t] = g.segment(3 * H, H).array().tanh();
          cs[t + 1] = gf[t].cwiseProduct(cs[t]) + gi[t].cwiseProduct(gc[t]);
          tc[t] = cs[t + 1].array().tanh();
          hs[t + 1] = go[t].cwiseProduct(tc[t]);
          dh_head[t] = Vec::Zero(H);
          // Two questions per step, each with its true answer from the future.
          for (int qn = 0; qn < 2; ++qn) {
            const double level = cfg.levels[pickL(rng)];
            const int W = cfg.windows[pickW(rng)];
            const size_t pos = start + t;
            if (pos + W >= x.size()) continue;
            double y = 1.0;
            for (int k = 1; k <= W; ++k)
              if (!(x[pos + k] < level)) { y = 0.0; break; }
            HeadOut o = Head(L, w_.data(), hs[t + 1], u, level, W);
            const double p = std::clamp(o.p, 1e-7, 1 - 1e-7);
            loss_sum += -(y * std::log(p) + (1 - y) * std::log(1 - p));
            ++loss_n;
            ++nq;
            const double dlogit = o.p - y;
            VMap(grad.data() + L.v2, L.K) += dlogit * o.a;
            grad[L.c2] += dlogit;
            Vec da = dlogit * CVMap(w_.data() + L.v2, L.K);
            Vec dz = da.cwiseProduct((1.0 - o.a.array().square()).matrix());
            MMap(grad.data() + L.v1, L.K, L.F) += dz * o.feat.transpose();
            VMap(grad.data() + L.c1, L.K) += dz;
            dh_head[t] += (CMap(w_.data() + L.v1, L.K, L.F).transpose() * dz).head(H);
          }
        }
        // Backpropagation through time over the chunk.
        Vec dh = Vec::Zero(H), dc = Vec::Zero(H);
        MMap gWh(grad.data() + L.wh, 4 * H, H);
        VMap gWx(grad.data() + L.wx, 4 * H), gB(grad.data() + L.b, 4 * H);
        for (int t = n - 1; t >= 0; --t) {
          dh += dh_head[t];
          const Vec dout = dh.cwiseProduct(tc[t]);
          dc += dh.cwiseProduct(go[t]).cwiseProduct((1.0 - tc[t].array().square()).matrix());
          Vec dg(4 * H);
          dg.segment(0, H) = dc.cwiseProduct(gc[t]).cwiseProduct(gi[t]).cwiseProduct((1.0 - gi[t].array()).matrix());
          dg.segment(H, H) = dc.cwiseProduct(cs[t]).cwiseProduct(gf[t]).cwiseProduct((1.0 - gf[t].array()).matrix());
          dg.segment(2 * H, H) = dout.cwiseProduct(go[t]).cwiseProduct((1.0 - go[t].array()).matrix());
          dg.segment(3 * H, H) = dc.cwiseProduct(gi[t]).cwiseProduct((1.0 - gc[t].array().square()).matrix());
          gWx += dg * us[t];
          gWh += dg * hs[t].transpose();
          gB += dg;
          dh = Wh.transpose() * dg;
          dc = dc.cwiseProduct(gf[t]);
        }
        h = hs[n];
        c = cs[n];
        steps += n;
        if (nq == 0) continue;
        // Adam, gradient averaged over the questions of the chunk, clipped by norm.
        ++adam_t;
        double norm = 0;
        for (double& g : grad) { g /= nq; norm += g * g; }
        norm = std::sqrt(norm);
        const double clip = norm > 5.0 ? 5.0 / norm : 1.0;
        const double c1 = 1 - std::pow(b1, adam_t), c2 = 1 - std::pow(b2, adam_t);
        for (size_t i = 0; i < L.total; ++i) {
          const double g = grad[i] * clip;
          m[i] = b1 * m[i] + (1 - b1) * g;
          v[i] = b2 * v[i] + (1 - b2) * g * g;
          w_[i] -= cfg.learning_rate * (m[i] / c1) / (std::sqrt(v[i] / c2) + eps);
        }
      }
    }
    if (report) report->epoch_loss.push_back(loss_n ? loss_sum / loss_n : 0.0);
  }
  if (report) report->steps = steps;
  Pack();
  return Status::Ok();
}

Status InactivityLstm::Save(const std::string& path) const {
  std::ofstream f(path);
  if (!f) return Status::IoError("cannot write LSTM weights to " + path);
  f << "lull-inactivity-lstm v1 hidden " << hidden_ << " params " << w_.size() << "\n";
  char b[40];
  for (double x : w_) {
    std::snprintf(b, sizeof b, "%.17g\n", x);
    f << b;
  }
  if (!f) return Status::IoError("write failed for " + path);
  return Status::Ok();
}

Status InactivityLstm::Load(const std::string& path) {
  std::ifstream f(path);
  if (!f) return Status::NotFound("LSTM weights file " + path + " cannot be opened");
  std::string line;
  std::getline(f, line);
  std::istringstream hdr(line);
  std::string magic, ver, khid, kpar;
  int hid = 0;
  size_t np = 0;
  hdr >> magic >> ver >> khid >> hid >> kpar >> np;
  if (magic != "lull-inactivity-lstm" || ver != "v1" || hid < 1 || hid > kMaxHidden ||
      np != Layout(hid).total)
    return Status::Corruption(path + ": not a lull-inactivity-lstm v1 file with a valid header");
  std::vector<double> w(np);
  for (size_t i = 0; i < np; ++i)
    if (!(f >> w[i]) || !std::isfinite(w[i]))
      return Status::Corruption(path + ": parameter " + std::to_string(i) + " of " +
                                std::to_string(np) + " missing or not a number");
  hidden_ = hid;
  w_ = std::move(w);
  Pack();
  return Status::Ok();
}

}  // namespace lull::forecast
