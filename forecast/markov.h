// Discrete-time Markov chains over quantized utilization levels.
//
// TransitionCounts: a K-state chain with exponentially decaying transition counts (each
// new transition weighs 1/decay times the previous one; counts are rescaled before they
// overflow, so the cost per observation is O(1), not O(K^2)). Transition probabilities
// are counts plus a prior that favours staying put (`stay_prior` on the diagonal, `prior`
// elsewhere), so an unvisited state predicts persistence rather than a uniform jump.
// Multi-step distributions are vector-matrix powers (O(K^2) per step of horizon);
// Power() gives the whole matrix P^h by repeated squaring (O(K^3 log h)).
// StayProb is the probability of remaining inside a set of states for W steps (the
// complement of the hitting probability of its outside), by the standard backward
// recursion f_W = P_B f_{W-1}.
//
// MarkovChain: the model over one series (bins given by `edges`, default finer at low
// utilization where most guests live). A value x falls in bin i when
// edges[i] <= x < edges[i+1]; the last edge is above 1 so 1.0 belongs to the top bin.
// Means use the decayed average of the values seen in each bin, not the bin centres.
// Forecasts at the horizons the ensemble tracks beyond 1 (kCachedHorizons: 3 and 12)
// read the mean and spread of each start level from matrix powers P^h cached at a
// refresh (made when such a horizon is asked and max(1, min(16, n/16)) real samples
// came since the last: often while the chain is young, every 16 once it has seen 256;
// a caller asking only h = 1 never pays for it; and when the current level, if rarely
// visited, has seen max(1, min(16, visits/16)) transitions since); with decay 0.998 sixteen new transitions move P by
// ~3 %, far below the forecast error. One step ahead, and any other horizon, are exact.
// LevelDistribution is always exact.
// ProbStayBelow(level, W) counts a bin as "below" only when its upper edge <= level:
// conservative - it never claims a lull the quantization cannot see.
//
// JointMarkovChain: one chain over (CPU level, memory level) pairs, so sequences such as
// "high CPU, then high memory" are learnt (a product of two marginal chains cannot).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "forecast/model.h"
#include "forecast/status.h"

namespace lull::forecast {

// At most kMaxStates states (the joint chain's 5 x 5 levels fit), so that the per-step
// work uses stack arrays and no heap.
class TransitionCounts {
 public:
  TransitionCounts(int states, double decay, double prior, double stay_prior);
  int states() const { return k_; }
  void Add(int from, int to);
  double Prob(int from, int to) const;
  static constexpr int kMaxStates = 64;
  // out = dist * P^h (dist and out have states() entries; may alias). When `every` is
  // not null, every[s * states() + j] receives dist * P^(s+1) for s < h.
  void Propagate(const double* dist, int h, double* out, double* every = nullptr) const;
  // P(next W states all in `inside` | now in `start`); bit i of `inside` = state i.
  // The recursion only runs over the inside states: O(W |inside|^2 + K).
  double StayProb(uint64_t inside, int start, int window) const;
  // out (states() x states(), row-major) = P^h, h >= 1.
  void Power(int h, double* out) const;
  size_t memory_bytes() const { return sizeof(*this) + counts_.capacity() * sizeof(float) + rows_.capacity() * sizeof(float); }

 private:
  int k_;
  double decay_, prior_, stay_prior_;
  double inc_ = 1.0;  // weight of the next transition (grows as 1/decay)
  std::vector<float> counts_;  // k*k, row = from
  std::vector<float> rows_;    // row sums
};

// out = a^e for a k x k row-major matrix (e >= 1; out may alias a).
void MatrixPower(const double* a, int k, int e, double* out);

struct MarkovConfig {
  std::vector<double> edges = {0, .02, .05, .1, .15, .2, .3, .4, .5, .6, .7, .8, .9, 1.0001};
  double decay = 0.998;      // half-life ~350 transitions
  double prior = 0.01;
  double stay_prior = 0.5;
};

class MarkovChain final : public Model {
 public:
  explicit MarkovChain(const MarkovConfig& cfg = {});
  // InvalidArgument if the edges are not increasing from 0 to above 1.
  static Status Validate(const MarkovConfig& cfg);
  const char* name() const override { return "markov"; }
  void Observe(double x, const History& hist, bool imputed) override;
  PointForecast Forecast(int h, const History& hist) const override;
  void ForecastMany(const int* hs, int n, const History& hist, PointForecast* out) const override;
  bool ready(const History&) const override { return seen_ >= 8; }
  size_t memory_bytes() const override;

  int levels() const { return chain_.states(); }
  int Level(double x) const;
  int current() const { return cur_; }
  // Distribution over levels h steps ahead (levels() entries).
  void LevelDistribution(int h, double* out) const;
  // Quantile tau of the h-step value, piecewise uniform within bins.
  double Quantile(const double* dist, double tau) const;
  double ProbStayBelow(double level, int window) const;
  const std::vector<double>& edges() const { return edges_; }
  static constexpr std::array<int, 2> kCachedHorizons = {3, 12};

 private:
  void RefreshCache() const;
  std::vector<double> edges_;
  TransitionCounts chain_;
  std::vector<float> bin_sum_, bin_w_;  // decayed sums of values per bin, for bin means
  double bin_inc_ = 1.0, decay_;
  int cur_ = -1;
  int seen_ = 0;
  // Per cached horizon c and start level s: mean at [2 (c K + s)], sigma next to it.
  // Mutable: filled on demand by the const forecast calls (the class is single-threaded).
  mutable std::vector<float> cache_;
  mutable bool cache_valid_ = false;
  mutable int since_refresh_ = 0;
  // Transitions into or out of each level since the last refresh (saturating).
  mutable std::vector<uint16_t> touched_;
  double BinMean(int i) const;
  PointForecast Moments(const double* dist) const;
};

struct JointMarkovConfig {
  std::vector<double> cpu_edges = {0, .1, .3, .6, .85, 1.0001};
  std::vector<double> mem_edges = {0, .25, .5, .75, .9, 1.0001};
  double decay = 0.998, prior = 0.01, stay_prior = 0.5;
};

// A configuration with bad edges or more than kMaxStates joint states is replaced by
// the defaults (the constructor cannot fail; Validate the edges first to be told why).
class JointMarkovChain {
 public:
  explicit JointMarkovChain(const JointMarkovConfig& cfg = {});
  void Observe(double cpu, double mem);
  int cpu_levels() const { return static_cast<int>(cpu_edges_.size()) - 1; }
  int mem_levels() const { return static_cast<int>(mem_edges_.size()) - 1; }
  // Joint distribution h steps ahead, out[i * mem_levels() + j] = P(cpu bin i, mem bin j).
  void Distribution(int h, double* out) const;
  // P(memory >= level h steps ahead), bins counted when their lower edge >= level.
  double ProbMemAtLeast(double level, int h) const;
  double ProbCpuAtLeast(double level, int h) const;
  // P(both CPU and memory stay below their levels for the next W steps).
  double ProbBothStayBelow(double cpu_level, double mem_level, int window) const;
  int current() const { return cur_; }
  size_t memory_bytes() const;

 private:
  std::vector<double> cpu_edges_, mem_edges_;
  TransitionCounts chain_;
  int cur_ = -1;
};

}  // namespace lull::forecast
