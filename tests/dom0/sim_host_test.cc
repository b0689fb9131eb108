// The simulated host: scheduling, leases enforced by the host, pressure events.
#include <gtest/gtest.h>

#include "dom0/sim_host.h"
#include "tests/dom0/test_util.h"

namespace lull::dom0 {
namespace {

using testing::GuestSpec;
using testing::MakeWorkload;
constexpr uint64_t kS = 1000000000ULL;

TEST(SimHost, ServesDemandWhenCapacitySuffices) {
  auto w = MakeWorkload({{"a", 2, 8, PriorityClass::kStandard, [](int64_t) { return 1.5; }},
                         {"b", 4, 8, PriorityClass::kStandard, [](int64_t) { return 3.0; }}}, 10);
  SimHost h({.pcpus = 8}, &w);
  for (int i = 0; i < 10; ++i) h.Step();
  EXPECT_DOUBLE_EQ(h.stats().demand_cpu_s, 45.0);
  EXPECT_DOUBLE_EQ(h.stats().unmet_cpu_s, 0.0);
  EXPECT_DOUBLE_EQ(h.LastServed(2), 3.0);
}

TEST(SimHost, SharesContendedCpusByWeight) {
  auto w = MakeWorkload({{"a", 4, 8, PriorityClass::kStandard, [](int64_t) { return 4.0; }},
                         {"b", 4, 8, PriorityClass::kStandard, [](int64_t) { return 4.0; }}}, 5);
  SimHost h({.pcpus = 4}, &w);
  ASSERT_TRUE(h.SetSched(1, {768, 0}).ok());  // a gets 3x b's weight
  h.Step();
  EXPECT_NEAR(h.LastServed(1), 3.0, 1e-9);
  EXPECT_NEAR(h.LastServed(2), 1.0, 1e-9);
  EXPECT_NEAR(h.stats().unmet_cpu_s, 4.0, 1e-9);
  // Cap in Xen credit units: 150 % = 1.5 CPUs.
  ASSERT_TRUE(h.SetSched(1, {768, 150}).ok());
  h.Step();
  EXPECT_NEAR(h.LastServed(1), 1.5, 1e-9);
  EXPECT_NEAR(h.LastServed(2), 2.5, 1e-9);
}

TEST(SimHost, LeaseLowersEntitlementAndBalloonAndExpiresOnTheHost) {
  auto w = MakeWorkload({{"a", 4, 8, PriorityClass::kStandard, [](int64_t) { return 0.2; }}}, 600);
  SimHost h({.pcpus = 8}, &w);
  h.Step();
  ASSERT_TRUE(h.InstallLease({7, 1, 2.5, 3.0, h.NowNs() + 120 * kS}).ok());
  EXPECT_DOUBLE_EQ(h.Entitlement(1), 1.5);
  EXPECT_DOUBLE_EQ(h.BalloonTarget(1), 5.0);
  // Nobody renews or revokes: the host restores the donor by itself at expiry.
  int steps = 0;
  while (h.ActiveLeases() > 0 && steps < 1000) { h.Step(); ++steps; }
  EXPECT_EQ(h.ActiveLeases(), 0u);
  EXPECT_LE(steps, 121);
  EXPECT_DOUBLE_EQ(h.Entitlement(1), 4.0);
  EXPECT_DOUBLE_EQ(h.BalloonTarget(1), 8.0);
  EXPECT_EQ(h.stats().leases_expired, 1u);
  EXPECT_NEAR(h.stats().handed_cpu_s, 2.5 * 120, 1e-6);
}

TEST(SimHost, RejectsBadLeasesWithReasons) {
  auto w = MakeWorkload({{"a", 2, 4, PriorityClass::kStandard, [](int64_t) { return 0.0; }}}, 10);
  SimHost h({.pcpus = 4}, &w);
  Status s = h.InstallLease({1, 9, 1, 0, 10 * kS});
  EXPECT_EQ(s.code(), Status::Code::kNotFound);
  s = h.InstallLease({1, 1, 3, 0, 10 * kS});
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("donor has"), std::string::npos) << s.ToString();
  s = h.InstallLease({1, 1, 1, 3.9, 10 * kS});
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  ASSERT_TRUE(h.InstallLease({1, 1, 1, 1, 10 * kS}).ok());
  EXPECT_EQ(h.InstallLease({1, 1, 0.5, 0, 10 * kS}).code(), Status::Code::kAlreadyExists);
  EXPECT_EQ(h.RevokeLease(42).code(), Status::Code::kNotFound);
  EXPECT_EQ(h.SetSched(1, {0, 0}).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(h.SetAffinity(1, 5, {0}).code(), Status::Code::kInvalidArgument);
}

TEST(SimHost, DemandReturningUnderALeaseRaisesPressureAndRevocationIsTimed) {
  // Idle for 10 s, then wants all 4 vCPUs.
  auto w = MakeWorkload({{"a", 4, 8, PriorityClass::kStandard, [](int64_t t) { return t < 10 ? 0.1 : 4.0; }}}, 20);
  SimHost h({.pcpus = 8}, &w);
  std::vector<PressureEvent> seen;
  h.SetPressureHandler([&](const PressureEvent& ev) {
    seen.push_back(ev);
    EXPECT_TRUE(h.RevokeLease(1).ok());
  });
  ASSERT_TRUE(h.InstallLease({1, 1, 3.0, 0, 300 * kS}).ok());
  for (int i = 0; i < 12; ++i) h.Step();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].kind, PressureKind::kCpu);
  EXPECT_EQ(seen[0].domid, 1u);
  EXPECT_NEAR(seen[0].shortfall, 3.0, 1e-9);
  ASSERT_EQ(h.stats().revoke_latency_ms.size(), 1u);
  double lat = h.stats().revoke_latency_ms[0];
  EXPECT_GT(lat, 0.0);
  EXPECT_LE(lat, h.config().tick_ms + 1e-6);
  // The guest lost exactly the shortfall for the latency, nothing more.
  EXPECT_NEAR(h.stats().unmet_cpu_s, 3.0 * lat / 1000.0, 1e-6);
  EXPECT_DOUBLE_EQ(h.Entitlement(1), 4.0);
}

TEST(SimHost, WithoutAHandlerTheGuestWaitsUntilExpiry) {
  auto w = MakeWorkload({{"a", 4, 8, PriorityClass::kStandard, [](int64_t t) { return t < 5 ? 0.0 : 4.0; }}}, 100);
  SimHost h({.pcpus = 8}, &w);
  ASSERT_TRUE(h.InstallLease({1, 1, 2.0, 0, 30 * kS}).ok());
  for (int i = 0; i < 60; ++i) h.Step();
  // Throttled from t=5 to the expiry at t=30: 25 s x 2 CPUs.
  EXPECT_NEAR(h.stats().unmet_cpu_s, 50.0, 1e-6);
  EXPECT_EQ(h.stats().leases_expired, 1u);
}

TEST(SimHost, TelemetryReportsRunnableTimeWhenThrottled) {
  auto w = MakeWorkload({{"a", 2, 8, PriorityClass::kStandard, [](int64_t) { return 2.0; }}}, 10);
  SimHost h({.pcpus = 8}, &w);
  ASSERT_TRUE(h.InstallLease({1, 1, 1.0, 0, 100 * kS}).ok());
  h.Step();
  GuestTelemetry t;
  ASSERT_TRUE(h.ReadTelemetry(1, &t).ok());
  ASSERT_EQ(t.vcpus.size(), 2u);
  uint64_t run = 0, wait = 0;
  for (auto& v : t.vcpus) { run += v.running_ns; wait += v.runnable_ns; }
  EXPECT_NEAR(run / 1e9, 1.0, 1e-6);
  EXPECT_NEAR(wait / 1e9, 1.0, 1e-6);
  EXPECT_EQ(h.ReadTelemetry(99, &t).code(), Status::Code::kNotFound);
}

}  // namespace
}  // namespace lull::dom0

namespace lull::dom0 {
namespace {

TEST(SimHost, MemoryComingBackUnderALeaseIsRevokedAndDeflatedAtItsRate) {
  // 2 GiB in use, then 7 GiB of 8 from t=10: the lease took 4 GiB (balloon 4 GiB).
  auto w = testing::MakeWorkload({{"a", 2, 8, PriorityClass::kStandard, [](int64_t) { return 0.1; },
                                   [](int64_t t) { return t < 10 ? 2.0 : 7.0; }}}, 30);
  SimHost h({.pcpus = 4, .deflate_gib_per_s = 2.0}, &w);
  std::vector<PressureEvent> seen;
  h.SetPressureHandler([&](const PressureEvent& ev) {
    seen.push_back(ev);
    EXPECT_TRUE(h.RevokeLease(1).ok());
  });
  ASSERT_TRUE(h.InstallLease({1, 1, 0.5, 4.0, 1000 * kS}).ok());
  EXPECT_DOUBLE_EQ(h.BalloonTarget(1), 4.0);
  for (int i = 0; i < 12; ++i) h.Step();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].kind, PressureKind::kMemory);
  EXPECT_NEAR(seen[0].shortfall, 3.0, 1e-6);
  EXPECT_DOUBLE_EQ(h.BalloonTarget(1), 8.0);
  // 3 GiB short from the step start until detection and then while the 4 GiB deflate at
  // 2 GiB/s: longer than the 1 s step, so the whole step is short by 3 GiB.
  ASSERT_EQ(h.stats().revoke_latency_ms.size(), 1u);
  EXPECT_NEAR(h.stats().unmet_mem_gib_s, 3.0 * 1.0, 1e-6);
}

}  // namespace
}  // namespace lull::dom0

namespace lull::dom0 {
namespace {

TEST(SimHost, ShortMemoryShortfallLastsDetectionPlusDeflation) {
  // Lease takes 1 GiB (balloon 7 of 8); use rises from 2 to 7.5 GiB at t=5.
  auto w = testing::MakeWorkload({{"a", 2, 8, PriorityClass::kStandard, [](int64_t) { return 0.1; },
                                   [](int64_t t) { return t < 5 ? 2.0 : 7.5; }}}, 20);
  SimHost h({.pcpus = 4, .deflate_gib_per_s = 2.0}, &w);
  h.SetPressureHandler([&](const PressureEvent&) { EXPECT_TRUE(h.RevokeLease(1).ok()); });
  ASSERT_TRUE(h.InstallLease({1, 1, 0.5, 1.0, 1000 * kS}).ok());
  for (int i = 0; i < 8; ++i) h.Step();
  ASSERT_EQ(h.stats().revoke_latency_ms.size(), 1u);
  double detect_s = h.stats().revoke_latency_ms[0] / 1000.0;
  // 0.5 GiB short until detection plus 1 GiB / (2 GiB/s) of deflation.
  EXPECT_NEAR(h.stats().unmet_mem_gib_s, 0.5 * (detect_s + 0.5), 1e-6);
}

}  // namespace
}  // namespace lull::dom0
