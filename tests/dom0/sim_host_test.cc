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

TEST(SimHost, AGuestPinnedToSomePcpusCompetesOnlyThere) {
  // 4 pCPUs. a and b want a whole CPU each; c wants 2 CPUs. Unpinned, everyone is served.
  auto w = MakeWorkload({{"a", 1, 4, PriorityClass::kStandard, [](int64_t) { return 1.0; }},
                         {"b", 1, 4, PriorityClass::kStandard, [](int64_t) { return 1.0; }},
                         {"c", 2, 4, PriorityClass::kStandard, [](int64_t) { return 2.0; }}}, 10);
  SimHost h({.pcpus = 4}, &w);
  h.Step();
  EXPECT_DOUBLE_EQ(h.stats().unmet_cpu_s, 0.0);
  // a and b pinned to pCPU 0: they share it by weight; c still gets both its CPUs.
  ASSERT_TRUE(h.SetAffinity(1, 0, {0}).ok());
  ASSERT_TRUE(h.SetAffinity(2, 0, {0}).ok());
  EXPECT_EQ(h.AllowedPcpus(1), std::vector<int>{0});
  h.Step();
  EXPECT_NEAR(h.LastServed(1), 0.5, 1e-9);
  EXPECT_NEAR(h.LastServed(2), 0.5, 1e-9);
  EXPECT_NEAR(h.LastServed(3), 2.0, 1e-9);
  EXPECT_NEAR(h.stats().unmet_cpu_s, 1.0, 1e-9);
  // Weights still decide inside the pinned set.
  ASSERT_TRUE(h.SetSched(1, {768, 0}).ok());
  h.Step();
  EXPECT_NEAR(h.LastServed(1), 0.75, 1e-9);
  EXPECT_NEAR(h.LastServed(2), 0.25, 1e-9);
  // The guests' telemetry shows the wait as runnable time.
  GuestTelemetry t;
  ASSERT_TRUE(h.ReadTelemetry(2, &t).ok());
  EXPECT_GT(t.vcpus[0].runnable_ns, 0u);
  // c pinned to pCPUs 0-1 now shares pCPU 0 with a and b and gets less than it wants.
  ASSERT_TRUE(h.SetSched(1, {256, 0}).ok());
  ASSERT_TRUE(h.SetAffinity(3, 0, {0, 1}).ok());
  ASSERT_TRUE(h.SetAffinity(3, 1, {0, 1}).ok());
  h.Step();
  EXPECT_LT(h.LastServed(3), 2.0 - 0.1);
  EXPECT_NEAR(h.LastServed(1) + h.LastServed(2) + h.LastServed(3), 2.0, 1e-6);  // pCPUs 2-3 idle
  // Empty affinity = everywhere again.
  for (DomId d : {1u, 2u}) ASSERT_TRUE(h.SetAffinity(d, 0, {}).ok());
  for (int v : {0, 1}) ASSERT_TRUE(h.SetAffinity(3, v, {}).ok());
  h.Step();
  EXPECT_NEAR(h.LastServed(1) + h.LastServed(2) + h.LastServed(3), 4.0, 1e-9);
}

TEST(SimHost, CpupoolsPartitionThePcpus) {
  auto w = MakeWorkload({{"a", 2, 4, PriorityClass::kStandard, [](int64_t) { return 2.0; }},
                         {"b", 2, 4, PriorityClass::kStandard, [](int64_t) { return 2.0; }},
                         {"c", 4, 4, PriorityClass::kStandard, [](int64_t) { return 4.0; }}}, 10);
  SimHost h({.pcpus = 6}, &w);
  h.Step();  // 8 wanted on 6 pCPUs: shared by weight across the one pool
  EXPECT_NEAR(h.LastServed(1) + h.LastServed(2) + h.LastServed(3), 6.0, 1e-9);
  EXPECT_NEAR(h.LastServed(3), 2.0, 1e-9);
  // a and b get a pool of their own (pCPUs 4-5); c keeps pool 0 (pCPUs 0-3) to itself.
  ASSERT_TRUE(h.CreateCpupool(1, {4, 5}).ok());
  ASSERT_TRUE(h.MoveToCpupool(1, 1).ok());
  ASSERT_TRUE(h.MoveToCpupool(2, 1).ok());
  EXPECT_EQ(h.AllowedPcpus(1), (std::vector<int>{4, 5}));
  EXPECT_EQ(h.AllowedPcpus(3), (std::vector<int>{0, 1, 2, 3}));
  h.Step();
  EXPECT_NEAR(h.LastServed(1), 1.0, 1e-9);
  EXPECT_NEAR(h.LastServed(2), 1.0, 1e-9);
  EXPECT_NEAR(h.LastServed(3), 4.0, 1e-9);
  // Bad moves are refused with the reason.
  EXPECT_EQ(h.CreateCpupool(2, {4}).code(), Status::Code::kInvalidArgument);   // not free
  EXPECT_EQ(h.CreateCpupool(2, {0, 1, 2, 3}).code(), Status::Code::kInvalidArgument);  // empties pool 0
  EXPECT_EQ(h.CreateCpupool(0, {1}).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(h.MoveToCpupool(1, 7).code(), Status::Code::kNotFound);
  Status s = h.SetAffinity(1, 0, {0});  // pCPU 0 is not in a's pool
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("cpupool"), std::string::npos) << s.ToString();
  // a back to pool 0: it competes with c there; b has pool 1 to itself.
  ASSERT_TRUE(h.MoveToCpupool(1, 0).ok());
  h.Step();
  EXPECT_NEAR(h.LastServed(1), 2.0, 1e-9);
  EXPECT_NEAR(h.LastServed(3), 2.0, 1e-9);
  EXPECT_NEAR(h.LastServed(2), 2.0, 1e-9);
}

TEST(SimHost, LeasesGoThroughTheSharedLeaseTableAndABrokenEntryIsIgnored) {
  // The donor wants all 4 vCPUs from t = 5; nobody handles pressure, so what it gets
  // is exactly what the scheduler model read from the lease table.
  auto w = MakeWorkload({{"a", 4, 8, PriorityClass::kStandard, [](int64_t t) { return t < 5 ? 0.2 : 4.0; }}}, 60);
  SimHost h({.pcpus = 8}, &w);
  h.Step();
  ASSERT_TRUE(h.InstallLease({7, 1, 2.0, 0, h.NowNs() + 120 * kS}).ok());
  lull_lease* e = h.LeaseEntry(7);
  ASSERT_NE(e, nullptr);
  // What Xen reads: a consistent, valid, ACTIVE entry lending 600 credits (2 pCPUs).
  lull_lease_val v{};
  ASSERT_EQ(lull_lease_read(e, &v), 0);
  EXPECT_EQ(v.state, static_cast<uint32_t>(LULL_LEASE_ACTIVE));
  EXPECT_EQ(v.id, 7u);
  EXPECT_EQ(v.lender, 1u);
  EXPECT_EQ(v.credit, 600u);
  EXPECT_EQ(lull_lease_effective(e, &v, h.NowNs()), LULL_LEASE_ACTIVE);
  EXPECT_DOUBLE_EQ(h.Entitlement(1), 2.0);
  for (int i = 0; i < 5; ++i) h.Step();
  EXPECT_NEAR(h.LastServed(1), 2.0, 1e-9);  // demand is back; the lease holds it down
  // A writer that died mid-write leaves the sequence odd: the entry is torn, ignored.
  const uint32_t seq = e->seq;
  __atomic_store_n(&e->seq, seq | 1u, __ATOMIC_RELEASE);
  const uint64_t rejected = h.stats().lease_entries_rejected;
  h.Step();
  EXPECT_NEAR(h.LastServed(1), 4.0, 1e-9) << "a torn entry must not take the donor's CPUs";
  EXPECT_GT(h.stats().lease_entries_rejected, rejected);
  // Stable again but corrupt (credit beyond any host, lender == borrower): ignored too.
  __atomic_store_n(&e->seq, seq, __ATOMIC_RELEASE);
  h.Step();
  EXPECT_NEAR(h.LastServed(1), 2.0, 1e-9);  // the intact entry is honoured again
  e->credit = LULL_LEASE_MAX_CREDIT + 1;
  h.Step();
  EXPECT_NEAR(h.LastServed(1), 4.0, 1e-9);
  e->credit = 600;
  e->borrower = e->lender;
  h.Step();
  EXPECT_NEAR(h.LastServed(1), 4.0, 1e-9);
  // Revocation frees the entry through the same table.
  e->borrower = 0;
  ASSERT_TRUE(h.RevokeLease(7).ok());
  ASSERT_EQ(lull_lease_read(e, &v), 0);
  EXPECT_EQ(v.state, static_cast<uint32_t>(LULL_LEASE_FREE));
  EXPECT_DOUBLE_EQ(h.Entitlement(1), 4.0);
}

TEST(SimHost, ALeaseEntryPastItsExpiryGivesTheCpusBackByTimeAlone) {
  auto w = MakeWorkload({{"a", 4, 8, PriorityClass::kStandard, [](int64_t) { return 4.0; }}}, 60);
  SimHost h({.pcpus = 8}, &w);
  ASSERT_TRUE(h.InstallLease({3, 1, 1.5, 0, 10 * kS + 1}).ok());
  h.Step();
  EXPECT_NEAR(h.LastServed(1), 2.5, 1e-9);
  // The entry still says ACTIVE, but its expiry is in the past for the scheduler.
  lull_lease_val v{};
  ASSERT_EQ(lull_lease_read(h.LeaseEntry(3), &v), 0);
  EXPECT_EQ(lull_lease_effective(h.LeaseEntry(3), &v, 11 * kS), LULL_LEASE_EXPIRED);
  for (int i = 0; i < 11; ++i) h.Step();
  EXPECT_NEAR(h.LastServed(1), 4.0, 1e-9);
  EXPECT_EQ(h.ActiveLeases(), 0u);
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
