#include "forecast/baselines.h"

#include <gtest/gtest.h>

#include <random>

namespace lull::forecast {
namespace {

TEST(Baselines, LastValueAndMovingAverage) {
  History h;
  LastValue last;
  MovingAverage sma(3);
  for (double v : {0.1, 0.2, 0.6, 0.4}) {
    h.Push(v);
    last.Observe(v, h, false);
    sma.Observe(v, h, false);
  }
  EXPECT_DOUBLE_EQ(last.Forecast(5, h).mean, 0.4);
  EXPECT_NEAR(sma.Forecast(1, h).mean, (0.2 + 0.6 + 0.4) / 3, 1e-6);
  // Error scale: last-value 1-step errors were 0.1, 0.4, -0.2.
  EXPECT_NEAR(last.Forecast(1, h).sigma, std::sqrt((0.01 + 0.16 + 0.04) / 3), 1e-6);
  EXPECT_NEAR(last.Forecast(4, h).sigma, 2 * last.Forecast(1, h).sigma, 1e-9);
}

TEST(Baselines, EwmaAlphaFollowsTheSeries) {
  std::mt19937 rng(3);
  std::normal_distribution<double> N(0, 0.02);
  // Noise around a constant: the best alpha is small.
  Ewma noisy(0.5);
  History h;
  for (int i = 0; i < 3000; ++i) { double v = 0.3 + N(rng); h.Push(v); noisy.Observe(v, h, false); }
  // A random walk: the best alpha is 1.
  Ewma walk(0.5);
  double x = 0.5;
  for (int i = 0; i < 3000; ++i) { x += N(rng); h.Push(x); walk.Observe(x, h, false); }
  EXPECT_LT(noisy.alpha(), 0.25);
  EXPECT_GT(walk.alpha(), 0.75);
}

TEST(Baselines, ImputedSamplesDoNotTrainTheErrorScale) {
  History h;
  LastValue last;
  for (double v : {0.1, 0.1, 0.1}) { h.Push(v); last.Observe(v, h, false); }
  h.Push(0.9);
  last.Observe(0.9, h, /*imputed=*/true);
  EXPECT_DOUBLE_EQ(last.Forecast(1, h).sigma, 0.0);
}

}  // namespace
}  // namespace lull::forecast
