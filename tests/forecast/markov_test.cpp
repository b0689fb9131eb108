#include "forecast/markov.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

namespace lull::forecast {
namespace {

TEST(Markov, LearnsACycle) {
  MarkovConfig cfg;
  cfg.edges = {0, 0.25, 0.5, 0.75, 1.0001};
  MarkovChain m(cfg);
  History h;
  const double cyc[] = {0.1, 0.4, 0.9};
  for (int i = 0; i < 300; ++i) { const double v = cyc[i % 3]; h.Push(v); m.Observe(v, h, false); }
  // Last sample was cyc[299 % 3] = 0.9 -> next is 0.1, then 0.4.
  double d[4];
  m.LevelDistribution(1, d);
  EXPECT_GT(d[0], 0.9);
  m.LevelDistribution(2, d);
  EXPECT_GT(d[1], 0.85);
  EXPECT_NEAR(m.Forecast(1, h).mean, 0.1, 0.05);
  EXPECT_NEAR(m.Forecast(2, h).mean, 0.4, 0.07);
}

TEST(Markov, StayProbabilityMatchesTheTwoStateFormula) {
  // Two levels; from "low" the chain stays low with probability ~0.9.
  MarkovConfig cfg;
  cfg.edges = {0, 0.5, 1.0001};
  cfg.decay = 1.0;
  cfg.prior = 0, cfg.stay_prior = 0;
  MarkovChain m(cfg);
  History h;
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> U(0, 1);
  bool low = true;
  for (int i = 0; i < 200000; ++i) {
    low = low ? U(rng) < 0.9 : U(rng) < 0.5;
    const double v = low ? 0.2 : 0.8;
    h.Push(v);
    m.Observe(v, h, false);
  }
  // Put the chain in the low state, then ask.
  h.Push(0.2);
  m.Observe(0.2, h, /*imputed=*/true);
  for (int w : {1, 3, 10}) EXPECT_NEAR(m.ProbStayBelow(0.5, w), std::pow(0.9, w), 0.01) << w;
  // A level below every bin's upper edge: never "below".
  EXPECT_EQ(m.ProbStayBelow(0.3, 1), 0.0);
  EXPECT_NEAR(m.ProbStayBelow(1.5, 5), 1.0, 1e-9);
}

TEST(Markov, DecayForgetsOldRegimes) {
  MarkovConfig cfg;
  cfg.edges = {0, 0.5, 1.0001};
  cfg.decay = 0.98;
  MarkovChain m(cfg);
  History h;
  for (int i = 0; i < 2000; ++i) { const double v = i % 2 ? 0.8 : 0.2; h.Push(v); m.Observe(v, h, false); }
  for (int i = 0; i < 400; ++i) { h.Push(0.2); m.Observe(0.2, h, false); }  // now always low
  EXPECT_GT(m.ProbStayBelow(0.5, 5), 0.8);
}

TEST(Markov, BadEdgesAreRejected) {
  MarkovConfig cfg;
  cfg.edges = {0, 0.5, 0.4, 1.1};
  Status st = MarkovChain::Validate(cfg);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("index 2"), std::string::npos) << st.ToString();
}

TEST(JointMarkov, CpuBurstIsFollowedByMemoryGrowth) {
  JointMarkovChain j;
  // Pattern: idle, one step of high CPU with low memory, then two steps of high memory.
  for (int rep = 0; rep < 300; ++rep) {
    for (int i = 0; i < 6; ++i) j.Observe(0.05, 0.3);
    j.Observe(0.9, 0.3);
    j.Observe(0.4, 0.95);
    j.Observe(0.2, 0.95);
  }
  for (int i = 0; i < 6; ++i) j.Observe(0.05, 0.3);
  const double quiet = j.ProbMemAtLeast(0.9, 1);
  EXPECT_GT(j.ProbCpuAtLeast(0.85, 1), 0.1);  // from idle, a burst may start
  j.Observe(0.9, 0.3);
  const double after_burst = j.ProbMemAtLeast(0.9, 1);
  const double two_ahead = j.ProbMemAtLeast(0.9, 2);
  EXPECT_LT(quiet, 0.05);
  EXPECT_GT(after_burst, 0.9);  // the CPU burst announces the memory growth
  EXPECT_GT(two_ahead, 0.85);
  EXPECT_LT(j.ProbBothStayBelow(0.3, 0.5, 1), 0.1);
}

// Brute force over every path of W steps: P(all W next states inside | start).
double EnumerateStay(const TransitionCounts& tc, uint64_t inside, int start, int W) {
  if (W == 0) return 1.0;
  double p = 0;
  for (int j = 0; j < tc.states(); ++j)
    if (inside >> j & 1) p += tc.Prob(start, j) * EnumerateStay(tc, inside, j, W - 1);
  return p;
}

TEST(Markov, StayProbMatchesPathEnumeration) {
  TransitionCounts tc(4, 0.99, 0.01, 0.5);
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> S(0, 3);
  for (int i = 0; i < 500; ++i) tc.Add(S(rng), std::min(3, S(rng) / 2 + (i % 3)));
  const uint64_t inside = 0b0011;  // states 0 and 1
  for (int start = 0; start < 4; ++start)  // 2 and 3 start outside and may move in
    for (int W : {1, 2, 5})
      EXPECT_NEAR(tc.StayProb(inside, start, W), EnumerateStay(tc, inside, start, W), 1e-12)
          << "start " << start << " W " << W;
  EXPECT_EQ(tc.StayProb(0, 0, 3), 0.0);
}

TEST(Markov, MatrixPowerMatchesStepByStepPropagation) {
  TransitionCounts tc(5, 0.995, 0.01, 0.5);
  std::mt19937 rng(4);
  std::uniform_int_distribution<int> S(0, 4);
  for (int i = 0; i < 300; ++i) tc.Add(S(rng), S(rng));
  std::vector<double> P(25);
  for (int h : {1, 2, 3, 7, 12}) {
    tc.Power(h, P.data());
    for (int s = 0; s < 5; ++s) {
      double d[5] = {}, out[5];
      d[s] = 1;
      tc.Propagate(d, h, out);
      for (int j = 0; j < 5; ++j) EXPECT_NEAR(P[s * 5 + j], out[j], 1e-12) << "h " << h;
    }
  }
}

TEST(Markov, CachedMultiStepForecastsFollowTheChain) {
  // Two levels with constant values 0.2 / 0.8, so the exact mean h steps ahead is
  // 0.2 d_low + 0.8 d_high of the exactly propagated distribution. The regime changes
  // half-way (low becomes much less sticky): forecasts from the cached powers must
  // follow it within a small staleness error at every step.
  MarkovConfig cfg;
  cfg.edges = {0, 0.5, 1.0001};
  MarkovChain m(cfg);
  History h;
  std::mt19937 rng(6);
  std::uniform_real_distribution<double> U(0, 1);
  bool low = true;
  double worst = 0, moved = 0, first12 = -1;
  bool seen_high = false;
  for (int i = 0; i < 4000; ++i) {
    const double stay = i < 2000 ? 0.97 : 0.5;
    low = low ? U(rng) < stay : U(rng) < 0.3;
    const double v = low ? 0.2 : 0.8;
    h.Push(v);
    m.Observe(v, h, false);
    seen_high |= !low;
    if (!m.ready(h) || !seen_high) continue;  // until then the high bin's mean is its centre
    for (int H : {3, 12}) {
      double d[2];
      m.LevelDistribution(H, d);
      const double exact = 0.2 * d[0] + 0.8 * d[1];
      const double cached = m.Forecast(H, h).mean;
      worst = std::max(worst, std::abs(cached - exact));
      if (H == 12 && low) {
        if (first12 < 0) first12 = cached;
        moved = std::max(moved, std::abs(cached - first12));
      }
    }
  }
  // Sixteen transitions of staleness after an abrupt switch move P^12 by a few percent;
  // a cache that missed the switch would be off by more than 0.2.
  EXPECT_LT(worst, 0.05);
  EXPECT_GT(moved, 0.2);  // the forecasts did change with the regime (the cache refreshed)
}

}  // namespace
}  // namespace lull::forecast
