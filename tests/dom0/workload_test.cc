// Workloads: the built-in generator and every trace format.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

#include "dom0/workload.h"

namespace lull::dom0 {
namespace {

namespace fs = std::filesystem;

std::string TracesDir() {
  const char* e = std::getenv("LULL_TRACES");
  return e ? e : LULL_DEFAULT_TRACES;
}

#define NEED_TRACES(sub)                                                                    \
  std::string dir = TracesDir() + "/" sub;                                                  \
  if (!fs::exists(dir)) GTEST_SKIP() << "traces not found at " << dir << " (set LULL_TRACES)";

TEST(Generator, DeterministicForASeedAndDifferentAcrossSeeds) {
  Workload a, b, c;
  GeneratorConfig g{.guests = 6, .duration_s = 7200, .seed = 5};
  ASSERT_TRUE(GenerateBuiltin(g, &a).ok());
  ASSERT_TRUE(GenerateBuiltin(g, &b).ok());
  g.seed = 6;
  ASSERT_TRUE(GenerateBuiltin(g, &c).ok());
  ASSERT_EQ(a.guests.size(), 6u);
  EXPECT_EQ(a.guests[0].cpu, b.guests[0].cpu);
  EXPECT_NE(a.guests[0].cpu, c.guests[0].cpu);
  for (size_t i = 0; i < a.guests.size(); ++i) {
    for (int64_t t = 0; t < 7200; t += 97) {
      EXPECT_GE(a.Cpu(i, t), 0.0);
      EXPECT_LE(a.Cpu(i, t), a.guests[i].info.vcpus);
      EXPECT_LE(a.Mem(i, t), a.guests[i].info.mem_max_gib);
    }
  }
}

TEST(Generator, HasLullsAndBursts) {
  Workload w;
  ASSERT_TRUE(GenerateBuiltin({.guests = 4, .duration_s = 86400, .seed = 1}, &w).ok());
  // The batch guest (kind 0) spends time both near idle and busy.
  int idle = 0, busy = 0;
  for (int64_t t = 0; t < 86400; t += 60) {
    double u = w.Cpu(0, t) / w.guests[0].info.vcpus;
    idle += u < 0.05;
    busy += u > 0.3;
  }
  EXPECT_GT(idle, 200);
  EXPECT_GT(busy, 50);
  EXPECT_DOUBLE_EQ(w.MaxCpu(0, 0, 86400), [&] { double m = 0; for (int64_t t = 0; t < 86400; ++t) m = std::max(m, w.Cpu(0, t)); return m; }());
}

TEST(Generator, RejectsBadConfig) {
  Workload w;
  EXPECT_EQ(GenerateBuiltin({.guests = 0}, &w).code(), Status::Code::kInvalidArgument);
  Status s = GenerateBuiltin({.guests = 2, .duration_s = 10}, &w);
  EXPECT_NE(s.message().find("duration_s"), std::string::npos);
}

TEST(Traces, MissingOrAmbiguousDirectoryIsAClearError) {
  Workload w;
  Status s = LoadTraces("/nonexistent/lull/traces", {}, &w);
  EXPECT_EQ(s.code(), Status::Code::kNotFound);
  EXPECT_NE(s.message().find("/nonexistent/lull/traces"), std::string::npos);
  if (fs::exists(TracesDir())) {
    s = LoadTraces(TracesDir(), {}, &w);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
    EXPECT_NE(s.message().find("several datasets"), std::string::npos) << s.ToString();
  }
}

TEST(Traces, PlanetLab) {
  NEED_TRACES("planetlab")
  Workload w;
  ASSERT_TRUE(LoadTraces(dir, {.guests = 16}, &w).ok());  // the folder = its first day
  ASSERT_EQ(w.guests.size(), 16u);
  EXPECT_EQ(w.guests[0].step_s, 300);
  EXPECT_EQ(w.guests[0].cpu.size(), 288u);
  EXPECT_DOUBLE_EQ(w.duration_s, 86400);
  EXPECT_NE(w.guests[0].source.find("planetlab:"), std::string::npos);
}

TEST(Traces, PlanetLabFileNamesWithSpacesAndBadValues) {
  fs::path d = fs::temp_directory_path() / ("lull_pl_test_" + std::to_string(::getpid()));  // per process: ctest -j
  fs::remove_all(d);
  fs::create_directories(d);
  { std::ofstream(d / "node_a slice") << "5\n7\n9\n"; }
  Workload w;
  ASSERT_TRUE(LoadTraces(d.string(), {}, &w).ok());
  EXPECT_EQ(w.guests[0].info.name, "node_a slice");
  { std::ofstream(d / "node_b") << "5\nabc\n"; }
  Status s = LoadTraces(d.string(), {}, &w);
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_NE(s.message().find("node_b line 2"), std::string::npos) << s.ToString();
  fs::remove_all(d);
}

TEST(Traces, BitbrainsSkipsNonReportingRowsAndNamesBadLines) {
  NEED_TRACES("bitbrains_rnd")
  Workload w;
  ASSERT_TRUE(LoadTraces(dir, {.guests = 8}, &w).ok());
  ASSERT_EQ(w.guests.size(), 8u);
  for (auto& g : w.guests) {
    EXPECT_GE(g.info.vcpus, 1);
    EXPECT_GT(g.info.mem_max_gib, 0);
    for (float m : g.mem) EXPECT_LE(m, g.info.mem_max_gib + 1e-6);
  }
  fs::path d = fs::temp_directory_path() / ("lull_bb_test_" + std::to_string(::getpid()));  // per process: ctest -j
  fs::remove_all(d);
  fs::create_directories(d);
  const char* hdr = "Timestamp [ms];\tCPU cores;\tCPU capacity provisioned [MHZ];\tCPU usage [MHZ];\tCPU usage [%];\t"
                    "Memory capacity provisioned [KB];\tMemory usage [KB];\tDisk read throughput [KB/s];\t"
                    "Disk write throughput [KB/s];\tNetwork received throughput [KB/s];\tNetwork transmitted throughput [KB/s]\n";
  {
    std::ofstream f(d / "1.csv");
    f << hdr << "1000;\t2;\t5000;\t2500;\t50;\t4194304;\t1048576;\t0;\t0;\t0;\t0\n"
      << "1300;\t0;\t0;\t0;\t0;\t0;\t0;\t0;\t0;\t0;\t0\n"
      << "1600;\t2;\t5000;\t5500;\t110;\t4194304;\t2097152;\t0;\t0;\t0;\t0\n";
  }
  ASSERT_TRUE(LoadTraces(d.string(), {}, &w).ok());
  ASSERT_EQ(w.guests.size(), 1u);
  const auto& g = w.guests[0];
  ASSERT_EQ(g.cpu.size(), 3u);
  EXPECT_FLOAT_EQ(g.cpu[0], 1.0f);   // 50 % of 2 cores
  EXPECT_FLOAT_EQ(g.cpu[1], 1.0f);   // not reporting: the last value holds, not 0
  EXPECT_FLOAT_EQ(g.cpu[2], 2.0f);   // 110 % is clamped to the cores
  EXPECT_FLOAT_EQ(g.mem[2], 2.0f);
  { std::ofstream(d / "2.csv") << hdr << "1000;\t2;\t5000;\t2500;\tabc;\t4194304;\t1048576;\t0;\t0;\t0;\t0\n"; }
  Status s = LoadTraces(d.string(), {}, &w);
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_NE(s.message().find("2.csv line 2: CPU usage [%] is 'abc'"), std::string::npos) << s.ToString();
  fs::remove_all(d);
}

TEST(Traces, Azure) {
  NEED_TRACES("azure_v1")
  Workload w;
  ASSERT_TRUE(LoadTraces(dir, {.guests = 10}, &w).ok());
  ASSERT_EQ(w.guests.size(), 10u);
  EXPECT_EQ(w.guests[0].cpu.size(), 288u);  // one day of 5-minute steps
}

TEST(Traces, AlibabaIsResampledToAMinute) {
  NEED_TRACES("alibaba_v2018")
  Workload w;
  ASSERT_TRUE(LoadTraces(dir, {.guests = 4}, &w).ok());
  ASSERT_EQ(w.guests.size(), 4u);
  EXPECT_EQ(w.guests[0].step_s, 60);
  EXPECT_EQ(w.guests[0].cpu.size(), 1440u);
  for (float m : w.guests[0].mem) EXPECT_GT(m, 0.0f);
}

}  // namespace
}  // namespace lull::dom0
