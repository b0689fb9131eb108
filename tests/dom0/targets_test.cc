// Issue 4's targets, measured in the harness: the built-in workload (32 guests, 16 CPUs,
// one simulated day) and the PlanetLab and Bitbrains traces (host sized to the trace).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "dom0/harness.h"

namespace lull::dom0 {
namespace {

std::string TracesDir() {
  const char* e = std::getenv("LULL_TRACES");
  return e ? e : LULL_DEFAULT_TRACES;
}

void CheckAll(const Workload& w, int pcpus) {
  RunConfig rc;
  rc.host.pcpus = pcpus;
  GenerateTasks(static_cast<int>(w.guests.size()), w.duration_s, 1, &rc.tasks);
  std::vector<PolicyResult> r;
  ASSERT_TRUE(Compare(w, rc, &r).ok());
  std::string table = FormatTable(r);
  std::printf("%s", table.c_str());  // the numbers docs/lulld.md quotes
  EXPECT_EQ(CheckTargets(r), "") << table;
  // Sanity of the comparison itself.
  EXPECT_EQ(r[0].handed_cpu_s, 0.0) << table;
  EXPECT_GT(r[3].handed_cpu_s, 0.0) << table;
  EXPECT_EQ(r[3].engine.forced_revocations, 0u) << table;
  EXPECT_LT(r[2].engine.forced_revocations, r[1].engine.forced_revocations) << table;
}

TEST(Targets, BuiltinWorkload) {
  Workload w;
  ASSERT_TRUE(GenerateBuiltin({}, &w).ok());
  CheckAll(w, 16);
}

TEST(Targets, PlanetLabTrace) {
  std::string dir = TracesDir() + "/planetlab/20110303";
  if (!std::filesystem::exists(dir)) GTEST_SKIP() << "traces not found at " << dir << " (set LULL_TRACES)";
  Workload w;
  ASSERT_TRUE(LoadTraces(dir, {}, &w).ok());
  CheckAll(w, AutoHostCpus(w));
}

TEST(Targets, BitbrainsTrace) {
  std::string dir = TracesDir() + "/bitbrains_rnd/2013-8";
  if (!std::filesystem::exists(dir)) GTEST_SKIP() << "traces not found at " << dir << " (set LULL_TRACES)";
  Workload w;
  ASSERT_TRUE(LoadTraces(dir, {}, &w).ok());
  CheckAll(w, AutoHostCpus(w));
}

}  // namespace
}  // namespace lull::dom0
