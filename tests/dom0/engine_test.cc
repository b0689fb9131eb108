// The anticipation engine on the simulated host: lending, revocation, expiry, learning.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>

#include "dom0/engine.h"
#include "dom0/harness.h"
#include "dom0/sim_host.h"
#include "tests/dom0/test_util.h"

namespace lull::dom0 {
namespace {

using testing::GuestSpec;
using testing::MakeWorkload;
constexpr uint64_t kS = 1000000000ULL;

// A guest idle for hours at a time with a one-hour burst every four hours, and a busy
// neighbour; a long scrub task that can use everything it gets.
Workload LullWorkload(int64_t seconds) {
  return MakeWorkload(
      {{"batch", 4, 8, PriorityClass::kStandard,
        [](int64_t t) { return (t / 3600) % 4 == 3 ? 3.5 : 0.1; },
        [](int64_t t) { return (t / 3600) % 4 == 3 ? 5.0 : 2.0; }},
       {"busy", 2, 4, PriorityClass::kStandard, [](int64_t) { return 1.8; }}},
      seconds);
}

Task Scrub(double cpu_s) {
  Task t;
  t.kind = TaskKind::kScrub;
  t.target = "host";
  t.cpu_s = cpu_s;
  t.mem_gib = 0.5;
  t.max_cpus = 4;
  t.deadline_ns = 100000 * kS;
  return t;
}

struct Rig {
  explicit Rig(const Workload& w, Policy p, int pcpus = 8) : w(w), host({.pcpus = pcpus}, &this->w), future(&this->w) {
    cfg.policy = p;
    engine = std::make_unique<Engine>(&host, &tasks, cfg, &future);
  }
  void Run(int64_t steps) {
    for (int64_t i = 0; i < steps; ++i) { host.Step(); engine->Poll(); }
  }
  Workload w;
  SimHost host;
  WorkloadFuture future;
  TaskQueue tasks;
  EngineConfig cfg;
  std::unique_ptr<Engine> engine;
};

TEST(Engine, LendsInTheLullAndRevokesAtOnceWhenDemandReturns) {
  Rig r(LullWorkload(6 * 3600 * 4), Policy::kLull);
  ASSERT_TRUE(r.tasks.Add(Scrub(1e7)).ok());
  ASSERT_TRUE(r.engine->Start().ok());
  // Learn two full cycles, then watch the third lull and burst.
  r.Run(8 * 3600 + 1800);
  EXPECT_GT(r.engine->Leases().size(), 0u) << "nothing lent in the middle of a lull";
  double lent = 4.0 - r.host.Entitlement(1);
  EXPECT_GT(lent, 1.0);
  uint64_t forced_before = r.engine->stats().forced_revocations;
  uint64_t lat_before = r.host.stats().revoke_latency_ms.size();
  r.Run(3 * 3600);  // through the burst at hour 11
  // Either the lease was returned before the burst (predicted), or revoked at once.
  if (r.engine->stats().forced_revocations > forced_before) {
    ASSERT_GT(r.host.stats().revoke_latency_ms.size(), lat_before);
    EXPECT_LE(r.host.stats().revoke_latency_ms.back(), r.host.config().tick_ms + 1e-6);
  }
  // During the burst the guest has all of its vCPUs.
  EXPECT_DOUBLE_EQ(r.host.Entitlement(1), 4.0);
  EXPECT_LT(r.host.stats().unmet_cpu_s / r.host.stats().demand_cpu_s, 1e-4);
  EXPECT_GT(r.engine->stats().handed_cpu_s, 3600.0);
}

// Forecasting is staggered: every guest is profiled once per interval, at its own phase,
// and no control step does more than its share (ceil(n * dt / P) + 1 guests).
TEST(Engine, ProfilerUpdatesAreStaggeredAndBoundedPerStep) {
  std::vector<GuestSpec> specs;
  for (int i = 0; i < 100; ++i)
    specs.push_back({"g" + std::to_string(i), 2, 4, PriorityClass::kStandard, [](int64_t t) { return (t / 90) % 2 ? 1.5 : 0.2; }});
  auto w = MakeWorkload(specs, 1200);
  Rig r(w, Policy::kLull, 400);
  std::map<DomId, std::vector<double>> closes;
  std::map<double, int> per_step;
  r.engine->SetPeriodHook([&](const PeriodRecord& p) { closes[p.domid].push_back(p.t_s); per_step[p.t_s]++; });
  ASSERT_TRUE(r.engine->Start().ok());
  r.Run(600);
  ASSERT_EQ(closes.size(), 100u);
  for (const auto& [d, ts] : closes) {
    ASSERT_GE(ts.size(), 9u) << "guest " << d;
    for (size_t k = 1; k < ts.size(); ++k) EXPECT_DOUBLE_EQ(ts[k] - ts[k - 1], 60.0) << "guest " << d;
  }
  int most = 0;
  for (const auto& [t, c] : per_step) most = std::max(most, c);
  EXPECT_LE(most, (100 + 59) / 60 + 1);
  EXPECT_GE(per_step.size(), 50u) << "closes should be spread over the interval, not bunched";
  // lulld stalls for 30 s: the next step catches up at most its budget, the rest follow.
  for (int i = 0; i < 30; ++i) r.host.Step();
  per_step.clear();
  r.Run(60);
  most = 0;
  for (const auto& [t, c] : per_step) most = std::max(most, c);
  EXPECT_LE(most, (100 * 31 + 59) / 60 + 1);
  EXPECT_GT(most, 3) << "the late step should catch up on the guests it missed";
}

TEST(Engine, NoHarvestingLendsNothing) {
  Rig r(LullWorkload(4 * 3600), Policy::kNone);
  ASSERT_TRUE(r.tasks.Add(Scrub(1e6)).ok());
  ASSERT_TRUE(r.engine->Start().ok());
  r.Run(4 * 3600);
  EXPECT_EQ(r.engine->stats().leases_granted, 0u);
  EXPECT_EQ(r.host.stats().handed_cpu_s, 0.0);
}

TEST(Engine, OracleNeverNeedsARevocation) {
  Rig r(LullWorkload(8 * 3600), Policy::kOracle);
  ASSERT_TRUE(r.tasks.Add(Scrub(1e7)).ok());
  ASSERT_TRUE(r.engine->Start().ok());
  r.Run(8 * 3600);
  EXPECT_GT(r.engine->stats().leases_granted, 0u);
  EXPECT_EQ(r.engine->stats().forced_revocations, 0u);
  EXPECT_DOUBLE_EQ(r.host.stats().unmet_cpu_s, 0.0);
}

TEST(Engine, ReactiveIsRevokedAtEveryBurst) {
  Rig r(LullWorkload(8 * 3600), Policy::kReactive);
  ASSERT_TRUE(r.tasks.Add(Scrub(1e7)).ok());
  ASSERT_TRUE(r.engine->Start().ok());
  r.Run(8 * 3600);
  // Bursts start at hours 3 and 7, mid-lease: both force a revocation.
  EXPECT_GE(r.engine->stats().forced_revocations, 2u);
}

TEST(Engine, DeadDaemonLeavesEveryGuestRestoredWithinOneLeasePeriod) {
  Rig r(LullWorkload(6 * 3600), Policy::kOracle);
  ASSERT_TRUE(r.tasks.Add(Scrub(1e7)).ok());
  ASSERT_TRUE(r.engine->Start().ok());
  r.Run(3600);
  ASSERT_GT(r.host.ActiveLeases(), 0u);
  ASSERT_LT(r.host.Entitlement(1), 4.0);
  // lulld is killed: no RestoreAll, no renewals, no event handling.
  r.engine.reset();
  const int64_t lease_steps = static_cast<int64_t>(r.cfg.lease_period_s);
  for (int64_t i = 0; i < lease_steps + 1; ++i) r.host.Step();
  EXPECT_EQ(r.host.ActiveLeases(), 0u);
  EXPECT_DOUBLE_EQ(r.host.Entitlement(1), 4.0);
  EXPECT_DOUBLE_EQ(r.host.Entitlement(2), 2.0);
  EXPECT_DOUBLE_EQ(r.host.BalloonTarget(1), 8.0);
  EXPECT_DOUBLE_EQ(r.host.BalloonTarget(2), 4.0);
}

TEST(Engine, RestoreAllGivesEverythingBackAtOnce) {
  Rig r(LullWorkload(4 * 3600), Policy::kOracle);
  ASSERT_TRUE(r.tasks.Add(Scrub(1e7)).ok());
  ASSERT_TRUE(r.engine->Start().ok());
  r.Run(1800);
  ASSERT_GT(r.host.ActiveLeases(), 0u);
  ASSERT_TRUE(r.engine->RestoreAll().ok());
  EXPECT_EQ(r.host.ActiveLeases(), 0u);
  EXPECT_TRUE(r.engine->Leases().empty());
  EXPECT_DOUBLE_EQ(r.host.Entitlement(1), 4.0);
  EXPECT_DOUBLE_EQ(r.host.BalloonTarget(1), 8.0);
}

TEST(Engine, CompletedTaskReturnsItsLeaseAndCountsTheWork) {
  Rig r(LullWorkload(4 * 3600), Policy::kOracle);
  uint64_t id;
  ASSERT_TRUE(r.tasks.Add(Scrub(600), &id).ok());
  ASSERT_TRUE(r.engine->Start().ok());
  r.Run(3600);
  const Task* t = r.tasks.Find(id);
  ASSERT_NE(t->completed_ns, 0u);
  EXPECT_DOUBLE_EQ(t->done_cpu_s, 600);
  EXPECT_EQ(r.engine->Leases().size(), 0u);
  EXPECT_EQ(r.engine->stats().tasks_completed, 1u);
}

TEST(Engine, ManualLendValidatesAndIsRevocable) {
  Rig r(LullWorkload(3600), Policy::kLull);
  uint64_t task;
  ASSERT_TRUE(r.tasks.Add(Scrub(1e6), &task).ok());
  ASSERT_TRUE(r.engine->Start().ok());
  r.Run(10);
  uint64_t lease;
  EXPECT_EQ(r.engine->Lend(77, task, 1, 0, &lease).code(), Status::Code::kNotFound);
  EXPECT_EQ(r.engine->Lend(1, 999, 1, 0, &lease).code(), Status::Code::kNotFound);
  EXPECT_EQ(r.engine->Lend(1, task, 0, 0, &lease).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(r.engine->Lend(1, task, 5, 0, &lease).code(), Status::Code::kInvalidArgument);
  ASSERT_TRUE(r.engine->Lend(1, task, 2, 1, &lease).ok());
  EXPECT_DOUBLE_EQ(r.host.Entitlement(1), 2.0);
  ASSERT_TRUE(r.engine->Revoke(lease).ok());
  EXPECT_DOUBLE_EQ(r.host.Entitlement(1), 4.0);
  EXPECT_EQ(r.engine->Revoke(lease).code(), Status::Code::kNotFound);
}

TEST(Engine, OracleNeedsAFutureAndLeasePeriodCoversAControlPeriod) {
  auto w = LullWorkload(600);
  SimHost host({.pcpus = 8}, &w);
  TaskQueue tasks;
  EngineConfig c;
  c.policy = Policy::kOracle;
  Engine e(&host, &tasks, c, nullptr);
  EXPECT_EQ(e.Start().code(), Status::Code::kInvalidArgument);
  c.policy = Policy::kLull;
  c.lease_period_s = 30;
  Engine e2(&host, &tasks, c, nullptr);
  Status s = e2.Start();
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("lease_period_s"), std::string::npos);
}

TEST(ThresholdTuner, HoldsTheTargetViolationRate) {
  TunerConfig cfg;
  cfg.target_violation_rate = 0.05;
  // Violations at 20 %: the threshold climbs; at 0 %: it sinks to the floor.
  ThresholdTuner hi(&cfg, PriorityClass::kStandard), lo(&cfg, PriorityClass::kStandard);
  for (int i = 0; i < 500; ++i) {
    hi.Record(i % 5 == 0, 0.0);
    lo.Record(false, 0.0);
  }
  EXPECT_GT(hi.base(), cfg.initial[1]);
  EXPECT_DOUBLE_EQ(lo.base(), cfg.floor[1]);
  // Exactly at the target rate it stays put (up and down steps balance).
  ThresholdTuner at(&cfg, PriorityClass::kStandard);
  for (int i = 0; i < 2000; ++i) at.Record(i % 20 == 0, 0.0);
  EXPECT_NEAR(at.base(), cfg.initial[1], 0.02);
}

TEST(ThresholdTuner, CriticalGuestsAndHostPressureAreMoreConservative) {
  TunerConfig cfg;
  ThresholdTuner crit(&cfg, PriorityClass::kCritical), std_(&cfg, PriorityClass::kStandard);
  for (int i = 0; i < 1000; ++i) { crit.Record(false, 0); std_.Record(false, 0); }
  EXPECT_GT(crit.base(), std_.base());
  EXPECT_GT(std_.Threshold(0.95), std_.Threshold(0.5));
  EXPECT_DOUBLE_EQ(std_.Threshold(0.5), std_.base());
  // A costly miss raises it more than a cheap one.
  ThresholdTuner a(&cfg, PriorityClass::kStandard), b(&cfg, PriorityClass::kStandard);
  a.Record(true, 0.0);
  b.Record(true, 1.0);
  EXPECT_GT(b.base(), a.base());
}

TEST(TaskQueue, ValidatesAndPrioritisesByKindAndUrgency) {
  TaskQueue q;
  Task bad = Scrub(0);
  EXPECT_EQ(q.Add(bad).code(), Status::Code::kInvalidArgument);
  Task late = Scrub(100);
  late.deadline_ns = 0;
  EXPECT_EQ(q.Add(late).code(), Status::Code::kInvalidArgument);
  Task backup;
  backup.kind = TaskKind::kBackup; backup.cpu_s = 3600; backup.max_cpus = 1; backup.deadline_ns = 86400 * kS;
  Task mig = backup;
  mig.kind = TaskKind::kMigration;
  Task urgent = backup;  // a backup that needs all the time it has left
  urgent.deadline_ns = 3700 * kS;
  uint64_t b, m, u;
  ASSERT_TRUE(q.Add(backup, &b).ok());
  ASSERT_TRUE(q.Add(mig, &m).ok());
  ASSERT_TRUE(q.Add(urgent, &u).ok());
  q.Reprioritize(0, 1.0);
  auto p = q.Pending();
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0]->id, u);
  EXPECT_EQ(p[1]->id, m);
  EXPECT_EQ(p[2]->id, b);
  // More predicted capacity makes the urgent one less urgent.
  double before = q.Find(u)->priority;
  q.Reprioritize(0, 4.0);
  EXPECT_EQ(q.Find(u)->priority, before);  // max_cpus 1 caps the rate it can get
  EXPECT_FALSE(q.Credit(b, 1000, 5));
  EXPECT_TRUE(q.Credit(b, 2600, 6));
  EXPECT_EQ(q.Find(b)->completed_ns, 6u);
  EXPECT_EQ(q.pending_count(), 2u);
}

TEST(Harness, SameSeedSameResult) {
  GeneratorConfig g{.guests = 8, .duration_s = 4 * 3600, .seed = 3};
  Workload w;
  ASSERT_TRUE(GenerateBuiltin(g, &w).ok());
  RunConfig rc;
  rc.host.pcpus = 4;
  GenerateTasks(8, w.duration_s, 3, &rc.tasks);
  PolicyResult a, b;
  ASSERT_TRUE(RunPolicy(w, rc, Policy::kLull, &a).ok());
  ASSERT_TRUE(RunPolicy(w, rc, Policy::kLull, &b).ok());
  EXPECT_EQ(a.handed_cpu_s, b.handed_cpu_s);
  EXPECT_EQ(a.host.unmet_cpu_s, b.host.unmet_cpu_s);
  EXPECT_EQ(a.engine.forced_revocations, b.engine.forced_revocations);
  EXPECT_GT(a.handed_cpu_s, 0);
}

// make run's progress: redrawn in place on a terminal, a line per 10 % elsewhere.
std::string ProgressOutput(bool tty, int updates) {
  std::FILE* f = std::tmpfile();
  Progress p(f, tty);
  for (int i = 0; i < updates; ++i) p.Update(static_cast<double>(i) / updates, "lull");
  p.Done();
  std::rewind(f);
  std::string out;
  for (int c; (c = std::fgetc(f)) != EOF;) out += static_cast<char>(c);
  std::fclose(f);
  return out;
}

TEST(Harness, ProgressDoesNotSpamWhenNotATerminal) {
  std::string log = ProgressOutput(false, 4000);
  EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 11) << log;  // 0 %, 10 %, ... 100 %
  EXPECT_EQ(log.find('\r'), std::string::npos);
  EXPECT_NE(log.find("progress  50% lull"), std::string::npos) << log;
  EXPECT_NE(log.find("progress 100%"), std::string::npos) << log;
  std::string tty = ProgressOutput(true, 400);
  EXPECT_EQ(std::count(tty.begin(), tty.end(), '\r'), 401);  // every update redraws
  EXPECT_EQ(std::count(tty.begin(), tty.end(), '\n'), 1);
}

TEST(Harness, QuantileOfAForecastInterpolates) {
  Prediction p{0.1, 0.2, 0.4, 0.5, 0.7, 1};
  EXPECT_DOUBLE_EQ(QuantileAt(p, 0.5), 0.2);
  EXPECT_DOUBLE_EQ(QuantileAt(p, 0.9), 0.4);
  EXPECT_NEAR(QuantileAt(p, 0.925), 0.45, 1e-12);
  EXPECT_DOUBLE_EQ(QuantileAt(p, 0.99), 0.7);
  EXPECT_NEAR(QuantileAt(p, 0.995), 0.85, 1e-12);
}

}  // namespace
}  // namespace lull::dom0

namespace lull::dom0 {
namespace {

TEST(Engine, LearningRaisesTheThresholdOfAGuestThatKeepsComingBack) {
  // Idle, with one-minute bursts in 1 of 20 minutes at hashed (irregular) times: it looks
  // lendable most of the time, but more leases get revoked than the 2 % target.
  auto w = MakeWorkload(
      {{"flappy", 4, 8, PriorityClass::kStandard,
        [](int64_t t) {
          uint64_t h = (static_cast<uint64_t>(t / 60) + 1) * 0x9E3779B97F4A7C15ULL;
          return (h >> 40) % 20 == 0 ? 3.8 : 0.1;
        }},
       {"steady", 2, 4, PriorityClass::kStandard, [](int64_t) { return 1.0; }}},
      12 * 3600);
  Rig r(w, Policy::kLull);
  ASSERT_TRUE(r.tasks.Add(Scrub(1e8)).ok());
  ASSERT_TRUE(r.engine->Start().ok());
  r.Run(12 * 3600);
  GuestView g;
  ASSERT_TRUE(r.engine->Guest(1, &g).ok());
  EXPECT_GT(g.violations, 0u);
  EXPECT_GT(g.leased_periods, 0u);
  EXPECT_GT(g.threshold, TunerConfig{}.initial[1]) << "violations " << g.violations << " of " << g.leased_periods;
}

}  // namespace
}  // namespace lull::dom0
