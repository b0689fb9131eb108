#include "forecast/guest_forecaster.h"
#include "forecast/series_forecaster.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "tests/forecast/test_util.h"

namespace lull::forecast {
namespace {

using testing::SimulateArma;

bool Same(const Distribution& a, const Distribution& b) {
  return a.mean == b.mean && a.p50 == b.p50 && a.p90 == b.p90 && a.p95 == b.p95 &&
         a.p99 == b.p99 && a.confidence == b.confidence;
}

TEST(Ensemble, RejectsOutOfRangeWithoutChangingState) {
  SeriesForecaster f;
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(f.observe(0.2 + 0.01 * (i % 5)).ok());
  const Distribution before = f.forecast(3);
  const double stay = f.prob_stay_below(0.3, 5);
  for (double bad : {-0.1, 1.7, std::numeric_limits<double>::infinity()}) {
    Status st = f.observe(bad);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.code(), Status::Code::kInvalidArgument);
    EXPECT_NE(st.message().find("outside"), std::string::npos) << st.ToString();
  }
  EXPECT_NE(f.observe(-0.1).message().find("-0.1"), std::string::npos);
  EXPECT_TRUE(Same(before, f.forecast(3)));
  EXPECT_EQ(stay, f.prob_stay_below(0.3, 5));
  EXPECT_EQ(f.samples(), 100u);
}

TEST(Ensemble, ClampsSlightlyAboveOne) {
  SeriesForecaster a, b;
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(a.observe(1.1).ok());
    ASSERT_TRUE(b.observe(1.0).ok());
  }
  EXPECT_TRUE(Same(a.forecast(1), b.forecast(1)));
  EXPECT_LE(a.forecast(1).p99, 1.0);
}

TEST(Ensemble, MissingStepsKeepTheModelSane) {
  SeriesForecaster f;
  auto x = SimulateArma(800, 0.3, 0.8, 0.0, 0.03, 21);
  for (size_t i = 0; i < x.size(); ++i) {
    const double v = (i % 10 == 3 || (i > 400 && i < 460)) ? std::nan("") : std::clamp(x[i], 0.0, 1.0);
    ASSERT_TRUE(f.observe(v).ok());
  }
  EXPECT_EQ(f.samples(), 800u - 80u - 59u + 6u);  // 80 every-10th, 59 in the gap, 6 overlap
  const Distribution d = f.forecast(1);
  EXPECT_TRUE(std::isfinite(d.mean));
  EXPECT_NEAR(d.mean, 0.3, 0.15);
  EXPECT_GT(d.confidence, 0);
}

TEST(Ensemble, QuantilesAreOrderedAndCalibrated) {
  SeriesForecaster f;
  std::mt19937 rng(8);
  std::normal_distribution<double> N(0.4, 0.05);
  int below95 = 0, n = 0;
  Distribution prev;
  for (int i = 0; i < 6000; ++i) {
    const double v = std::clamp(N(rng), 0.0, 1.0);
    if (i > 1000) { ++n; below95 += v <= prev.p95; }
    ASSERT_TRUE(f.observe(v).ok());
    prev = f.forecast(1);
    ASSERT_LE(prev.p50, prev.p90);
    ASSERT_LE(prev.p90, prev.p95);
    ASSERT_LE(prev.p95, prev.p99);
    ASSERT_GE(prev.p50, 0);
    ASSERT_LE(prev.p99, 1);
  }
  EXPECT_NEAR(static_cast<double>(below95) / n, 0.95, 0.025);
  EXPECT_NEAR(prev.p50, 0.4, 0.03);
  EXPECT_GT(prev.confidence, 0.3);
}

TEST(Ensemble, WeighsTheBestModelAndBeatsTheBaselines) {
  // A strongly autocorrelated series with mean reversion: ARIMA should earn the weight,
  // and the ensemble's 1-step MAE should not be worse than last value or SMA.
  auto x = SimulateArma(4000, 0.35, 0.6, 0.3, 0.04, 31);
  SeriesForecaster f;
  double ens = 0, last = 0, sma = 0;
  int n = 0;
  double prev_ens = 0, prev_last = 0, prev_sma = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double v = std::clamp(x[i], 0.0, 1.0);
    if (i > 600) {
      ens += std::abs(v - prev_ens), last += std::abs(v - prev_last), sma += std::abs(v - prev_sma);
      ++n;
    }
    ASSERT_TRUE(f.observe(v).ok());
    prev_ens = f.forecast(1).mean;
    prev_last = v;
    prev_sma = f.model(1).Forecast(1, f.history()).mean;
  }
  EXPECT_LT(ens, last);
  EXPECT_LT(ens, sma);
  EXPECT_GT(f.weight(3, 1), 0.3) << "arima weight";
}

TEST(Ensemble, FitsTheMemoryBudget) {
  SeriesForecaster f;
  for (int i = 0; i < 2000; ++i) f.observe(0.1 * (i % 7));
  EXPECT_LT(f.memory_bytes(), 16u * 1024);
  GuestForecaster g;
  EXPECT_LT(g.memory_bytes(), 2 * 16u * 1024 + 4096);
}

TEST(Ensemble, StayBelowFromTheMarkovChain) {
  SeriesForecaster f;
  for (int i = 0; i < 500; ++i) f.observe(0.01 + 0.005 * (i % 3));
  EXPECT_GT(f.prob_stay_below(0.05, 12), 0.9);
  SeriesForecaster g;
  for (int i = 0; i < 500; ++i) g.observe(i % 2 ? 0.9 : 0.01);
  EXPECT_LT(g.prob_stay_below(0.05, 3), 0.05);
  EXPECT_FALSE(g.using_lstm());
}

TEST(Guest, RejectsOneBadResourceAndChangesNeither) {
  GuestForecaster g;
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(g.observe(0.2, 0.5).ok());
  const Distribution c = g.forecast_cpu(1), m = g.forecast_mem(1);
  Status st = g.observe(0.3, 2.0);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("memory"), std::string::npos) << st.ToString();
  EXPECT_TRUE(Same(c, g.forecast_cpu(1)));
  EXPECT_TRUE(Same(m, g.forecast_mem(1)));
  EXPECT_EQ(g.cpu().samples(), 40u);
  ASSERT_TRUE(g.observe(std::nan(""), 0.5).ok());
  EXPECT_EQ(g.cpu().samples(), 40u);
  EXPECT_EQ(g.mem().samples(), 41u);
}

TEST(Ensemble, ForecastIsTheWeightedSumOfTheModels) {
  // forecast() answers tracked horizons from what observe() cached and others by asking
  // the models: either way it must be the weighted sum of the members' forecasts now.
  SeriesForecaster f;
  auto x = SimulateArma(700, 0.3, 0.7, 0.3, 0.04, 22);
  for (double v : x) ASSERT_TRUE(f.observe(std::clamp(v, 0.0, 1.0)).ok());
  for (int h : {1, 3, 12, 2, 5, 20}) {
    double m = 0, wsum = 0;
    for (int i = 0; i < SeriesForecaster::kModels; ++i) {
      const double w = f.weight(i, h);
      wsum += w;
      if (w > 0) m += w * f.model(i).Forecast(h, f.history()).mean;
    }
    EXPECT_NEAR(wsum, 1.0, 1e-9) << "h " << h;
    EXPECT_NEAR(f.forecast(h).mean, std::clamp(m, 0.0, 1.0), 1e-9) << "h " << h;
  }
}

}  // namespace
}  // namespace lull::forecast
