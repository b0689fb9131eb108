#include "forecast/arima.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <ostream>
#include <sstream>
#include <string>

#include "tests/forecast/test_util.h"

namespace lull::forecast {
namespace {

using testing::SimulateArma;

TEST(ArimaFit, RecoversAr1) {
  auto x = SimulateArma(3000, 0.3, 0.7, 0.0, 0.05, 1);
  ArimaFit f;
  ASSERT_TRUE(FitArima(x.data(), x.size(), 1, 0, 0, &f).ok());
  EXPECT_NEAR(f.ar[0], 0.7, 0.04);
  EXPECT_NEAR(f.mean, 0.3, 0.02);
  EXPECT_NEAR(std::sqrt(f.sigma2), 0.05, 0.005);
}

TEST(ArimaFit, RecoversMa1AndArma11) {
  auto x = SimulateArma(3000, 0.0, 0.0, 0.5, 1.0, 2);
  ArimaFit f;
  ASSERT_TRUE(FitArima(x.data(), x.size(), 0, 0, 1, &f).ok());
  EXPECT_NEAR(f.ma[0], 0.5, 0.05);
  auto y = SimulateArma(3000, 0.0, 0.6, 0.3, 1.0, 3);
  ASSERT_TRUE(FitArima(y.data(), y.size(), 1, 0, 1, &f).ok());
  EXPECT_NEAR(f.ar[0], 0.6, 0.06);
  EXPECT_NEAR(f.ma[0], 0.3, 0.07);
}

TEST(ArimaFit, DifferencingRecoversArOnIntegratedSeries) {
  auto z = SimulateArma(2000, 0.0, 0.5, 0.0, 1.0, 4);
  std::vector<double> y(z.size());
  double acc = 0;
  for (size_t i = 0; i < z.size(); ++i) y[i] = acc += z[i];
  ArimaFit f;
  ASSERT_TRUE(FitArima(y.data(), y.size(), 1, 1, 0, &f).ok());
  EXPECT_NEAR(f.ar[0], 0.5, 0.05);
}

TEST(ArimaFit, RejectsBadArguments) {
  std::vector<double> x(10, 0.5);
  ArimaFit f;
  Status st = FitArima(x.data(), x.size(), 2, 0, 1, &f);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("at least"), std::string::npos) << st.ToString();
  st = FitArima(x.data(), x.size(), 9, 0, 0, &f);
  EXPECT_NE(st.message().find("p=9"), std::string::npos) << st.ToString();
  x.assign(100, 0.5);
  x[17] = std::nan("");
  st = FitArima(x.data(), x.size(), 1, 0, 0, &f);
  EXPECT_NE(st.message().find("sample 17"), std::string::npos) << st.ToString();
}

TEST(ArimaFit, FlatSeriesDoesNotBlowUp) {
  std::vector<double> x(200, 0.25);
  ArimaFit f;
  ASSERT_TRUE(FitArima(x.data(), x.size(), 2, 0, 1, &f).ok());
  EXPECT_NEAR(f.mean, 0.25, 1e-12);
  for (double a : f.ar) EXPECT_TRUE(std::isfinite(a));
}

TEST(ArimaOnline, ForecastsRevertToMeanAndIntervalsWiden) {
  auto x = SimulateArma(600, 0.4, 0.8, 0.0, 0.03, 5);
  ArimaConfig cfg;
  cfg.p = 1, cfg.q = 0;
  Arima m(cfg);
  ASSERT_TRUE(m.status().ok());
  History h;
  for (double v : x) { h.Push(v); m.Observe(v, h, false); }
  ASSERT_TRUE(m.ready(h));
  EXPECT_GE(m.refits(), 1);
  EXPECT_NEAR(m.ar()[0], 0.8, 0.08);
  const double last = x.back();
  const PointForecast f1 = m.Forecast(1, h), f12 = m.Forecast(12, h);
  // 1-step forecast is mu + phi (x - mu); 12 steps ahead it is close to mu.
  EXPECT_NEAR(f1.mean, 0.4 + m.ar()[0] * (last - 0.4), 0.02);
  EXPECT_LT(std::abs(f12.mean - 0.4), std::abs(f1.mean - 0.4) + 1e-9);
  EXPECT_GT(f12.sigma, f1.sigma);
  EXPECT_NEAR(f1.sigma, 0.03, 0.006);
}

TEST(ArimaOnline, RefitsEarlyWhenTheErrorDrifts) {
  ArimaConfig cfg;
  cfg.p = 1, cfg.q = 0, cfg.refit_every = 100000;  // only drift can trigger a refit
  Arima m(cfg);
  History h;
  auto a = SimulateArma(300, 0.2, 0.5, 0.0, 0.01, 6);
  for (double v : a) { h.Push(v); m.Observe(v, h, false); }
  const int before = m.refits();
  auto b = SimulateArma(200, 0.6, 0.5, 0.0, 0.1, 7);  // 10x the noise, new level
  for (double v : b) { h.Push(v); m.Observe(v, h, false); }
  EXPECT_GT(m.refits(), before);
}

TEST(ArimaOnline, InvalidConfigIsReported) {
  ArimaConfig cfg;
  cfg.p = 7;
  Arima m(cfg);
  EXPECT_FALSE(m.status().ok());
  EXPECT_NE(m.status().message().find("p=7"), std::string::npos);
}

// The reference: statsmodels' ARIMA (exact MLE) on the same simulated series. Our CSS
// estimates must agree with its coefficients.
std::string RunStatsmodels(const std::vector<double>& x, int p, int q, std::string* err) {
  char tmpl[] = "/tmp/lull-arima-XXXXXX";
  const int fd = mkstemp(tmpl);
  if (fd < 0) { *err = "mkstemp failed"; return ""; }
  close(fd);
  {
    std::ofstream f(tmpl);
    for (double v : x) f << v << "\n";
  }
  std::ostringstream cmd;
  cmd << LULL_PYTHON << " -c \"import sys, numpy as np\n"
      << "try:\n from statsmodels.tsa.arima.model import ARIMA\n"
      << "except ImportError:\n print('NOSTATSMODELS'); sys.exit(0)\n"
      << "y=np.loadtxt('" << tmpl << "')\n"
      << "r=ARIMA(y, order=(" << p << ",0," << q << "), trend='c').fit()\n"
      << "print(' '.join('%.6f' % v for v in r.params))\" 2>/dev/null";
  FILE* pipe = popen(cmd.str().c_str(), "r");
  std::string out;
  if (pipe) {
    char buf[512];
    while (fgets(buf, sizeof buf, pipe)) out += buf;
    pclose(pipe);
  }
  std::remove(tmpl);
  if (out.empty()) *err = "could not run " LULL_PYTHON;
  return out;
}

struct RefCase { double phi, theta; int p, q; unsigned seed; };
// Readable parameters in test names, not a byte dump.
void PrintTo(const RefCase& c, std::ostream* os) {
  *os << "ARMA(" << c.p << "," << c.q << ") phi=" << c.phi << " theta=" << c.theta << " seed=" << c.seed;
}

class ArimaVsStatsmodels : public ::testing::TestWithParam<RefCase> {};

TEST_P(ArimaVsStatsmodels, CoefficientsAgree) {
  const RefCase c = GetParam();
  auto x = SimulateArma(1500, 0.3, c.phi, c.theta, 0.05, c.seed);
  std::string err;
  const std::string out = RunStatsmodels(x, c.p, c.q, &err);
  if (out.find("NOSTATSMODELS") != std::string::npos || out.empty())
    GTEST_SKIP() << "statsmodels not available (" << (err.empty() ? "import failed" : err)
                 << "); install python3-statsmodels";
  std::istringstream is(out);
  double konst;
  is >> konst;  // statsmodels reports the mean as 'const'
  std::vector<double> ref(c.p + c.q);
  for (double& v : ref) ASSERT_TRUE(is >> v) << "unexpected statsmodels output: " << out;
  ArimaFit f;
  ASSERT_TRUE(FitArima(x.data(), x.size(), c.p, 0, c.q, &f).ok());
  EXPECT_NEAR(f.mean, konst, 0.01);
  for (int i = 0; i < c.p; ++i) EXPECT_NEAR(f.ar[i], ref[i], 0.03) << "ar" << i + 1;
  for (int j = 0; j < c.q; ++j) EXPECT_NEAR(f.ma[j], ref[c.p + j], 0.03) << "ma" << j + 1;
}

INSTANTIATE_TEST_SUITE_P(Simulated, ArimaVsStatsmodels,
                         ::testing::Values(RefCase{0.7, 0.0, 1, 0, 11}, RefCase{0.0, 0.5, 0, 1, 12},
                                           RefCase{0.6, 0.3, 1, 1, 13}, RefCase{-0.4, 0.0, 1, 0, 14}),
                         // Names say the case, e.g. ARMA11_phi0p60_theta0p30 (gtest allows
                         // only letters, digits and '_', hence 'p' for the point, 'm' for minus).
                         [](const ::testing::TestParamInfo<RefCase>& info) {
                           const RefCase& c = info.param;
                           auto num = [](double v) {
                             char b[16];
                             std::snprintf(b, sizeof b, "%s%dp%02d", v < 0 ? "m" : "",
                                           static_cast<int>(std::abs(v)),
                                           static_cast<int>(std::lround(std::abs(v) * 100)) % 100);
                             return std::string(b);
                           };
                           std::string n = c.q == 0 ? "AR" + std::to_string(c.p)
                                           : c.p == 0 ? "MA" + std::to_string(c.q)
                                                      : "ARMA" + std::to_string(c.p) + std::to_string(c.q);
                           if (c.p > 0) n += "_phi" + num(c.phi);
                           if (c.q > 0) n += "_theta" + num(c.theta);
                           return n;
                         });

}  // namespace
}  // namespace lull::forecast
