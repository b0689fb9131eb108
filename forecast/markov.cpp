#include "forecast/markov.h"

#include <algorithm>
#include <cmath>
#include <string>

#include <Eigen/Dense>

namespace lull::forecast {
namespace {

int Bin(const std::vector<double>& edges, double x) {
  const int k = static_cast<int>(edges.size()) - 1;
  auto it = std::upper_bound(edges.begin(), edges.end(), x);
  return std::clamp(static_cast<int>(it - edges.begin()) - 1, 0, k - 1);
}

}  // namespace

TransitionCounts::TransitionCounts(int states, double decay, double prior, double stay_prior)
    : k_(states), decay_(decay), prior_(prior), stay_prior_(stay_prior),
      counts_(static_cast<size_t>(states) * states, 0.f), rows_(states, 0.f) {}

void TransitionCounts::Add(int from, int to) {
  counts_[from * k_ + to] += static_cast<float>(inc_);
  rows_[from] += static_cast<float>(inc_);
  inc_ /= decay_;
  if (inc_ > 1e6) {  // rescale everything so that floats keep their precision
    const float s = static_cast<float>(1.0 / inc_);
    for (float& c : counts_) c *= s;
    for (float& r : rows_) r *= s;
    inc_ = 1.0;
  }
}

double TransitionCounts::Prob(int from, int to) const {
  // Counts are in units of the current increment; the prior is in units of "one recent
  // transition", so it keeps the same weight as the counts decay.
  const double c = counts_[from * k_ + to] / inc_;
  const double r = rows_[from] / inc_;
  const double pri = (from == to ? stay_prior_ : 0.0) + prior_;
  return (c + pri) / (r + stay_prior_ + prior_ * k_);
}

void TransitionCounts::Propagate(const double* dist, int h, double* out, double* every) const {
  double cur[kMaxStates], next[kMaxStates], inv[kMaxStates];
  const double pri = prior_;
  for (int i = 0; i < k_; ++i) {
    cur[i] = dist[i];
    inv[i] = 1.0 / (rows_[i] / inc_ + stay_prior_ + prior_ * k_);
  }
  const double scale = 1.0 / inc_;
  for (int s = 0; s < h; ++s) {
    for (int j = 0; j < k_; ++j) next[j] = 0;
    for (int i = 0; i < k_; ++i) {
      if (cur[i] == 0) continue;
      const double w = cur[i] * inv[i];
      const float* row = &counts_[i * k_];
      const double ws = w * scale, wp = w * pri;
      for (int j = 0; j < k_; ++j) next[j] += ws * row[j] + wp;
      next[i] += w * stay_prior_;
    }
    for (int j = 0; j < k_; ++j) cur[j] = next[j];
    if (every) std::copy(cur, cur + k_, every + static_cast<size_t>(s) * k_);
  }
  std::copy(cur, cur + k_, out);
}

double TransitionCounts::StayProb(uint64_t inside, int start, int window) const {
  if (start < 0 || start >= k_) return 0;
  if (window < 1) return 1;
  // f_w[i] = P(the next w states are all inside | now i). Only f at inside states feeds
  // the next step, so the recursion runs over them alone; the start row comes last.
  int in[kMaxStates], nin = 0;
  for (int i = 0; i < k_; ++i)
    if (inside >> i & 1) in[nin++] = i;
  const double scale = 1.0 / inc_;
  auto inv = [&](int i) { return 1.0 / (rows_[i] * scale + stay_prior_ + prior_ * k_); };
  auto step = [&](int i, const double* f) {  // sum over inside j of P(i, j) f[j]
    const float* row = &counts_[i * k_];
    double s = 0;
    for (int a = 0; a < nin; ++a) {
      const int j = in[a];
      s += (row[j] * scale + prior_ + (i == j ? stay_prior_ : 0.0)) * f[a];
    }
    return s * inv(i);
  };
  double f[kMaxStates], g[kMaxStates];
  for (int a = 0; a < nin; ++a) f[a] = 1.0;
  for (int w = 1; w < window; ++w) {
    for (int a = 0; a < nin; ++a) g[a] = step(in[a], f);
    std::copy(g, g + nin, f);
  }
  return step(start, f);
}

void TransitionCounts::Power(int h, double* out) const {
  const int k = k_;
  const double scale = 1.0 / inc_;
  for (int i = 0; i < k; ++i) {
    const double inv = 1.0 / (rows_[i] * scale + stay_prior_ + prior_ * k);
    for (int j = 0; j < k; ++j)
      out[i * k + j] = (counts_[i * k + j] * scale + prior_ + (i == j ? stay_prior_ : 0.0)) * inv;
  }
  MatrixPower(out, k, h, out);
}

void MatrixPower(const double* a, int k, int e, double* out) {
  // Heap matrices (a fixed 64 x 64 maximum would put ~100 KiB on the caller's stack);
  // this runs once per cache refresh, not per step.
  using Mat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Mat P = Eigen::Map<const Mat>(a, k, k), R;
  bool first = true;
  for (e = std::max(1, e); e > 0; e >>= 1) {  // binary exponentiation
    if (e & 1) {
      if (first) R = P, first = false;
      else R = (R * P).eval();
    }
    if (e > 1) P = (P * P).eval();
  }
  Eigen::Map<Mat>(out, k, k) = R;
}

Status MarkovChain::Validate(const MarkovConfig& cfg) {
  const auto& e = cfg.edges;
  if (e.size() < 3) return Status::InvalidArgument("MarkovConfig.edges needs at least 3 edges (2 levels), got " + std::to_string(e.size()));
  if (e.size() - 1 > static_cast<size_t>(TransitionCounts::kMaxStates))
    return Status::InvalidArgument("MarkovConfig.edges: at most " + std::to_string(TransitionCounts::kMaxStates) + " levels");
  if (e.front() != 0.0 || e.back() <= 1.0)
    return Status::InvalidArgument("MarkovConfig.edges must start at 0 and end above 1.0");
  for (size_t i = 1; i < e.size(); ++i)
    if (!(e[i] > e[i - 1]))
      return Status::InvalidArgument("MarkovConfig.edges not increasing at index " + std::to_string(i));
  if (!(cfg.decay > 0 && cfg.decay <= 1))
    return Status::InvalidArgument("MarkovConfig.decay must be in (0, 1], got " + std::to_string(cfg.decay));
  return Status::Ok();
}

MarkovChain::MarkovChain(const MarkovConfig& cfg)
    : edges_(Validate(cfg).ok() ? cfg.edges : MarkovConfig{}.edges),
      chain_(static_cast<int>(edges_.size()) - 1, Validate(cfg).ok() ? cfg.decay : MarkovConfig{}.decay,
             cfg.prior, cfg.stay_prior),
      bin_sum_(edges_.size() - 1, 0.f), bin_w_(edges_.size() - 1, 0.f),
      decay_(Validate(cfg).ok() ? cfg.decay : MarkovConfig{}.decay),
      touched_(edges_.size() - 1, 0) {}

int MarkovChain::Level(double x) const { return Bin(edges_, x); }

double MarkovChain::BinMean(int i) const {
  if (bin_w_[i] > 0) return bin_sum_[i] / bin_w_[i];
  return 0.5 * (edges_[i] + std::min(1.0, edges_[i + 1]));
}

void MarkovChain::Observe(double x, const History&, bool imputed) {
  const int lv = Level(x);
  if (!imputed) {
    if (cur_ >= 0) {
      chain_.Add(cur_, lv);
      touched_[cur_] = static_cast<uint16_t>(std::min(touched_[cur_] + 1, 1000));
      if (lv != cur_) touched_[lv] = static_cast<uint16_t>(std::min(touched_[lv] + 1, 1000));
    }
    bin_sum_[lv] += static_cast<float>(bin_inc_ * x);
    bin_w_[lv] += static_cast<float>(bin_inc_);
    bin_inc_ /= decay_;
    if (bin_inc_ > 1e6) {
      for (size_t i = 0; i < bin_w_.size(); ++i) bin_sum_[i] /= bin_inc_, bin_w_[i] /= bin_inc_;
      bin_inc_ = 1.0;
    }
    ++seen_;
    ++since_refresh_;
  }
  cur_ = lv;
}

void MarkovChain::RefreshCache() const {
  const int k = levels();
  std::vector<double> pw(static_cast<size_t>(k) * k);
  cache_.assign(2 * kCachedHorizons.size() * k, 0.f);
  int have = 0;  // pw holds P^have
  for (size_t c = 0; c < kCachedHorizons.size(); ++c) {
    const int h = kCachedHorizons[c];
    // P^12 = (P^3)^4: reuse the previous power when the horizon is a multiple of it.
    if (have > 0 && h % have == 0) MatrixPower(pw.data(), k, h / have, pw.data());
    else chain_.Power(h, pw.data());
    have = h;
    for (int s = 0; s < k; ++s) {
      const PointForecast f = Moments(&pw[static_cast<size_t>(s) * k]);
      cache_[2 * (c * k + s)] = static_cast<float>(f.mean);
      cache_[2 * (c * k + s) + 1] = static_cast<float>(f.sigma);
    }
  }
  cache_valid_ = true;
  since_refresh_ = 0;
  std::fill(touched_.begin(), touched_.end(), 0);
}

void MarkovChain::LevelDistribution(int h, double* out) const {
  const int k = levels();
  double d[TransitionCounts::kMaxStates] = {};
  if (cur_ >= 0) d[cur_] = 1.0; else std::fill(d, d + k, 1.0 / k);
  chain_.Propagate(d, std::max(1, h), out);
}

PointForecast MarkovChain::Moments(const double* d) const {
  const int k = levels();
  double bm[TransitionCounts::kMaxStates];
  double mean = 0;
  for (int i = 0; i < k; ++i) mean += d[i] * (bm[i] = BinMean(i));
  double var = 0;
  for (int i = 0; i < k; ++i) {
    const double w = std::min(1.0, edges_[i + 1]) - edges_[i];
    var += d[i] * ((bm[i] - mean) * (bm[i] - mean) + w * w / 12);
  }
  return {mean, std::sqrt(var)};
}

PointForecast MarkovChain::Forecast(int h, const History& hist) const {
  PointForecast f;
  ForecastMany(&h, 1, hist, &f);
  return f;
}

void MarkovChain::ForecastMany(const int* hs, int n, const History&, PointForecast* out) const {
  const int k = levels();
  double d0[TransitionCounts::kMaxStates] = {}, d[TransitionCounts::kMaxStates];
  if (cur_ >= 0) d0[cur_] = 1.0; else std::fill(d0, d0 + k, 1.0 / k);
  for (int i = 0; i < n; ++i) {
    const int h = std::max(1, hs[i]);
    int c = -1;
    for (size_t j = 0; j < kCachedHorizons.size(); ++j)
      if (kCachedHorizons[j] == h) c = static_cast<int>(j);
    if (c >= 0 && cur_ >= 0) {
      // Refreshed lazily, only when a cached horizon is asked; the interval grows with
      // what the chain has seen, so each refresh reflects a similar relative change.
      // A rarely visited level's row changes fast (its first visits replace the prior):
      // it also triggers a refresh after max(1, min(16, visits/16)) transitions into or
      // out of it.
      const int visits = static_cast<int>(bin_w_[cur_] / bin_inc_);
      if (!cache_valid_ || since_refresh_ >= std::clamp(seen_ / 16, 1, 16) ||
          touched_[cur_] >= std::clamp(visits / 16, 1, 16))
        RefreshCache();
      const size_t at = 2 * (static_cast<size_t>(c) * k + cur_);
      out[i] = {cache_[at], cache_[at + 1]};
      continue;
    }
    // Exact: one step from a known level touches one row only (Propagate skips zeros).
    chain_.Propagate(d0, h, d);
    out[i] = Moments(d);
  }
}

double MarkovChain::Quantile(const double* dist, double tau) const {
  double acc = 0;
  for (int i = 0; i < levels(); ++i) {
    if (acc + dist[i] >= tau && dist[i] > 0) {
      const double f = (tau - acc) / dist[i];
      const double hi = std::min(1.0, edges_[i + 1]);
      return edges_[i] + f * (hi - edges_[i]);
    }
    acc += dist[i];
  }
  return 1.0;
}

double MarkovChain::ProbStayBelow(double level, int window) const {
  if (cur_ < 0 || window < 1) return window < 1 ? 1.0 : 0.0;
  uint64_t inside = 0;
  for (int i = 0; i < levels(); ++i)
    if (edges_[i + 1] <= level + 1e-12) inside |= uint64_t{1} << i;
  return chain_.StayProb(inside, cur_, window);
}

size_t MarkovChain::memory_bytes() const {
  return sizeof(*this) + chain_.memory_bytes() - sizeof(chain_) +
         edges_.capacity() * sizeof(double) + 2 * bin_w_.capacity() * sizeof(float) +
         cache_.capacity() * sizeof(float) + touched_.capacity() * sizeof(uint16_t);
}

namespace {
// A joint configuration with too many states (or bad edges) falls back to the defaults.
const JointMarkovConfig& Usable(const JointMarkovConfig& cfg) {
  static const JointMarkovConfig kDefault;
  auto ok = [](const std::vector<double>& e) {
    MarkovConfig m;
    m.edges = e;
    return MarkovChain::Validate(m).ok();
  };
  const size_t states = (cfg.cpu_edges.size() - 1) * (cfg.mem_edges.size() - 1);
  if (cfg.cpu_edges.size() < 3 || cfg.mem_edges.size() < 3 || !ok(cfg.cpu_edges) ||
      !ok(cfg.mem_edges) || states > static_cast<size_t>(TransitionCounts::kMaxStates))
    return kDefault;
  return cfg;
}
}  // namespace

JointMarkovChain::JointMarkovChain(const JointMarkovConfig& cfg)
    : cpu_edges_(Usable(cfg).cpu_edges), mem_edges_(Usable(cfg).mem_edges),
      chain_(static_cast<int>((cpu_edges_.size() - 1) * (mem_edges_.size() - 1)),
             Usable(cfg).decay, Usable(cfg).prior, Usable(cfg).stay_prior) {}

void JointMarkovChain::Observe(double cpu, double mem) {
  const int s = Bin(cpu_edges_, cpu) * mem_levels() + Bin(mem_edges_, mem);
  if (cur_ >= 0) chain_.Add(cur_, s);
  cur_ = s;
}

void JointMarkovChain::Distribution(int h, double* out) const {
  const int k = chain_.states();
  std::vector<double> d(k, 0.0);
  if (cur_ >= 0) d[cur_] = 1.0; else std::fill(d.begin(), d.end(), 1.0 / k);
  chain_.Propagate(d.data(), std::max(1, h), out);
}

double JointMarkovChain::ProbMemAtLeast(double level, int h) const {
  std::vector<double> d(chain_.states());
  Distribution(h, d.data());
  double p = 0;
  for (int i = 0; i < cpu_levels(); ++i)
    for (int j = 0; j < mem_levels(); ++j)
      if (mem_edges_[j] >= level - 1e-12) p += d[i * mem_levels() + j];
  return p;
}

double JointMarkovChain::ProbCpuAtLeast(double level, int h) const {
  std::vector<double> d(chain_.states());
  Distribution(h, d.data());
  double p = 0;
  for (int i = 0; i < cpu_levels(); ++i)
    for (int j = 0; j < mem_levels(); ++j)
      if (cpu_edges_[i] >= level - 1e-12) p += d[i * mem_levels() + j];
  return p;
}

double JointMarkovChain::ProbBothStayBelow(double cpu_level, double mem_level, int window) const {
  uint64_t inside = 0;
  for (int i = 0; i < cpu_levels(); ++i)
    for (int j = 0; j < mem_levels(); ++j)
      if (cpu_edges_[i + 1] <= cpu_level + 1e-12 && mem_edges_[j + 1] <= mem_level + 1e-12)
        inside |= uint64_t{1} << (i * mem_levels() + j);
  return chain_.StayProb(inside, cur_, window);
}

size_t JointMarkovChain::memory_bytes() const {
  return sizeof(*this) + chain_.memory_bytes() - sizeof(chain_) +
         (cpu_edges_.capacity() + mem_edges_.capacity()) * sizeof(double);
}

}  // namespace lull::forecast
