#include "forecast/seasonal.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace lull::forecast {
namespace {

std::vector<double> Periodic(size_t n, int period, double noise, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> N(0, noise);
  std::vector<double> x(n);
  for (size_t i = 0; i < n; ++i)
    x[i] = 0.4 + 0.3 * std::sin(2 * M_PI * i / period) + (i % period < 3 ? 0.2 : 0.0) + N(rng);
  return x;
}

TEST(Seasonal, DetectsThePeriod) {
  auto x = Periodic(600, 48, 0.03, 1);
  double acf;
  EXPECT_EQ(DetectPeriod(x.data(), x.size(), 4, 0.3, &acf), 48);
  EXPECT_GT(acf, 0.7);
}

TEST(Seasonal, NoPeriodInWhiteNoise) {
  std::mt19937 rng(2);
  std::normal_distribution<double> N(0.3, 0.1);
  std::vector<double> x(600);
  for (double& v : x) v = N(rng);
  EXPECT_EQ(DetectPeriod(x.data(), x.size(), 4, 0.3, nullptr), 0);
}

TEST(Seasonal, PredictsTheRepeatingShape) {
  auto x = Periodic(700, 30, 0.0, 3);
  SeasonalConfig cfg;
  cfg.detect_every = 64;
  Seasonal m(cfg);
  History h;
  for (size_t i = 0; i + 20 < x.size(); ++i) { h.Push(x[i]); m.Observe(x[i], h, false); }
  ASSERT_TRUE(m.ready(h));
  EXPECT_EQ(m.period(), 30);
  const size_t t = x.size() - 21;  // index of the newest observed sample
  for (int hz : {1, 5, 12, 20}) EXPECT_NEAR(m.Forecast(hz, h).mean, x[t + hz], 1e-6) << hz;
}

}  // namespace
}  // namespace lull::forecast
