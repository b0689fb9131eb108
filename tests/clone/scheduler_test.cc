#include "dom0/clone/scheduler.h"

#include <gtest/gtest.h>

namespace lull::clone {
namespace {

SchedulerConfig Cfg(Policy p) {
  SchedulerConfig c;
  c.policy = p;
  c.primary_rps = 400;
  c.per_vcpu_rps = 100;
  c.shadow_vcpus = 4;   // one shadow adds 400 rps
  c.high = 0.8;
  c.low = 0.5;
  c.min_dwell_steps = 3;
  c.calm_steps = 2;
  c.resize = false;
  return c;
}

SchedulerInput In(double measured, int active, std::vector<double> fc = {},
                  double conf = 0.9) {
  SchedulerInput in;
  in.measured_rps = measured;
  in.active = active;
  in.pool_size = 3;
  in.forecast_rps = fc;
  in.confidence.assign(fc.size(), conf);
  return in;
}

TEST(Scheduler, NoneNeverActivates) {
  CloneScheduler s(Cfg(Policy::kNone));
  EXPECT_EQ(s.Step(In(5000, 0, {5000, 5000})).target_active, 0);
}

TEST(Scheduler, ReactiveFollowsMeasuredLoadOnly) {
  CloneScheduler s(Cfg(Policy::kReactive));
  // A confident forecast of a spike does not move the reactive policy.
  EXPECT_EQ(s.Step(In(100, 0, {900, 900})).target_active, 0);
  // 0.8 * 400 = 320: above it one shadow is needed, above 0.8 * 800 = 640 two.
  EXPECT_EQ(s.Step(In(330, 0)).target_active, 1);
  EXPECT_EQ(s.Step(In(700, 1)).target_active, 2);
}

TEST(Scheduler, PredictiveActivatesOnAConfidentForecastOnly) {
  CloneScheduler s(Cfg(Policy::kPredictive));
  EXPECT_EQ(s.Step(In(100, 0, {900, 900}, 0.2)).target_active, 0);  // not confident
  Decision d = s.Step(In(100, 0, {500, 500}, 0.9));
  EXPECT_EQ(d.target_active, 1);
  EXPECT_DOUBLE_EQ(d.demand_rps, 500);
}

TEST(Scheduler, LeadCoversTheMeasuredActivationTime) {
  SchedulerConfig c = Cfg(Policy::kPredictive);
  c.step_seconds = 0.1;
  c.lead_margin_steps = 1;
  CloneScheduler s(c);
  EXPECT_EQ(s.lead_steps(), 2);  // default 50 ms < one step
  s.ObserveActivation(0.25);     // 250 ms = 3 steps of 100 ms
  EXPECT_EQ(s.lead_steps(), 4);
  s.ObserveActivation(0.01);     // a fast one does not shorten the lead
  EXPECT_EQ(s.lead_steps(), 4);
  // A spike forecast 4 steps ahead is acted on now; 5 steps ahead is not yet.
  CloneScheduler t(c);
  t.ObserveActivation(0.25);
  EXPECT_EQ(t.Step(In(100, 0, {100, 100, 100, 100, 500})).target_active, 0);
  EXPECT_EQ(t.Step(In(100, 0, {100, 100, 100, 500, 500})).target_active, 1);
}

TEST(Scheduler, HysteresisAndCalmStepsBeforeRelease) {
  CloneScheduler s(Cfg(Policy::kReactive));
  ASSERT_EQ(s.Step(In(500, 0)).target_active, 1);
  for (int i = 0; i < 5; ++i) s.Step(In(500, 1));
  // 250 rps: below high * 400 = 320 but above low * 400 = 200: inside the band, stays.
  for (int i = 0; i < 10; ++i) EXPECT_EQ(s.Step(In(250, 1)).target_active, 1) << i;
  // Below the band: released after calm_steps (2) steps, not at the first.
  EXPECT_EQ(s.Step(In(150, 1)).target_active, 1);
  EXPECT_EQ(s.Step(In(150, 1)).target_active, 0);
}

TEST(Scheduler, DwellBoundsFlappingOnOscillatingDemand) {
  SchedulerConfig c = Cfg(Policy::kReactive);
  c.calm_steps = 1;
  c.min_dwell_steps = 5;
  CloneScheduler s(c);
  int active = 0, changes = 0;
  for (int t = 0; t < 100; ++t) {
    double demand = (t % 2) ? 500 : 50;  // crosses both thresholds every step
    int target = s.Step(In(demand, active)).target_active;
    if (target != active) ++changes;
    active = target;
  }
  // Up is immediate, down waits min_dwell_steps: at most one release per 5 steps.
  EXPECT_LE(changes, 2 * (100 / 5) + 1);
  EXPECT_GE(changes, 2);  // it does still follow the load
}

TEST(Scheduler, PredictiveKeepsTheShadowWhileTheForecastStaysHigh) {
  CloneScheduler s(Cfg(Policy::kPredictive));
  ASSERT_EQ(s.Step(In(500, 0, {500, 500})).target_active, 1);
  for (int i = 0; i < 6; ++i) {
    // Measured is low, but the next steps are forecast high: keep it.
    EXPECT_EQ(s.Step(In(100, 1, {100, 500})).target_active, 1);
  }
  s.Step(In(100, 1, {100, 100}));
  EXPECT_EQ(s.Step(In(100, 1, {100, 100})).target_active, 0);
}

TEST(Scheduler, PoolSizeCapsActivations) {
  CloneScheduler s(Cfg(Policy::kReactive));
  SchedulerInput in = In(10000, 0);
  in.pool_size = 2;
  EXPECT_EQ(s.Step(in).target_active, 2);
}

TEST(Scheduler, ResizesActiveShadowsByMeasuredLoad) {
  SchedulerConfig c = Cfg(Policy::kReactive);
  c.resize = true;
  c.min_dwell_steps = 2;
  CloneScheduler s(c);
  ASSERT_EQ(s.Step(In(500, 0)).target_active, 1);
  SchedulerInput in = In(600, 1);
  in.active_vcpus = 4;
  in.shadow_rps = 380;  // > 0.8 * 4 * 100 = 320: needs ceil(380 / 80) = 5 vCPUs
  s.Step(in);           // dwell after the activation
  Decision d = s.Step(in);
  EXPECT_EQ(d.target_vcpus, 5);
  in.active_vcpus = 5;
  in.shadow_rps = 100;  // < 0.5 * 4 * 100: shrink by one
  EXPECT_EQ(s.Step(in).target_vcpus, 0);  // dwell
  EXPECT_EQ(s.Step(in).target_vcpus, 4);
}

TEST(Scheduler, ValidateNamesTheBadSetting) {
  SchedulerConfig c = Cfg(Policy::kPredictive);
  c.low = 0.9;
  EXPECT_NE(c.Validate().message().find("low"), std::string::npos);
  c = Cfg(Policy::kPredictive);
  c.shadow_vcpus = 20;
  EXPECT_FALSE(c.Validate().ok());
  EXPECT_TRUE(Cfg(Policy::kPredictive).Validate().ok());
  Policy p;
  EXPECT_FALSE(ParsePolicy("psychic", &p).ok());
  ASSERT_TRUE(ParsePolicy("reactive", &p).ok());
  EXPECT_EQ(p, Policy::kReactive);
}

}  // namespace
}  // namespace lull::clone
