// Guests that come and go while lulld runs (xl create / xl destroy), on the simulated
// host: the engine profiles and lends from a newcomer, drops a guest that leaves with
// its leases (their tasks go back to the queue), never acts on the dead domid, and
// treats a domid reused by a new domain as a new guest.
#include <gtest/gtest.h>

#include <map>

#include "dom0/engine.h"
#include "dom0/sim_host.h"
#include "tests/dom0/test_util.h"

namespace lull::dom0 {
namespace {

using testing::MakeWorkload;
constexpr uint64_t kS = 1000000000ULL;

struct Rig {
  explicit Rig(Workload w) : w(std::move(w)), host({.pcpus = 8}, &this->w) {
    cfg.policy = Policy::kReactive;  // lends what was idle last period: quick to act
    cfg.control_period_s = 10;
    cfg.lease_period_s = 30;
    engine = std::make_unique<Engine>(&host, &tasks, cfg);
  }
  void Run(int steps) {
    for (int i = 0; i < steps; ++i) { host.Step(); engine->Poll(); }
  }
  bool Listed(DomId d) {
    for (const auto& g : engine->Guests()) if (g.info.domid == d) return true;
    return false;
  }
  size_t LeasesFrom(DomId d) {
    size_t n = 0;
    for (const auto& l : engine->Leases()) n += l.donor == d;
    return n;
  }
  Workload w;
  SimHost host;
  TaskQueue tasks;
  EngineConfig cfg;
  std::unique_ptr<Engine> engine;
};

Task Backup() {
  Task t;
  t.kind = TaskKind::kBackup;
  t.target = "host";
  t.cpu_s = 1e7;  // never finishes in the test: its lease stays until taken away
  t.mem_gib = 0;
  t.max_cpus = 2;
  t.deadline_ns = 1000000 * kS;
  return t;
}

// dom 1 is busy (nothing to lend), dom 2 ("late") idles: only it can lend.
Workload TwoGuests() {
  return MakeWorkload({{"busy", 2, 4, PriorityClass::kStandard, [](int64_t) { return 1.9; }},
                       {"late", 4, 4, PriorityClass::kStandard, [](int64_t) { return 0.2; }}},
                      4000);
}

TEST(Hotplug, ANewGuestIsProfiledAndLentFromAndALeavingOneIsDroppedWithItsLeases) {
  Rig r(TwoGuests());
  ASSERT_TRUE(r.host.SetPresent(2, false).ok());  // not created yet
  ASSERT_TRUE(r.tasks.Add(Backup()).ok());
  ASSERT_TRUE(r.engine->Start().ok());
  r.Run(60);
  EXPECT_FALSE(r.Listed(2));
  EXPECT_EQ(r.engine->Leases().size(), 0u) << "the busy guest has nothing to lend";

  // xl create: listed at the next step, profiled, then lent from.
  ASSERT_TRUE(r.host.SetPresent(2, true).ok());
  r.Run(1);
  ASSERT_TRUE(r.Listed(2));
  EXPECT_EQ(r.engine->stats().guests_added, 1u);
  r.Run(40);
  GuestView v;
  ASSERT_TRUE(r.engine->Guest(2, &v).ok());
  EXPECT_NEAR(v.cpu_demand, 0.2, 1e-6) << "its CPU time is sampled";
  ASSERT_EQ(r.LeasesFrom(2), 1u) << "an idle newcomer is lent from";
  EXPECT_LT(r.host.Entitlement(2), 4.0);
  const uint64_t task = r.engine->Leases()[0].task;

  // xl destroy during the lease: the host drops it, the engine drops the guest.
  ASSERT_TRUE(r.host.SetPresent(2, false).ok());
  EXPECT_EQ(r.host.ActiveLeases(), 0u);
  r.Run(1);
  EXPECT_FALSE(r.Listed(2));
  EXPECT_EQ(r.engine->Leases().size(), 0u);
  EXPECT_EQ(r.engine->stats().guests_left, 1u);
  EXPECT_EQ(r.engine->stats().leases_dropped, 1u);
  EXPECT_EQ(r.tasks.Find(task)->leases, 0) << "its task is pending again";
  // Nothing is done to the dead domid, by the engine or by an operator.
  uint64_t id = 0;
  Status s = r.engine->Lend(2, task, 0.5, 0, &id);
  EXPECT_EQ(s.code(), Status::Code::kNotFound) << s.ToString();
  // The surviving guest has its settings.
  EXPECT_DOUBLE_EQ(r.host.Entitlement(1), 2.0);
  EXPECT_EQ(r.host.Sched(1).cap_pct, 0u);
  r.Run(30);
  EXPECT_EQ(r.engine->Leases().size(), 0u);
}

TEST(Hotplug, AReusedDomidIsANewGuest) {
  Rig r(TwoGuests());
  ASSERT_TRUE(r.tasks.Add(Backup()).ok());
  ASSERT_TRUE(r.engine->Start().ok());
  r.Run(40);
  ASSERT_EQ(r.LeasesFrom(2), 1u);
  GuestView before;
  ASSERT_TRUE(r.engine->Guest(2, &before).ok());
  EXPECT_GT(before.lent_cpus, 0);
  // Destroyed and re-created between two samples: the same domid, another domain.
  ASSERT_TRUE(r.host.SetPresent(2, false).ok());
  ASSERT_TRUE(r.host.SetPresent(2, true).ok());
  r.Run(1);
  GuestView after;
  ASSERT_TRUE(r.engine->Guest(2, &after).ok());
  EXPECT_EQ(after.lent_cpus, 0) << "the old domain's lease is not the new one's";
  EXPECT_EQ(r.engine->stats().guests_left, 1u);
  EXPECT_EQ(r.engine->stats().guests_added, 1u);
  EXPECT_EQ(r.engine->stats().leases_dropped, 1u);
  EXPECT_DOUBLE_EQ(r.host.Entitlement(2), 4.0);
  // And it is lent from again once profiled.
  r.Run(40);
  EXPECT_EQ(r.LeasesFrom(2), 1u);
}

// Guests leaving and joining keep the staggered phases intact: every guest still
// present is closed exactly once per interval.
TEST(Hotplug, PhaseOrderSurvivesGuestsComingAndGoing) {
  std::vector<testing::GuestSpec> specs;
  for (int i = 0; i < 12; ++i) specs.push_back({"g" + std::to_string(i), 2, 4, PriorityClass::kStandard, [](int64_t) { return 0.5; }});
  Rig r(MakeWorkload(specs, 4000));
  std::map<DomId, int> closes;
  r.engine->SetPeriodHook([&](const PeriodRecord& p) { closes[p.domid]++; });
  ASSERT_TRUE(r.engine->Start().ok());
  r.Run(25);
  for (DomId d : {3u, 4u, 9u}) ASSERT_TRUE(r.host.SetPresent(d, false).ok());
  r.Run(3);
  ASSERT_TRUE(r.host.SetPresent(4, true).ok());
  r.Run(12);  // the newcomer's first close is one interval after it came
  closes.clear();
  r.Run(50);  // five intervals
  EXPECT_EQ(r.engine->Guests().size(), 10u);
  EXPECT_EQ(closes.size(), 10u);
  for (const auto& [d, n] : closes) {
    EXPECT_NE(d, 3u);
    EXPECT_NE(d, 9u);
    EXPECT_EQ(n, 5) << "guest " << d;
  }
}

TEST(Hotplug, SetPresentRejectsUnknownAndRepeatedChanges) {
  Rig r(TwoGuests());
  EXPECT_EQ(r.host.SetPresent(7, false).code(), Status::Code::kNotFound);
  EXPECT_EQ(r.host.SetPresent(1, true).code(), Status::Code::kAlreadyExists);
  const uint64_t v = r.host.GuestsVersion();
  ASSERT_TRUE(r.host.SetPresent(1, false).ok());
  EXPECT_EQ(r.host.SetPresent(1, false).code(), Status::Code::kNotFound);
  EXPECT_EQ(r.host.GuestsVersion(), v + 1);
  std::vector<GuestInfo> gs;
  ASSERT_TRUE(r.host.ListGuests(&gs).ok());
  ASSERT_EQ(gs.size(), 1u);
  EXPECT_EQ(gs[0].domid, 2u);
  GuestTelemetry t;
  EXPECT_EQ(r.host.ReadTelemetry(1, &t).code(), Status::Code::kNotFound);
}

}  // namespace
}  // namespace lull::dom0
