// Timing decisions on a guest with busy spells and lulls; phased provisioning.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "dom0/migrate/planner.h"

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

}  // namespace
}  // namespace lull::migrate
