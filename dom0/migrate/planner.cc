#include "dom0/migrate/planner.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace lull::migrate {

lull::Status PlannerConfig::Check() const {
  if (!(max_rate > 0)) return lull::Status::InvalidArgument("planner: max_rate must be > 0");
  if (!(lull_level > 0 && lull_level < 1))
    return lull::Status::InvalidArgument("planner: lull_level must be in (0, 1)");
  if (migration_steps < 1 || migration_steps > forecast::SeriesForecaster::kMaxPending)
    return lull::Status::InvalidArgument("planner: migration_steps must be in 1..12, not " +
                                         std::to_string(migration_steps));
  if (prewarm_steps < 1 || reservation_steps < 1 || warmup < 0 || max_wait_steps < 0)
    return lull::Status::InvalidArgument("planner: step counts must be positive");
  if (!(go_probability >= 0 && go_probability <= 1))
    return lull::Status::InvalidArgument("planner: go_probability must be in [0, 1]");
  return lull::Status::Ok();
}

const char* MigrationPlanner::ActionName(Action a) {
  switch (a) {
    case Action::kWait: return "wait";
    case Action::kReserve: return "reserve";
    case Action::kMigrate: return "migrate";
    case Action::kRelease: return "release";
  }
  return "?";
}

MigrationPlanner::MigrationPlanner(const PlannerConfig& cfg) : cfg_(cfg) {}

lull::Status MigrationPlanner::Observe(double rate) {
  if (!(rate >= 0) || std::isinf(rate))
    return lull::Status::InvalidArgument("planner: dirty rate " + std::to_string(rate) +
                                         " is not a rate");
  last_ = std::min(rate / cfg_.max_rate, 1.0);
  if (auto s = f_.observe(last_); !s.ok()) return s;
  ++steps_;
  return lull::Status::Ok();
}

double MigrationPlanner::predicted_rate(int h) const {
  return f_.forecast(h).p50 * cfg_.max_rate;
}

bool MigrationPlanner::LullWithin(int steps) const {
  for (int h = 1; h <= steps; ++h)
    if (f_.forecast(h).p50 < cfg_.lull_level) return true;
  return false;
}

MigrationPlanner::Action MigrationPlanner::Decide() const {
  if (cfg_.max_wait_steps && steps_ >= static_cast<size_t>(cfg_.max_wait_steps))
    return Action::kMigrate;
  if (steps_ < static_cast<size_t>(cfg_.warmup)) return Action::kWait;
  if (last_ < cfg_.lull_level &&
      f_.prob_stay_below(cfg_.lull_level, cfg_.migration_steps) >= cfg_.go_probability) {
    bool lasts = true;
    for (int h = 1; h <= cfg_.migration_steps && lasts; ++h)
      lasts = f_.forecast(h).p50 < cfg_.lull_level;
    if (lasts) return Action::kMigrate;
  }
  bool near = LullWithin(cfg_.prewarm_steps);
  if (!holding_reservation() && near) return Action::kReserve;
  if (holding_reservation() && !near &&
      steps_ - static_cast<size_t>(reserved_at_) > static_cast<size_t>(cfg_.reservation_steps))
    return Action::kRelease;
  return Action::kWait;
}

// ---- provisioning ------------------------------------------------------------------

namespace {

double Need(double p90, double configured, double limit, const ProvisionConfig& c) {
  double v = std::max(p90 * configured * (1 + c.headroom), c.floor * configured);
  return std::min(v, limit);
}

bool Differs(double a, double b, double rel) {
  double m = std::max(std::fabs(a), std::fabs(b));
  return m > 0 && std::fabs(a - b) / m > rel;
}

}  // namespace

lull::Status Provisioner::Plan(const std::vector<forecast::Distribution>& cpu,
                               const std::vector<forecast::Distribution>& mem,
                               const std::vector<forecast::Distribution>& io,
                               const Resources& conf, const Resources& lim,
                               const ProvisionConfig& cfg, Provisioner* out) {
  if (cpu.empty() || cpu.size() != mem.size() || cpu.size() != io.size())
    return lull::Status::InvalidArgument("provisioning: the cpu, memory and I/O forecasts must "
                                         "be non-empty and of one length");
  if (!(conf.cpu > 0 && conf.memory_mib > 0 && conf.io_mbps >= 0))
    return lull::Status::InvalidArgument("provisioning: configured cpu and memory must be > 0");
  if (!(lim.cpu > 0 && lim.memory_mib > 0 && lim.io_mbps >= 0))
    return lull::Status::InvalidArgument("provisioning: target limits must be > 0");
  if (!(cfg.headroom >= 0 && cfg.floor >= 0 && cfg.floor <= 1 && cfg.hysteresis >= 0))
    return lull::Status::InvalidArgument("provisioning: headroom, floor, hysteresis out of range");
  Provisioner p;
  p.limits_ = lim;
  p.cfg_ = cfg;
  for (size_t i = 0; i < cpu.size(); ++i) {
    Resources r{Need(cpu[i].p90, conf.cpu, lim.cpu, cfg),
                Need(mem[i].p90, conf.memory_mib, lim.memory_mib, cfg),
                Need(io[i].p90, conf.io_mbps, lim.io_mbps, cfg)};
    int step = static_cast<int>(i);
    if (!p.phases_.empty()) {
      ProvisionPhase& last = p.phases_.back();
      if (!Differs(last.r.cpu, r.cpu, cfg.hysteresis) &&
          !Differs(last.r.memory_mib, r.memory_mib, cfg.hysteresis) &&
          !Differs(last.r.io_mbps, r.io_mbps, cfg.hysteresis)) {
        // Same phase: keep the most any of its steps needs.
        last.r.cpu = std::max(last.r.cpu, r.cpu);
        last.r.memory_mib = std::max(last.r.memory_mib, r.memory_mib);
        last.r.io_mbps = std::max(last.r.io_mbps, r.io_mbps);
        last.end = step + 1;
        continue;
      }
    }
    p.phases_.push_back({step, step + 1, r});
  }
  *out = std::move(p);
  return lull::Status::Ok();
}

lull::Status Provisioner::FromPhases(const std::vector<ProvisionPhase>& phases,
                                     const Resources& lim, const ProvisionConfig& cfg,
                                     Provisioner* out) {
  if (phases.empty() || phases.size() > 4096)
    return lull::Status::InvalidArgument("provisioning plan: " + std::to_string(phases.size()) +
                                         " phases (want 1..4096)");
  if (!(lim.cpu > 0 && lim.memory_mib > 0 && lim.io_mbps >= 0))
    return lull::Status::InvalidArgument("provisioning: target limits must be > 0");
  if (!(cfg.headroom >= 0 && cfg.headroom <= 10 && cfg.floor >= 0 && cfg.floor <= 1 &&
        cfg.hysteresis >= 0))
    return lull::Status::InvalidArgument("provisioning plan: headroom, floor, hysteresis out of range");
  Provisioner p;
  p.limits_ = lim;
  p.cfg_ = cfg;
  int next = 0;
  for (size_t i = 0; i < phases.size(); ++i) {
    const ProvisionPhase& ph = phases[i];
    const std::string name = "provisioning plan: phase " + std::to_string(i);
    if (ph.start != next || ph.end <= ph.start)
      return lull::Status::InvalidArgument(name + " covers steps [" + std::to_string(ph.start) + ", " +
                                           std::to_string(ph.end) + "), want it to start at " +
                                           std::to_string(next) + " and be non-empty");
    for (double v : {ph.r.cpu, ph.r.memory_mib, ph.r.io_mbps})
      if (!std::isfinite(v) || v < 0)
        return lull::Status::InvalidArgument(name + " has a negative or non-finite resource");
    if (!(ph.r.cpu > 0 && ph.r.memory_mib > 0))
      return lull::Status::InvalidArgument(name + " gives no CPU or no memory");
    next = ph.end;
    p.phases_.push_back({ph.start, ph.end,
                         Resources{std::min(ph.r.cpu, lim.cpu), std::min(ph.r.memory_mib, lim.memory_mib),
                                   std::min(ph.r.io_mbps, lim.io_mbps)}});
  }
  *out = std::move(p);
  return lull::Status::Ok();
}

Resources Provisioner::At(int step) const {
  for (const auto& ph : phases_)
    if (step < ph.end) return ph.r;
  return phases_.empty() ? Resources{} : phases_.back().r;
}

void Provisioner::Correct(int step, const Resources& m) {
  auto raise = [&](double used, double* have, double limit) {
    if (used * (1 + cfg_.headroom) > *have) *have = std::min(used * (1 + cfg_.headroom), limit);
  };
  for (auto& ph : phases_) {
    if (ph.end <= step) continue;
    raise(m.cpu, &ph.r.cpu, limits_.cpu);
    raise(m.memory_mib, &ph.r.memory_mib, limits_.memory_mib);
    raise(m.io_mbps, &ph.r.io_mbps, limits_.io_mbps);
  }
}

}  // namespace lull::migrate
