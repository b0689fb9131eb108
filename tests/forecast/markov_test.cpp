#include "forecast/markov.h"

#include <gtest/gtest.h>

#include <cmath>
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

}  // namespace
}  // namespace lull::forecast
