// DeriveHostPressure: host-wide pressure from pCPU idle time and free memory.
#include "dom0/host_pressure.h"

#include <gtest/gtest.h>

namespace lull::dom0 {
namespace {

constexpr uint64_t kMs = 1000000ULL;

HostLoadSample Sample(double idle_cpus, double waiting, double lent, double free_gib = 8) {
  HostLoadSample s;
  s.pcpus = 4;
  s.interval_ns = 100 * kMs;
  s.idle_ns = static_cast<uint64_t>(idle_cpus * 100 * kMs);
  s.waiting_cpus = waiting;
  s.lent_cpus = lent;
  s.free_mem_gib = free_gib;
  return s;
}

TEST(HostPressure, IdleTimeBecomesBusyAndIdleCpus) {
  HostPressure p = DeriveHostPressure(Sample(1.5, 0, 0), HostPressureConfig{}, 0);
  EXPECT_DOUBLE_EQ(p.idle_cpus, 1.5);
  EXPECT_DOUBLE_EQ(p.busy_cpus, 2.5);
  EXPECT_DOUBLE_EQ(p.free_mem_gib, 8);
  EXPECT_FALSE(p.saturated);
  EXPECT_FALSE(p.cpu);
  // Idle time past the interval (clock skew between two reads) is clamped.
  p = DeriveHostPressure(Sample(5.0, 0, 0), HostPressureConfig{}, 0);
  EXPECT_DOUBLE_EQ(p.idle_cpus, 4.0);
  EXPECT_DOUBLE_EQ(p.busy_cpus, 0.0);
  // No interval yet (first sample): nothing is derived.
  HostLoadSample first = Sample(0, 3, 2);
  first.interval_ns = 0;
  p = DeriveHostPressure(first, HostPressureConfig{}, 5);
  EXPECT_FALSE(p.saturated);
  EXPECT_FALSE(p.cpu);
  EXPECT_EQ(p.saturated_run, 0);
}

TEST(HostPressure, RaisedOnlyWhenSaturationIsSustainedWithLeases) {
  HostPressureConfig c;  // sustain 3
  int run = 0;
  HostPressure p;
  for (int i = 1; i <= 2; ++i) {
    p = DeriveHostPressure(Sample(0.05, 1.2, 1.0), c, run);
    run = p.saturated_run;
    EXPECT_TRUE(p.saturated);
    EXPECT_EQ(run, i);
    EXPECT_FALSE(p.cpu) << "one or two busy intervals are noise";
  }
  p = DeriveHostPressure(Sample(0.05, 1.2, 1.0), c, run);
  EXPECT_TRUE(p.cpu);
  EXPECT_DOUBLE_EQ(p.cpu_shortfall, 1.0) << "at most what is lent";
  p = DeriveHostPressure(Sample(0.05, 0.6, 1.0), c, 7);
  EXPECT_DOUBLE_EQ(p.cpu_shortfall, 0.6) << "what the waiting guests miss";
  // Turned off (sustain 0): saturation is still reported, never raised.
  HostPressureConfig off;
  off.sustain = 0;
  p = DeriveHostPressure(Sample(0.05, 1.2, 1.0), off, 50);
  EXPECT_TRUE(p.saturated);
  EXPECT_FALSE(p.cpu);
  // An idle interval breaks the run.
  p = DeriveHostPressure(Sample(1.0, 1.2, 1.0), c, 2);
  EXPECT_FALSE(p.saturated);
  EXPECT_EQ(p.saturated_run, 0);
  EXPECT_FALSE(p.cpu);
  // Saturated but nobody waits (the borrower uses what it was lent): no pressure.
  p = DeriveHostPressure(Sample(0.0, 0.1, 1.0), c, 9);
  EXPECT_FALSE(p.saturated);
  EXPECT_FALSE(p.cpu);
  // Saturated and waiting, but nothing is lent: nothing to give back.
  p = DeriveHostPressure(Sample(0.0, 2.0, 0.0), c, 9);
  EXPECT_TRUE(p.saturated);
  EXPECT_FALSE(p.cpu);
}

TEST(HostPressure, LowFreeMemoryWithMemoryLent) {
  HostPressureConfig c;
  HostLoadSample s = Sample(2.0, 0, 0.5, 0.03);
  EXPECT_FALSE(DeriveHostPressure(s, c, 0).mem) << "no memory lent: not lull's doing";
  s.mem_lent = true;
  HostPressure p = DeriveHostPressure(s, c, 0);
  EXPECT_TRUE(p.mem);
  EXPECT_FALSE(p.cpu);
  s.free_mem_gib = 0.5;
  EXPECT_FALSE(DeriveHostPressure(s, c, 0).mem);
}

}  // namespace
}  // namespace lull::dom0
