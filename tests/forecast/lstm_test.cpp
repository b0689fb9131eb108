#include "forecast/lstm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>

#include <unistd.h>

#include "forecast/metrics.h"

namespace lull::forecast {
namespace {

// Bursty series: long idle stretches with short busy bursts; a lull is predictable from
// how long the series has been idle.
std::vector<double> Bursty(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> U(0, 1);
  std::vector<double> x(n);
  int phase = 0;
  for (size_t i = 0; i < n; ++i) {
    phase = (phase + 1) % 20;
    x[i] = phase < 4 ? 0.5 + 0.3 * U(rng) : 0.02 * U(rng);
  }
  return x;
}

double Brier(const InactivityLstm& m, const std::vector<double>& x, double level, int w) {
  BrierScore b;
  InactivityLstm::State s;
  for (size_t t = 0; t + w < x.size(); ++t) {
    m.Step(&s, x[t]);
    bool stay = true;
    for (int k = 1; k <= w; ++k) stay = stay && x[t + k] < level;
    b.Add(m.Prob(s, level, w), stay);
  }
  return b.score();
}

TEST(Lstm, TrainingLearnsWhenLullsCome) {
  std::vector<std::vector<double>> train = {Bursty(3000, 1), Bursty(3000, 2)};
  const auto test = Bursty(2000, 3);
  InactivityLstm m;
  const double before = Brier(m, test, 0.1, 6);
  LstmTrainConfig cfg;
  cfg.epochs = 4;
  cfg.windows = {3, 6};
  cfg.levels = {0.1};
  LstmTrainReport rep;
  ASSERT_TRUE(m.Train(train, cfg, &rep).ok());
  ASSERT_EQ(rep.epoch_loss.size(), 4u);
  EXPECT_LT(rep.epoch_loss.back(), rep.epoch_loss.front());
  const double after = Brier(m, test, 0.1, 6);
  EXPECT_LT(after, 0.5 * before);
  EXPECT_LT(after, 0.1);  // base rate ~0.5 would score 0.25 by always answering it
}

TEST(Lstm, SaveLoadRoundTripAndCorruption) {
  InactivityLstm a;
  LstmTrainConfig cfg;
  cfg.epochs = 1;
  cfg.hidden = 6;
  ASSERT_TRUE(a.Train({Bursty(500, 4)}, cfg, nullptr).ok());
  // Per process: ctest runs tests in parallel, and other build trees may run this one too.
  const std::string path = ::testing::TempDir() + "/lull_lstm_weights_" + std::to_string(::getpid()) + ".txt";
  ASSERT_TRUE(a.Save(path).ok());
  InactivityLstm b;
  ASSERT_TRUE(b.Load(path).ok());
  EXPECT_EQ(b.hidden(), 6);
  InactivityLstm::State sa, sb;
  for (double v : {0.1, 0.5, 0.02}) { a.Step(&sa, v); b.Step(&sb, v); }
  EXPECT_DOUBLE_EQ(a.Prob(sa, 0.1, 3), b.Prob(sb, 0.1, 3));
  {
    std::ofstream f(path);
    f << "lull-inactivity-lstm v1 hidden 6 params 9999\n1\n";
  }
  Status st = b.Load(path);
  EXPECT_EQ(st.code(), Status::Code::kCorruption);
  EXPECT_NE(st.message().find(path), std::string::npos);
  EXPECT_EQ(b.Load("/nonexistent/weights").code(), Status::Code::kNotFound);
  std::remove(path.c_str());
}

TEST(Lstm, RejectsBadTrainingInput) {
  InactivityLstm m;
  LstmTrainConfig cfg;
  cfg.hidden = 40;
  EXPECT_NE(m.Train({{0.1}}, cfg, nullptr).message().find("hidden=40"), std::string::npos);
  cfg.hidden = 8;
  Status st = m.Train({{0.1, std::nan(""), 0.2}}, cfg, nullptr);
  EXPECT_NE(st.message().find("non-finite value at 1"), std::string::npos) << st.ToString();
}

}  // namespace
}  // namespace lull::forecast
