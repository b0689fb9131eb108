#include "dom0/clone/scheduler.h"

#include <algorithm>
#include <cmath>

namespace lull::clone {

const char* PolicyName(Policy p) {
  switch (p) {
    case Policy::kNone: return "none";
    case Policy::kReactive: return "reactive";
    case Policy::kPredictive: return "predictive";
  }
  return "?";
}

Status ParsePolicy(const std::string& name, Policy* out) {
  if (name == "none") *out = Policy::kNone;
  else if (name == "reactive") *out = Policy::kReactive;
  else if (name == "predictive") *out = Policy::kPredictive;
  else return Status::InvalidArgument("policy '" + name + "' (none, reactive or predictive)");
  return Status::Ok();
}

Status SchedulerConfig::Validate() const {
  if (!(high > 0 && high <= 1)) return Status::InvalidArgument("scheduler: high must be in (0, 1]");
  if (!(low > 0 && low < high)) {
    return Status::InvalidArgument("scheduler: low must be in (0, high) for hysteresis");
  }
  if (!(min_confidence >= 0 && min_confidence <= 1)) {
    return Status::InvalidArgument("scheduler: min_confidence must be in [0, 1]");
  }
  if (!(initial_activation_s >= 0)) {
    return Status::InvalidArgument("scheduler: initial_activation_s must be >= 0");
  }
  if (min_dwell_steps < 0 || calm_steps < 1 || lead_margin_steps < 0) {
    return Status::InvalidArgument("scheduler: dwell >= 0, calm >= 1, lead margin >= 0");
  }
  if (!(step_seconds > 0) || !(primary_rps > 0) || !(per_vcpu_rps > 0)) {
    return Status::InvalidArgument("scheduler: step, primary_rps, per_vcpu_rps must be > 0");
  }
  if (min_vcpus < 1 || max_vcpus < min_vcpus || shadow_vcpus < min_vcpus ||
      shadow_vcpus > max_vcpus) {
    return Status::InvalidArgument("scheduler: need 1 <= min_vcpus <= shadow_vcpus <= max_vcpus");
  }
  return Status::Ok();
}

void CloneScheduler::ObserveActivation(double seconds) {
  if (seconds > activation_s_) activation_s_ = seconds;
}

int CloneScheduler::lead_steps() const {
  int l = static_cast<int>(std::ceil(activation_s_ / cfg_.step_seconds - 1e-9));
  return std::max(1, l) + cfg_.lead_margin_steps;
}

Decision CloneScheduler::Step(const SchedulerInput& in) {
  ++since_change_;
  ++since_vcpu_change_;
  Decision d;
  d.target_active = in.active;
  if (cfg_.policy == Policy::kNone) {
    d.target_active = 0;
    d.demand_rps = in.measured_rps;
    d.reason = "policy none";
    return d;
  }
  const int vcpus = in.active_vcpus > 0 ? in.active_vcpus : cfg_.shadow_vcpus;
  // Demand for scaling up (over the lead) and for scaling down (over a longer window:
  // never release a shadow right before the next forecast spike).
  auto forecast_max = [&](int horizon) {
    double m = 0;
    for (int h = 0; h < horizon && h < static_cast<int>(in.forecast_rps.size()); ++h) {
      double c = h < static_cast<int>(in.confidence.size()) ? in.confidence[h] : 0;
      if (c >= cfg_.min_confidence) m = std::max(m, in.forecast_rps[h]);
    }
    return m;
  };
  double up = in.measured_rps, down = in.measured_rps;
  if (cfg_.policy == Policy::kPredictive) {
    up = std::max(up, forecast_max(lead_steps()));
    down = std::max(down, forecast_max(std::max(lead_steps(), cfg_.calm_steps)));
  }
  d.demand_rps = up;

  int need = 0;
  while (need < in.pool_size && up > cfg_.high * Capacity(need, vcpus)) ++need;
  if (need > in.active) {
    d.target_active = need;
    d.reason = "demand " + std::to_string(static_cast<int>(up)) + " rps > " +
               std::to_string(cfg_.high) + " x capacity";
    since_change_ = 0;
    calm_ = 0;
    ++changes_;
  } else if (in.active > 0) {
    if (down <= cfg_.low * Capacity(in.active - 1, vcpus)) ++calm_;
    else calm_ = 0;
    if (calm_ >= cfg_.calm_steps && since_change_ >= cfg_.min_dwell_steps) {
      d.target_active = in.active - 1;
      d.reason = "demand calm for " + std::to_string(calm_) + " steps";
      since_change_ = 0;
      calm_ = 0;
      ++changes_;
    }
  } else {
    calm_ = 0;
  }

  // Resize the active shadows by their measured load, once the count has been stable for
  // the dwell (right after a change the load split is still moving).
  if (cfg_.resize && in.active > 0 && d.target_active == in.active &&
      since_change_ >= std::max(1, cfg_.min_dwell_steps) &&
      since_vcpu_change_ >= cfg_.min_dwell_steps) {
    double per_shadow = in.shadow_rps / in.active;
    double cap = vcpus * cfg_.per_vcpu_rps;
    int want = vcpus;
    if (per_shadow > cfg_.high * cap) {
      want = static_cast<int>(std::ceil(per_shadow / (cfg_.high * cfg_.per_vcpu_rps)));
    } else if (vcpus > cfg_.min_vcpus && per_shadow < cfg_.low * (vcpus - 1) * cfg_.per_vcpu_rps) {
      want = vcpus - 1;  // shrink one vCPU at a time
    }
    want = std::clamp(want, cfg_.min_vcpus, cfg_.max_vcpus);
    if (want != vcpus) {
      d.target_vcpus = want;
      since_vcpu_change_ = 0;
    }
  }
  return d;
}

}  // namespace lull::clone
