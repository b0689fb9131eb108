#include "dom0/clone/controller.h"

#include <cmath>

#include "dom0/clone/peak_forecast.h"

namespace lull::clone {

Controller::Controller(ShadowPool* pool, const SchedulerConfig& cfg, double scale)
    : pool_(pool), sched_(cfg), scale_(scale > 0 ? scale : 1), vcpus_(cfg.shadow_vcpus) {}

Status Controller::Warm(const std::vector<double>& history) {
  for (double v : history) {
    Status s = fc_.observe(v);
    if (!s.ok()) return Status::InvalidArgument("warm-up history: " + s.message());
  }
  return Status::Ok();
}

Status Controller::Counters(uint64_t* total, uint64_t* shadows) {
  std::vector<ServerStat> rows;
  Status s = pool_->lb().ShowStat(&rows);
  if (!s.ok()) return s;
  *total = *shadows = 0;
  for (const auto& r : rows) {
    if (r.name == "primary") *total += r.stot;
    else if (r.name.size() > 1 && r.name[0] == 's' && isdigit(static_cast<unsigned char>(r.name[1]))) {
      *total += r.stot;
      *shadows += r.stot;
    }
  }
  return Status::Ok();
}

Status Controller::Begin() {
  last_t_ = std::chrono::steady_clock::now();
  return Counters(&last_total_, &last_shadow_);
}

Status Controller::Step(StepRecord* rec) {
  uint64_t total, shadow;
  Status s = Counters(&total, &shadow);
  if (!s.ok()) return s;
  auto now = std::chrono::steady_clock::now();
  double dt = std::chrono::duration<double>(now - last_t_).count();
  if (dt <= 0) dt = 1e-3;
  *rec = StepRecord();
  rec->measured_rps = (total - last_total_) / dt;
  rec->shadow_rps = (shadow - last_shadow_) / dt;
  last_total_ = total;
  last_shadow_ = shadow;
  last_t_ = now;

  // The forecaster clamps above 1.0; demand beyond the scale saturates, which is enough
  // to cross any threshold below it.
  s = fc_.observe(std::min(rec->measured_rps / scale_, 1.25));
  if (!s.ok()) return s;
  SchedulerInput in;
  in.measured_rps = rec->measured_rps;
  in.shadow_rps = rec->shadow_rps;
  in.active = pool_->active();
  in.pool_size = pool_->size();
  in.active_vcpus = vcpus_;
  int lead = sched_.lead_steps();
  for (int h = 1; h <= std::max(lead, sched_.config().calm_steps); ++h) {
    PeakForecast p = ForecastPeak(fc_, h);
    in.forecast_rps.push_back(p.level * scale_);
    in.confidence.push_back(p.confidence);
  }
  rec->forecast_rps = in.forecast_rps[lead - 1];
  rec->confidence = in.confidence[lead - 1];
  Decision d = sched_.Step(in);
  rec->decision_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - now).count();
  rec->demand_rps = d.demand_rps;
  rec->reason = d.reason;
  rec->active_before = in.active;
  while (pool_->active() < d.target_active) {
    double ms = 0;
    s = pool_->Activate(&ms);
    if (!s.ok()) return s;
    // Late by the decision and the activation together (see the header).
    sched_.ObserveActivation((rec->decision_ms + ms) / 1000.0);
    rec->activation_ms = std::max(rec->activation_ms, ms);
  }
  while (pool_->active() > d.target_active) {
    s = pool_->Deactivate();
    if (!s.ok()) return s;
  }
  if (d.target_vcpus > 0) {
    for (int i = 0; i < pool_->size(); ++i) {
      if (!pool_->shadow_active(i)) continue;
      s = pool_->Resize(i, d.target_vcpus);
      if (!s.ok()) return s;
    }
    vcpus_ = d.target_vcpus;
  }
  if (pool_->active() == 0 && vcpus_ != sched_.config().shadow_vcpus) {
    // Idle shadows go back to the profile, so the next activation starts from it.
    for (int i = 0; i < pool_->size(); ++i) {
      if (pool_->shadow(i).vcpus() != sched_.config().shadow_vcpus) {
        s = pool_->Resize(i, sched_.config().shadow_vcpus);
        if (!s.ok()) return s;
      }
    }
    vcpus_ = sched_.config().shadow_vcpus;
  }
  rec->active_after = pool_->active();
  rec->vcpus = vcpus_;
  return Status::Ok();
}

}  // namespace lull::clone
