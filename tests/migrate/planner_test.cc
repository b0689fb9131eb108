// Timing decisions on a guest with busy spells and lulls; phased provisioning.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "dom0/migrate/planner.h"
#include "dom0/migrate/wire.h"

namespace lull::migrate {
namespace {

// Busy 30 steps (60-90 % of max rate), lull 20 steps (1-5 %), with noise.
std::vector<double> SquareWave(int steps, uint64_t seed) {
  std::mt19937_64 r(seed);
  std::uniform_real_distribution<double> busy(0.6, 0.9), lull(0.01, 0.05);
  std::vector<double> v;
  for (int i = 0; i < steps; ++i) v.push_back((i % 50) < 30 ? busy(r) : lull(r));
  return v;
}

TEST(Planner, MigratesOnlyInLullsThatLast) {
  PlannerConfig cfg;
  cfg.max_rate = 1.0;
  cfg.lull_level = 0.1;
  cfg.migration_steps = 5;
  cfg.warmup = 150;
  const int kW = cfg.migration_steps;
  auto v = SquareWave(1000, 1);
  MigrationPlanner p(cfg);
  int go = 0, good = 0, naive = 0, naive_good = 0, reserves = 0;
  for (size_t i = 0; i + kW < v.size(); ++i) {
    ASSERT_TRUE(p.Observe(v[i]).ok());
    if (i < static_cast<size_t>(cfg.warmup)) continue;
    bool lasts = true;
    for (int h = 1; h <= kW; ++h) lasts = lasts && v[i + h] < cfg.lull_level;
    if (v[i] < cfg.lull_level) {  // naive: go whenever the guest is quiet now
      ++naive;
      naive_good += lasts;
    }
    switch (p.Decide()) {
      case MigrationPlanner::Action::kMigrate:
        ++go;
        good += lasts;
        break;
      case MigrationPlanner::Action::kReserve:
        ++reserves;
        p.Reserved();
        break;
      case MigrationPlanner::Action::kRelease: p.Released(); break;
      case MigrationPlanner::Action::kWait: break;
    }
  }
  ASSERT_GT(go, 20) << "the planner should find the lulls";
  double precision = double(good) / go, naive_precision = double(naive_good) / naive;
  EXPECT_GT(precision, 0.9) << good << "/" << go;
  EXPECT_GT(precision, naive_precision);
  EXPECT_GT(reserves, 0);
}

TEST(Planner, NeverGoesWhileBusyAndHonoursDeadline) {
  PlannerConfig cfg;
  cfg.max_rate = 1000;
  cfg.warmup = 20;
  cfg.max_wait_steps = 100;
  MigrationPlanner p(cfg);
  std::mt19937_64 r(2);
  for (int i = 0; i < 99; ++i) {
    ASSERT_TRUE(p.Observe(600 + double(r() % 300)).ok());
    ASSERT_NE(MigrationPlanner::Action::kMigrate, p.Decide()) << "step " << i;
  }
  ASSERT_TRUE(p.Observe(700).ok());
  EXPECT_EQ(MigrationPlanner::Action::kMigrate, p.Decide()) << "the deadline has come";
  EXPECT_FALSE(p.Observe(-1).ok());
  PlannerConfig bad;
  bad.migration_steps = 40;
  EXPECT_FALSE(bad.Check().ok());
}

TEST(Planner, ReleasesAReservationWhenTheLullDoesNotCome) {
  PlannerConfig cfg;
  cfg.max_rate = 1.0;
  cfg.warmup = 10;
  cfg.reservation_steps = 5;
  MigrationPlanner p(cfg);
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(p.Observe(0.8).ok());
  p.Reserved();
  MigrationPlanner::Action a = MigrationPlanner::Action::kWait;
  for (int i = 0; i < 10 && a != MigrationPlanner::Action::kRelease; ++i) {
    ASSERT_TRUE(p.Observe(0.8).ok());
    a = p.Decide();
  }
  EXPECT_EQ(MigrationPlanner::Action::kRelease, a);
}

forecast::Distribution D(double p90) {
  forecast::Distribution d;
  d.mean = d.p50 = p90 * 0.8;
  d.p90 = d.p95 = d.p99 = p90;
  d.confidence = 1;
  return d;
}

TEST(Provisioner, FollowsForecastInPhasesWithinLimits) {
  std::vector<forecast::Distribution> cpu, mem, io;
  for (int i = 0; i < 20; ++i) {
    cpu.push_back(D(i < 10 ? 0.2 : 0.9));
    mem.push_back(D(0.5));
    io.push_back(D(i < 10 ? 0.1 : 0.3));
  }
  Resources conf{8, 4096, 200}, lim{4, 8192, 1000};
  Provisioner p;
  ASSERT_TRUE(Provisioner::Plan(cpu, mem, io, conf, lim, ProvisionConfig{}, &p).ok());
  ASSERT_EQ(2u, p.phases().size());
  EXPECT_EQ(10, p.phases()[0].end);
  EXPECT_NEAR(0.2 * 8 * 1.15, p.At(3).cpu, 1e-9);
  EXPECT_EQ(4, p.At(15).cpu) << "capped at the target's limit";
  EXPECT_NEAR(0.5 * 4096 * 1.15, p.At(15).memory_mib, 1e-6) << "not the source's 4096 MiB";
  EXPECT_EQ(4, p.At(99).cpu) << "the last phase holds";
  // Measured use above the plan raises this phase and the later ones, never past limits.
  p.Correct(5, Resources{3.0, 1000, 10});
  EXPECT_NEAR(3.0 * 1.15, p.At(5).cpu, 1e-9);
  EXPECT_EQ(4, p.At(15).cpu);
  EXPECT_NEAR(0.5 * 4096 * 1.15, p.At(5).memory_mib, 1e-6) << "memory was not too low";
  std::vector<forecast::Distribution> shorter(3, D(0.1));
  Provisioner q;
  EXPECT_FALSE(Provisioner::Plan(cpu, shorter, io, conf, lim, ProvisionConfig{}, &q).ok());
  EXPECT_FALSE(Provisioner::Plan(cpu, mem, io, Resources{}, lim, ProvisionConfig{}, &q).ok());
}

// The plan as the target gets it: through the HELLO's encoding, capped at the target's
// own limits, and refused when it is not a plan.
TEST(Provisioner, TravelsInTheHelloAndIsCappedAtTheTarget) {
  std::vector<forecast::Distribution> cpu, mem, io;
  for (int i = 0; i < 12; ++i) {
    cpu.push_back(D(i < 6 ? 0.2 : 0.9));
    mem.push_back(D(i < 6 ? 0.25 : 0.5));
    io.push_back(D(0.1));
  }
  ProvisionConfig cfg;
  cfg.headroom = 0.2;
  Provisioner src;
  ASSERT_TRUE(Provisioner::Plan(cpu, mem, io, Resources{8, 4096, 200}, Resources{8, 8192, 1000}, cfg,
                                &src).ok());
  ASSERT_EQ(2u, src.phases().size());
  Writer w;
  PutPlan(&w, src);
  Reader r(w.buf().data(), w.buf().size());
  Provisioner dst;
  lull::Status s = GetPlan(&r, Resources{4, 1536, 1000}, &dst);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(r.done());
  ASSERT_EQ(2u, dst.phases().size());
  EXPECT_EQ(6, dst.phases()[0].end);
  EXPECT_NEAR(0.2 * 8 * 1.2, dst.At(2).cpu, 1e-9) << "under the target's limit: as planned";
  EXPECT_EQ(4, dst.At(8).cpu) << "the source planned 8.64 vCPUs; the target has 4";
  EXPECT_NEAR(0.25 * 4096 * 1.2, dst.At(0).memory_mib, 1e-6);
  EXPECT_EQ(1536, dst.At(8).memory_mib) << "capped at the target's memory";
  EXPECT_DOUBLE_EQ(0.2, dst.config().headroom);
  // Correction on the target never passes the target's limits either.
  dst.Correct(0, Resources{3.9, 100, 1});
  EXPECT_EQ(4, dst.At(0).cpu);

  // Truncated anywhere: Corruption.
  for (size_t cut : {size_t(4), size_t(30), w.buf().size() - 1}) {
    Reader t(w.buf().data(), cut);
    Provisioner x;
    EXPECT_EQ(lull::Status::Code::kCorruption, GetPlan(&t, Resources{4, 1536, 1000}, &x).code()) << cut;
  }
  // Not a plan: InvalidArgument naming the phase.
  auto bad = [](std::vector<ProvisionPhase> ph, const std::string& needle) {
    Provisioner x;
    lull::Status st = Provisioner::FromPhases(ph, Resources{4, 1024, 100}, ProvisionConfig{}, &x);
    EXPECT_EQ(lull::Status::Code::kInvalidArgument, st.code()) << needle;
    EXPECT_NE(st.message().find(needle), std::string::npos) << st.message();
  };
  bad({}, "0 phases");
  bad({{0, 3, {1, 100, 1}}, {4, 6, {1, 100, 1}}}, "phase 1 covers steps [4, 6)");
  bad({{1, 3, {1, 100, 1}}}, "phase 0 covers steps [1, 3)");
  bad({{0, 0, {1, 100, 1}}}, "phase 0 covers steps [0, 0)");
  bad({{0, 2, {-1, 100, 1}}}, "phase 0 has a negative");
  bad({{0, 2, {1, std::nan(""), 1}}}, "phase 0 has a negative or non-finite");
  bad({{0, 2, {0, 100, 1}}}, "phase 0 gives no CPU");
}

}  // namespace
}  // namespace lull::migrate
