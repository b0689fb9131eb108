#include "dom0/clone/pool.h"

#include <algorithm>
#include <chrono>
#include <thread>

namespace lull::clone {

namespace {
double MsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
      .count();
}
}  // namespace

Status ShadowPool::Start(const PoolConfig& cfg) {
  if (started_) return Status::AlreadyExists("shadow pool already started");
  if (cfg.dir.empty()) return Status::InvalidArgument("shadow pool: no work directory");
  if (cfg.max_shadows < 1 || cfg.max_shadows > 64) {
    return Status::InvalidArgument("shadow pool: max_shadows " +
                                   std::to_string(cfg.max_shadows) + " out of [1, 64]");
  }
  Status s = LoadGoldenConfig(cfg.golden_path, &golden_);
  if (!s.ok()) return s;
  shadow_vcpus_ = cfg.shadow_vcpus ? cfg.shadow_vcpus : golden_.vcpus;
  if (shadow_vcpus_ < 1 || shadow_vcpus_ > golden_.max_vcpus) {
    return Status::InvalidArgument("shadow pool: shadow profile of " +
                                   std::to_string(shadow_vcpus_) +
                                   " vCPUs is outside the golden image's [1, max_vcpus = " +
                                   std::to_string(golden_.max_vcpus) + "]");
  }
  cfg_ = cfg;
  primary_ = std::make_unique<ProcessInstance>(cfg.domain, cfg.golden_path, cfg.backend_path,
                                               cfg.dir);
  s = primary_->Start(golden_.vcpus);
  if (!s.ok()) return s;
  HaproxyConfig lb = cfg.lb;
  lb.dir = cfg.dir;
  lb.slots = cfg.max_shadows;
  s = lb_.Start(lb, primary_->port(), WeightFor(golden_.vcpus));
  if (!s.ok()) {
    primary_->Stop();
    return s;
  }
  started_ = true;
  return Status::Ok();
}

Status ShadowPool::Stop() {
  if (!started_) return Status::Ok();
  lb_.Stop();
  for (auto& sh : shadows_) sh.inst->Stop();
  shadows_.clear();
  activation_order_.clear();
  primary_->Stop();
  started_ = false;
  return Status::Ok();
}

Status ShadowPool::AddShadow() {
  std::vector<bool> used(cfg_.max_shadows + 1, false);
  for (auto& sh : shadows_) used[sh.slot] = true;
  int slot = 0;
  for (int i = 1; i <= cfg_.max_shadows && !slot; ++i) {
    if (!used[i]) slot = i;
  }
  if (!slot) {
    return Status::InvalidArgument("shadow pool of " + cfg_.domain + " is full (" +
                                   std::to_string(cfg_.max_shadows) + " HAProxy slots)");
  }
  Shadow sh;
  sh.slot = slot;
  sh.inst = std::make_unique<ProcessInstance>(cfg_.domain + "-shadow" + std::to_string(next_id_++),
                                              cfg_.golden_path, cfg_.backend_path, cfg_.dir);
  Status s = sh.inst->Start(shadow_vcpus_);
  if (!s.ok()) return s;
  std::string srv = "s" + std::to_string(slot);
  // Keep the slot in maint while it learns its address, then pause the warm instance.
  if (!(s = lb_.SetState(srv, "maint")).ok() || !(s = lb_.SetAddress(srv, sh.inst->port())).ok() ||
      !(s = lb_.SetWeight(srv, WeightFor(shadow_vcpus_))).ok() || !(s = sh.inst->Pause()).ok()) {
    sh.inst->Stop();
    return s;
  }
  shadows_.push_back(std::move(sh));
  return Status::Ok();
}

Status ShadowPool::SetSize(int n) {
  if (!started_) return Status::Unavailable("shadow pool is not started");
  if (n < 0 || n > cfg_.max_shadows) {
    return Status::InvalidArgument("pool size " + std::to_string(n) + " out of [0, " +
                                   std::to_string(cfg_.max_shadows) + "]");
  }
  while (size() < n) {
    Status s = AddShadow();
    if (!s.ok()) return s;
  }
  // Shrink by idle shadows only: an active one is serving and leaves by Deactivate().
  for (int i = size() - 1; i >= 0 && size() > n; --i) {
    if (shadows_[i].active) continue;
    shadows_[i].inst->Stop();
    lb_.SetState("s" + std::to_string(shadows_[i].slot), "maint");
    shadows_.erase(shadows_.begin() + i);
    for (auto& o : activation_order_) if (o > i) --o;
  }
  if (size() > n) {
    return Status::Unavailable("pool of " + cfg_.domain + " kept " + std::to_string(size()) +
                               " shadows: " + std::to_string(active()) +
                               " are active; they return to the pool when demand falls");
  }
  return Status::Ok();
}

int ShadowPool::active() const {
  return static_cast<int>(std::count_if(shadows_.begin(), shadows_.end(),
                                        [](const Shadow& s) { return s.active; }));
}

Status ShadowPool::Activate(double* ms) {
  int idx = -1;
  for (int i = 0; i < size() && idx < 0; ++i) {
    if (!shadows_[i].active) idx = i;
  }
  if (idx < 0) return Status::Unavailable("no idle shadow in the pool of " + cfg_.domain);
  Shadow& sh = shadows_[idx];
  auto t0 = std::chrono::steady_clock::now();
  Status s = sh.inst->Resume();
  // The probe proves the instance answers before any client request is sent to it.
  if (s.ok()) s = sh.inst->Probe(1000);
  std::string srv = "s" + std::to_string(sh.slot);
  if (s.ok()) s = lb_.SetWeight(srv, WeightFor(sh.inst->vcpus()));
  if (s.ok()) s = lb_.SetState(srv, "ready");
  if (!s.ok()) {
    sh.inst->Pause();
    return s;
  }
  sh.activation_ms = MsSince(t0);
  sh.active = true;
  activation_order_.push_back(idx);
  if (ms) *ms = sh.activation_ms;
  return Status::Ok();
}

Status ShadowPool::Deactivate() {
  if (activation_order_.empty()) {
    return Status::Unavailable("no active shadow in the pool of " + cfg_.domain);
  }
  int idx = activation_order_.back();
  Shadow& sh = shadows_[idx];
  std::string srv = "s" + std::to_string(sh.slot);
  Status s = lb_.SetState(srv, "drain");
  if (!s.ok()) return s;
  auto t0 = std::chrono::steady_clock::now();
  for (;;) {
    std::vector<ServerStat> rows;
    s = lb_.ShowStat(&rows);
    if (!s.ok()) return s;
    bool busy = false;
    for (auto& r : rows) {
      if (r.name == srv) busy = r.scur > 0 || r.qcur > 0;
    }
    if (!busy) break;
    if (MsSince(t0) > cfg_.drain_timeout_ms) {
      // Still draining: leave it serving rather than cut requests.
      lb_.SetState(srv, "ready");
      return Status::Unavailable("shadow " + sh.inst->id() + " still had sessions after " +
                                 std::to_string(cfg_.drain_timeout_ms) + " ms of drain");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if (!(s = lb_.SetState(srv, "maint")).ok()) return s;
  if (!(s = sh.inst->Pause()).ok()) return s;
  sh.active = false;
  activation_order_.pop_back();
  return Status::Ok();
}

Status ShadowPool::Resize(int i, int vcpus) {
  if (i < 0 || i >= size()) {
    return Status::InvalidArgument("no shadow #" + std::to_string(i) + " in the pool of " +
                                   cfg_.domain);
  }
  if (vcpus < 1 || vcpus > golden_.max_vcpus) {
    return Status::InvalidArgument("resize to " + std::to_string(vcpus) +
                                   " vCPUs: out of [1, max_vcpus = " +
                                   std::to_string(golden_.max_vcpus) + "]");
  }
  Shadow& sh = shadows_[i];
  bool was_paused = sh.inst->paused();
  if (was_paused) sh.inst->Resume();
  Status s = sh.inst->SetVcpus(vcpus);
  if (was_paused) sh.inst->Pause();
  if (!s.ok()) return s;
  return lb_.SetWeight("s" + std::to_string(sh.slot), WeightFor(vcpus));
}

double ShadowPool::ActiveCapacityRps() const {
  double c = golden_.per_vcpu_rps() * golden_.vcpus;
  for (auto& sh : shadows_) {
    if (sh.active) c += golden_.per_vcpu_rps() * sh.inst->vcpus();
  }
  return c;
}

std::vector<CloneInfo> ShadowPool::List() const {
  std::vector<CloneInfo> out;
  for (auto& sh : shadows_) {
    CloneInfo c;
    c.id = sh.inst->id();
    c.server = "s" + std::to_string(sh.slot);
    c.state = sh.active ? "active" : "idle";
    c.port = sh.inst->port();
    c.vcpus = sh.inst->vcpus();
    c.pid = sh.inst->pid();
    c.activation_ms = sh.activation_ms;
    out.push_back(c);
  }
  return out;
}

}  // namespace lull::clone
