#include "forecast/traces.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "tests/forecast/test_util.h"

namespace lull::forecast {
namespace {

namespace fs = std::filesystem;

TEST(Resample, GapsBecomeNaNAndOutOfOrderRowsAreDropped) {
  ResampleStats st;
  const std::vector<double> t = {0, 301, 599, 590, 1500, 1500, 1801};
  const std::vector<double> v = {1, 2, 3, 99, 5, 77, 6};
  auto r = Resample(t, v, 300, &st);
  ASSERT_EQ(r.size(), 7u);
  EXPECT_EQ(r[0], 1);
  EXPECT_EQ(r[1], 2);
  EXPECT_EQ(r[2], 3);
  EXPECT_TRUE(std::isnan(r[3]));
  EXPECT_TRUE(std::isnan(r[4]));
  EXPECT_EQ(r[5], 5);
  EXPECT_EQ(r[6], 6);
  EXPECT_EQ(st.dropped_out_of_order, 2u);  // 590 after 599, and the duplicate 1500
  EXPECT_EQ(st.empty_steps, 2u);
}

TEST(Resample, AveragesSamplesWithinAStep) {
  auto r = Resample({0, 60, 120, 300}, {0.2, 0.4, std::nan(""), 0.9}, 300, nullptr);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_DOUBLE_EQ(r[0], 0.3);
  EXPECT_DOUBLE_EQ(r[1], 0.9);
}

class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("lull-traces-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& text) {
    const auto p = dir_ / name;
    std::ofstream(p) << text;
    return p.string();
  }
  fs::path dir_;
};

const char kBbHeader[] =
    "Timestamp [ms];\tCPU cores;\tCPU capacity provisioned [MHZ];\tCPU usage [MHZ];\tCPU usage [%];"
    "\tMemory capacity provisioned [KB];\tMemory usage [KB];\tDisk read throughput [KB/s];"
    "\tDisk write throughput [KB/s];\tNetwork received throughput [KB/s];\tNetwork transmitted throughput [KB/s]\n";

TEST_F(TempDir, BitbrainsZeroCoresIsMissingAndOver100IsKept) {
  const std::string p = Write("7.csv", std::string(kBbHeader) +
      "1000;\t4;\t1000;\t100;\t10.0;\t1000;\t500;\t0;\t0;\t0;\t0\n"
      "1300;\t0;\t0;\t0;\t0;\t0;\t0;\t0;\t0;\t0;\t0\n"
      "1601;\t4;\t1000;\t1100;\t110.0;\t1000;\t250;\t0;\t0;\t0;\t0\n"
      "2500;\t4;\t1000;\t100;\t20.0;\t1000;\t100;\t0;\t0;\t0;\t0\n");
  Series c, m;
  ResampleStats st;
  ASSERT_TRUE(LoadBitbrainsFile(p, &c, &m, &st).ok());
  ASSERT_EQ(c.values.size(), 6u);
  EXPECT_DOUBLE_EQ(c.values[0], 0.1);
  EXPECT_TRUE(std::isnan(c.values[1]));  // 0 cores: not reporting
  EXPECT_DOUBLE_EQ(c.values[2], 1.1);
  EXPECT_TRUE(std::isnan(c.values[3]));  // gap
  EXPECT_DOUBLE_EQ(m.values[0], 0.5);
  EXPECT_DOUBLE_EQ(m.values[5], 0.1);
}

TEST_F(TempDir, BitbrainsBadFieldNamesFileLineAndColumn) {
  const std::string p = Write("9.csv", std::string(kBbHeader) +
      "1000;\t4;\t1000;\t100;\t10.0;\t1000;\t500;\t0;\t0;\t0;\t0\n"
      "1300;\t4;\t1000;\t100;\tabc;\t1000;\t500;\t0;\t0;\t0;\t0\n");
  Series c, m;
  Status st = LoadBitbrainsFile(p, &c, &m, nullptr);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("9.csv line 3: CPU usage [%] is 'abc'"), std::string::npos)
      << st.ToString();
}

TEST_F(TempDir, PlanetLabRejectsOutOfRangeAndAcceptsSpacesInNames) {
  Series s;
  ASSERT_TRUE(LoadPlanetLabFile(Write("node_a b", "5\n0\n99\n"), &s).ok());
  EXPECT_EQ(s.name, "node_a b");
  EXPECT_DOUBLE_EQ(s.values[2], 0.99);
  Status st = LoadPlanetLabFile(Write("node_c", "5\n140\n"), &s);
  EXPECT_NE(st.message().find("line 2"), std::string::npos) << st.ToString();
}

TEST_F(TempDir, AzureMissingFieldsAreReported) {
  Status st;
  std::vector<Series> out;
  ASSERT_TRUE(LoadAzureCsv(Write("a.csv", "step,11,12\n1,5.5,6\n2,7,8\n"), 0, &out).ok());
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].name, "12");
  EXPECT_DOUBLE_EQ(out[0].values[1], 0.07);
  out.clear();
  st = LoadAzureCsv(Write("b.csv", "step,11,12\n1,5.5\n"), 0, &out);
  EXPECT_NE(st.message().find("line 2"), std::string::npos) << st.ToString();
}

// --- on the real traces (skipped when ../shared/traces is absent) -------------------

#define REQUIRE_TRACES(sub)                                                         \
  const std::string root = testing::TracesDir();                                   \
  if (!fs::exists(fs::path(root) / sub))                                            \
    GTEST_SKIP() << "traces not found at " << root << "/" << sub                   \
                 << " (set LULL_TRACES to the traces folder)";

TEST(TracesReal, PlanetLabDayWithSpacedNames) {
  REQUIRE_TRACES("planetlab/20110303");
  std::vector<Series> all;
  ASSERT_TRUE(LoadPlanetLabDay(root + "/planetlab/20110303", 0, &all).ok());
  EXPECT_EQ(all.size(), 1052u);
  size_t spaced = 0;
  for (const auto& s : all) {
    EXPECT_EQ(s.values.size(), 288u) << s.name;
    spaced += s.name.find(' ') != std::string::npos;
  }
  EXPECT_GT(spaced, 0u);
}

TEST(TracesReal, BitbrainsHasMissingStepsButNoneAreZeroFilled) {
  REQUIRE_TRACES("bitbrains_rnd/2013-8");
  size_t nan = 0, total = 0;
  for (const char* f : {"105.csv", "14.csv", "21.csv"}) {
    Series c, m;
    ResampleStats st;
    ASSERT_TRUE(LoadBitbrainsFile(root + "/bitbrains_rnd/2013-8/" + f, &c, &m, &st).ok());
    EXPECT_GT(c.values.size(), 8000u);
    for (double v : c.values) {
      ++total;
      if (std::isnan(v)) ++nan;
      else EXPECT_LE(v, 1.2);
    }
  }
  EXPECT_LT(nan, total / 10);
}

TEST(TracesReal, AzureAndAlibaba) {
  REQUIRE_TRACES("azure_v1/microsoft_avg_100.csv");
  std::vector<Series> az;
  ASSERT_TRUE(LoadAzureCsv(root + "/azure_v1/microsoft_avg_100.csv", 5, &az).ok());
  ASSERT_EQ(az.size(), 5u);
  EXPECT_EQ(az[0].values.size(), 8004u);
  std::vector<Series> cpu, mem;
  ResampleStats st;
  ASSERT_TRUE(LoadAlibabaUsage(root + "/alibaba_v2018/machine_usage.csv", 300, 2000, &cpu, &mem, &st).ok());
  EXPECT_EQ(cpu.size(), 14u);  // m_1932 and m_1947 cover only part of the 8 days
  EXPECT_GT(st.empty_steps, 0u);
  for (const auto& s : mem) {
    double sum = 0;
    size_t n = 0;
    for (double v : s.values) if (!std::isnan(v)) sum += v, ++n;
    EXPECT_GT(sum / n, 0.5) << s.name;  // memory runs high on these hosts
  }
}

}  // namespace
}  // namespace lull::forecast
