#include "dom0/engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace lull::dom0 {

namespace {
constexpr double kNs = 1e9;
double Floor05(double x) { return std::floor(x * 20.0 + 1e-9) / 20.0; }
}  // namespace

// Piecewise-linear quantile function through the forecast's p50/p90/p95/p99 (p100 = 1).
double QuantileAt(const Prediction& p, double q) {
  const double qs[] = {0.5, 0.9, 0.95, 0.99, 1.0};
  const double vs[] = {p.p50, std::max(p.p50, p.p90), std::max(p.p90, p.p95), std::max(p.p95, p.p99), 1.0};
  if (q <= qs[0]) return vs[0];
  for (int i = 1; i < 5; ++i)
    if (q <= qs[i]) return vs[i - 1] + (vs[i] - vs[i - 1]) * (q - qs[i - 1]) / (qs[i] - qs[i - 1]);
  return 1.0;
}

namespace {
}  // namespace

const char* PolicyName(Policy p) {
  switch (p) {
    case Policy::kNone: return "none";
    case Policy::kReactive: return "reactive";
    case Policy::kLull: return "lull";
    case Policy::kOracle: return "oracle";
  }
  return "?";
}

bool ParsePolicy(const std::string& s, Policy* out) {
  if (s == "none") *out = Policy::kNone;
  else if (s == "reactive") *out = Policy::kReactive;
  else if (s == "lull") *out = Policy::kLull;
  else if (s == "oracle") *out = Policy::kOracle;
  else return false;
  return true;
}

struct Engine::G {
  GuestInfo info;
  size_t index = 0;
  std::unique_ptr<GuestProfiler> prof;
  ThresholdTuner tuner;
  uint64_t prev_busy_ns = 0, prev_now_ns = 0;
  bool primed = false;
  uint64_t next_close_ns = 0;  // end of the interval being observed (staggered)
  // The interval being observed.
  double peak_cpu = 0, sum_cpu = 0, peak_mem = 0;
  int n = 0;
  double last_cpu = 0, last_mem = 0, last_mean_cpu = 0;
  bool leased = false, violated = false;
  double cost = 0;
  int revocations = 0;
  double lent_cpu = 0, lent_mem = 0;
  // Decided at the last close for the current interval: lendable in total, and what is
  // left of it after the leases in force.
  double lendable_cpu = 0, lc = 0, lm = 0;
  bool is_donor = false;       // listed in donors_
  uint64_t closed_ns = 0;
  double thr_used = 0;
  std::vector<uint64_t> leases;  // ids of the leases this guest donates to
  GuestTelemetry tel;
  bool hinted_busy = false;       // the host holds our busy hint for its leases
  uint64_t hinted_from_ns = 0;
};

Engine::Engine(HostBackend* host, TaskQueue* tasks, const EngineConfig& cfg, const FutureView* future)
    : host_(host), tasks_(tasks), cfg_(cfg), future_(future) {}

Engine::~Engine() { host_->SetPressureHandler(nullptr); }

Status Engine::Start() {
  if (cfg_.control_period_s <= 0) return Status::InvalidArgument("control_period_s must be > 0");
  if (cfg_.lease_period_s < cfg_.control_period_s)
    return Status::InvalidArgument("lease_period_s must be >= control_period_s (leases are renewed each period)");
  if (cfg_.policy == Policy::kOracle && !future_)
    return Status::InvalidArgument("the oracle policy needs a view of the future (simulation only)");
  std::vector<GuestInfo> infos;
  guests_version_ = host_->GuestsVersion();
  Status s = host_->ListGuests(&infos);
  if (!s.ok()) return s;
  guests_.clear();
  by_domid_.clear();
  period_ns_ = static_cast<uint64_t>(cfg_.control_period_s * kNs);
  const uint64_t start = host_->NowNs();
  for (size_t i = 0; i < infos.size(); ++i) {
    // Guest i of n closes at phase i/n of the interval: the forecasting work is spread
    // evenly over the control steps instead of landing on one.
    AddG(infos[i], start + period_ns_ + period_ns_ * i / std::max<size_t>(1, infos.size()), guests_.size());
  }
  donors_.clear();
  donors_.reserve(guests_.size());
  cursor_ = 0;
  lent_total_ = 0;
  last_poll_ns_ = start;
  host_model_ = MakeModel();
  host_tuner_ = ThresholdTuner(&cfg_.host_tuner, PriorityClass::kStandard);
  next_control_ns_ = start + period_ns_;
  host_->SetPressureHandler([this](const PressureEvent& ev) { OnPressure(ev); });
  return Status::Ok();
}

Engine::G* Engine::AddG(const GuestInfo& gi, uint64_t next_close_ns, size_t at) {
  auto g = std::make_unique<G>();
  g->info = gi;
  g->prof = std::make_unique<GuestProfiler>(cfg_.window_periods);
  g->tuner = ThresholdTuner(&cfg_.tuner, gi.cls);
  g->leases.reserve(8);
  g->next_close_ns = next_close_ns;
  G* raw = g.get();
  by_domid_[gi.domid] = raw;
  guests_.insert(guests_.begin() + static_cast<std::ptrdiff_t>(at), std::move(g));
  for (size_t i = at; i < guests_.size(); ++i) guests_[i]->index = i;
  RebuildDonors();
  return raw;
}

// A guest that left: its leases end (the host has undone them or will find nothing to
// undo), their tasks go back to the queue, and the guest's state is gone - a later
// domain with the same domid starts afresh.
void Engine::RemoveG(size_t index) {
  G& g = *guests_[index];
  scratch_ids_.assign(g.leases.begin(), g.leases.end());
  for (uint64_t id : scratch_ids_) {
    if (DropLease(id)) ++stats_.leases_dropped;  // NotFound: the host dropped it with the domain
  }
  scratch_ids_.clear();
  by_domid_.erase(g.info.domid);
  guests_.erase(guests_.begin() + static_cast<std::ptrdiff_t>(index));
  for (size_t i = index; i < guests_.size(); ++i) guests_[i]->index = i;
  // Phase order is kept: the cursor still points at the guest due next.
  if (index < cursor_) --cursor_;
  if (cursor_ >= guests_.size()) cursor_ = 0;
  RebuildDonors();
  ++stats_.guests_left;
}

// donors_ holds indices into guests_: renumbered when a guest comes or goes.
void Engine::RebuildDonors() {
  donors_.clear();
  for (const auto& gp : guests_) if (gp->is_donor) donors_.push_back(gp->index);
}

void Engine::SyncGuests() {
  guests_version_ = host_->GuestsVersion();
  std::vector<GuestInfo> infos;
  if (!host_->ListGuests(&infos).ok()) return;  // try again at the next change
  std::unordered_map<DomId, const GuestInfo*> now_there;
  for (const auto& gi : infos) now_there[gi.domid] = &gi;
  for (size_t i = guests_.size(); i-- > 0;) {
    auto it = now_there.find(guests_[i]->info.domid);
    if (it == now_there.end() || it->second->instance != guests_[i]->info.instance) RemoveG(i);
  }
  const uint64_t now = host_->NowNs();
  for (const auto& gi : infos) {
    if (by_domid_.count(gi.domid)) continue;
    // The newcomer closes last in phase order: just before the cursor, one interval on
    // (no earlier than any guest now waiting, so the cursor's walk stays in time order).
    uint64_t close = now + period_ns_;
    for (const auto& gp : guests_) close = std::max(close, gp->next_close_ns);
    AddG(gi, close, cursor_);
    if (guests_.size() > 1) cursor_ = (cursor_ + 1) % guests_.size();
    ++stats_.guests_added;
  }
}

Engine::G* Engine::FindG(DomId d) {
  auto it = by_domid_.find(d);
  return it == by_domid_.end() ? nullptr : it->second;
}

void Engine::CreditLeases(uint64_t now) {
  scratch_ids_.clear();  // tasks that completed
  for (auto& [id, l] : leases_) {
    if (now <= l.accounted_ns) continue;
    double secs = (now - l.accounted_ns) / kNs;
    l.accounted_ns = now;
    stats_.handed_cpu_s += l.info.cpus * secs;
    stats_.handed_mem_gib_s += l.info.mem_gib * secs;
    if (l.info.task && tasks_->Credit(l.info.task, l.info.cpus * secs, now)) {
      ++stats_.tasks_completed;
      scratch_ids_.push_back(l.info.task);
    }
  }
  if (scratch_ids_.empty()) return;
  // A finished task gives its capacity back.
  std::vector<uint64_t> done;
  done.swap(scratch_ids_);
  for (uint64_t t : done) {
    for (auto it = leases_.begin(); it != leases_.end();) {
      uint64_t id = it->first;
      bool match = it->second.info.task == t;
      ++it;
      if (match) EndLease(id, false);
    }
  }
  done.clear();
  scratch_ids_.swap(done);
}

// The engine's bookkeeping when a lease ends, however it ends.
void Engine::Forget(const LeaseInfo& l) {
  if (G* g = FindG(l.donor)) {
    g->lent_cpu = std::max(0.0, g->lent_cpu - l.cpus);
    g->lent_mem = std::max(0.0, g->lent_mem - l.mem_gib);
    auto it = std::find(g->leases.begin(), g->leases.end(), l.id);
    if (it != g->leases.end()) g->leases.erase(it);
  }
  lent_total_ = std::max(0.0, lent_total_ - l.cpus);
  if (Task* t = tasks_->Find(l.task)) t->leases = std::max(0, t->leases - 1);
}

bool Engine::DropLease(uint64_t id) {
  auto it = leases_.find(id);
  if (it == leases_.end()) return false;
  (void)host_->RevokeLease(id);  // NotFound = the host already expired it
  Forget(it->second.info);
  leases_.erase(it);
  return true;
}

void Engine::EndLease(uint64_t id, bool forced) {
  if (!DropLease(id)) return;
  if (forced) ++stats_.forced_revocations; else ++stats_.planned_returns;
}

void Engine::Poll() {
  auto wall0 = std::chrono::steady_clock::now();
  if (host_->GuestsVersion() != guests_version_) SyncGuests();
  const uint64_t now = host_->NowNs();
  double host_now = 0;
  for (auto& gp : guests_) {
    G& g = *gp;
    GuestTelemetry& t = g.tel;  // reused: no allocation per poll
    if (!host_->ReadTelemetry(g.info.domid, &t).ok()) continue;
    uint64_t busy = 0;
    for (const auto& v : t.vcpus) busy += v.running_ns + v.runnable_ns;
    if (g.primed && t.now_ns > g.prev_now_ns) {
      double cpus = static_cast<double>(busy - g.prev_busy_ns) / static_cast<double>(t.now_ns - g.prev_now_ns);
      g.last_cpu = cpus;
      g.peak_cpu = std::max(g.peak_cpu, cpus);
      g.sum_cpu += cpus;
      ++g.n;
      host_now += cpus;
    }
    g.prev_busy_ns = busy;
    g.prev_now_ns = t.now_ns;
    g.primed = true;
    g.last_mem = t.mem_used_gib;
    g.peak_mem = std::max(g.peak_mem, t.mem_used_gib);
  }
  host_peak_ = std::max(host_peak_, host_now);
  host_sum_ += host_now;
  ++host_n_;
  CreditLeases(now);
  if (cfg_.policy == Policy::kLull) ShedBeforeContention(host_now);
  // Leases the host expired on its own (lulld was late) are forgotten here.
  for (auto it = leases_.begin(); it != leases_.end();) {
    if (it->second.info.expires_ns <= now) {
      Forget(it->second.info);
      it = leases_.erase(it);
    } else {
      ++it;
    }
  }
  bool host_closed = false;
  if (now >= next_control_ns_) {
    CloseHost(now);
    next_control_ns_ += period_ns_;
    host_closed = true;
  }
  // The guests whose interval ends now, in phase order, at most `budget` of them: with
  // evenly spread phases ceil(n*dt/P) are due per step; a late step catches up over the
  // following ones rather than doing a whole interval's forecasting at once.
  const size_t n = guests_.size();
  if (n) {
    const uint64_t dt = now > last_poll_ns_ ? now - last_poll_ns_ : 0;
    const uint64_t budget = (static_cast<uint64_t>(n) * dt + period_ns_ - 1) / period_ns_ + 1;
    for (uint64_t k = 0; k < budget; ++k) {
      G& g = *guests_[cursor_];
      if (g.next_close_ns > now) break;
      CloseGuest(g, now);
      g.next_close_ns += period_ns_;
      cursor_ = (cursor_ + 1) % n;
    }
  }
  last_poll_ns_ = now;
  Dispatch(now, host_closed);
  stats_.last_control_wall_us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - wall0).count();
}

// Lull watches the host's headroom every poll: when the guests' demand climbs to within
// the reserve of what the leases leave them, it returns the largest leases before any
// guest has to wait (a planned return, not a violation).
void Engine::ShedBeforeContention(double host_now) {
  double over = host_now + lent_total_ - (host_->PhysicalCpus() - cfg_.host_reserve_cpus);
  if (over <= 0 || leases_.empty()) return;
  ReturnLargest(over, false);
  grants_blocked_ = true;  // the host is near its peak: nothing new until it closes
}

// Ends the largest leases until `cpus` are freed (host-wide shortfalls: any donor will do,
// and the fewest leases end).
void Engine::ReturnLargest(double cpus, bool forced) {
  auto& by_size = scratch_sizes_;
  by_size.clear();
  for (auto& [id, l] : leases_) by_size.push_back({l.info.cpus, id});
  std::sort(by_size.rbegin(), by_size.rend());
  double freed = 0;
  for (auto& [c, id] : by_size) {
    if (freed >= cpus) break;
    freed += c;
    EndLease(id, forced);
  }
}

// What the host can lend in total over the coming interval, leases included.
double Engine::HostHeadroom(uint64_t now) {
  if (cfg_.policy != Policy::kOracle) return host_headroom_;
  // The oracle checks every grant and renewal against the host's exact peak over the
  // coming interval, so leases decided at different phases never overlap a peak.
  if (oracle_headroom_ns_ != now) {
    double demand = future_->MaxHostCpu(now, now + period_ns_);
    oracle_headroom_ = std::max(0.0, host_->PhysicalCpus() - demand - cfg_.host_reserve_cpus);
    oracle_headroom_ns_ = now;
  }
  return oracle_headroom_;
}

void Engine::Lendable(G& g, double host_load, uint64_t now, double* cpu, double* mem) {
  const double v = g.info.vcpus, mmax = g.info.mem_max_gib;
  const uint64_t next = now + period_ns_;
  *cpu = *mem = 0;
  switch (cfg_.policy) {
    case Policy::kNone: return;
    case Policy::kReactive:
      *cpu = v - g.last_mean_cpu;
      *mem = mmax - g.last_mem - cfg_.mem_guard_gib;
      break;
    case Policy::kOracle:
      *cpu = v - future_->MaxCpu(g.info.domid, now, next);
      *mem = mmax - future_->MaxMem(g.info.domid, now, next) - cfg_.mem_guard_gib;
      break;
    case Policy::kLull: {
      double thr = g.tuner.Threshold(host_load);
      g.thr_used = thr;
      // Lowest level (on a 1/40 grid) that the guest stays below for the whole window
      // with probability >= thr: the guest is released down to there.
      auto level = [&](auto prob) {
        int lo = 0, hi = 40;
        while (lo < hi) {
          int mid = (lo + hi) / 2;
          if (prob(mid / 40.0) >= thr) hi = mid; else lo = mid + 1;
        }
        return hi / 40.0;
      };
      double lc = level([&](double l) { return g.prof->ProbCpuBelow(l); });
      double lm = level([&](double l) { return g.prof->ProbMemBelow(l); });
      double extra = g.info.cls == PriorityClass::kCritical ? 2.0 : 1.0;
      *cpu = v * (1.0 - lc - cfg_.cpu_margin * extra);
      *mem = mmax * (1.0 - lm - cfg_.mem_margin * extra) - cfg_.mem_guard_gib;
      break;
    }
  }
  *cpu = std::max(0.0, Floor05(*cpu));
  *mem = std::max(0.0, Floor05(*mem));
}

// The host's own interval (phase 0): its forecast, its learned threshold, the headroom
// every policy caps its leases by, and the tasks' priorities.
void Engine::CloseHost(uint64_t now) {
  ++stats_.control_periods;
  host_last_mean_ = host_n_ ? host_sum_ / host_n_ : 0;
  const double cap = host_->PhysicalCpus();
  if (cfg_.policy == Policy::kLull) (void)host_model_->Observe(host_peak_ / cap);
  host_load_ = host_model_->Forecast(cfg_.window_periods).p95;
  stats_.host_load = host_load_;
  if (host_leased_) host_tuner_.Record(host_violated_, 0);
  host_violated_ = false;
  double demand = cap;
  switch (cfg_.policy) {
    case Policy::kNone: demand = cap + cfg_.host_reserve_cpus; break;
    case Policy::kReactive: demand = host_last_mean_; break;
    case Policy::kOracle: demand = future_->MaxHostCpu(now, now + period_ns_); break;
    case Policy::kLull:
      // The host's predicted peak at the quantile its learned threshold asks for.
      demand = QuantileAt(host_model_->Forecast(cfg_.window_periods), host_tuner_.base()) * cap;
      break;
  }
  host_headroom_ = std::max(0.0, cap - demand - cfg_.host_reserve_cpus);
  // The host's cap holds from now on: what it no longer covers is returned at once, not
  // at the donors' own closes (which may be up to an interval away).
  if (lent_total_ > HostHeadroom(now) + 1e-9) ReturnLargest(lent_total_ - HostHeadroom(now), false);
  double lendable = 0;
  for (const auto& gp : guests_) lendable += gp->lendable_cpu;
  stats_.lendable_cpus = lendable;
  stats_.host_headroom = HostHeadroom(now);
  stats_.sum_lendable += lendable;
  stats_.sum_headroom += stats_.host_headroom;
  double left = 0;
  for (const auto& gp : guests_) left += gp->lc;
  tasks_->Reprioritize(now, std::min(left, std::max(0.0, HostLeft(now))));
  host_leased_ = !leases_.empty();
  host_peak_ = host_sum_ = 0;
  host_n_ = 0;
  grants_blocked_ = false;
}

// One guest's interval ends: profile, score, learn, decide the next interval, and renew
// what still fits (the rest is returned: a planned return, not a violation).
void Engine::CloseGuest(G& g, uint64_t now) {
  g.closed_ns = now;
  double mean = g.n ? g.sum_cpu / g.n : g.last_cpu;
  double peak_util = g.n ? g.peak_cpu / g.info.vcpus : std::nan("");
  // Only lull acts on forecasts; the baselines run without the profilers' cost.
  if (cfg_.policy == Policy::kLull) g.prof->Observe(peak_util, g.peak_mem / g.info.mem_max_gib);
  if (g.leased) g.tuner.Record(g.violated, g.cost);
  g.last_mean_cpu = mean;
  g.violated = false;
  g.cost = 0;
  g.thr_used = 0;
  double lc = 0, lm = 0;
  Lendable(g, host_load_, now, &lc, &lm);
  g.lendable_cpu = lc;
  if (!g.leases.empty()) {
    const uint64_t expires = now + static_cast<uint64_t>(cfg_.lease_period_s * kNs);
    bool fits = lc + 1e-9 >= g.lent_cpu && lm + 1e-9 >= g.lent_mem && HostLeft(now) + 1e-9 >= 0;
    scratch_ids_.assign(g.leases.begin(), g.leases.end());
    for (uint64_t id : scratch_ids_) {
      L& l = leases_[id];
      if (fits || (l.info.manual && cfg_.policy != Policy::kNone)) {
        if (host_->RenewLease(id, expires).ok()) { l.info.expires_ns = expires; continue; }
      }
      EndLease(id, false);
    }
    scratch_ids_.clear();
  }
  g.lc = std::max(0.0, lc - g.lent_cpu);
  g.lm = std::max(0.0, lm - g.lent_mem);
  if (g.lc >= cfg_.min_lend_cpus && !g.is_donor) {
    g.is_donor = true;
    donors_.push_back(g.index);
  }
  g.leased = g.lent_cpu > 0 || g.lent_mem > 0;
  Hint(g, now);
  if (hook_ && (traced_.empty() || std::find(traced_.begin(), traced_.end(), g.info.domid) != traced_.end())) {
    Prediction p = g.prof->Cpu();
    hook_(PeriodRecord{now / kNs, g.info.domid, g.last_mean_cpu, g.peak_cpu, p.p50 * g.info.vcpus,
                       p.p95 * g.info.vcpus, g.lent_cpu, g.revocations});
  }
  g.peak_cpu = g.sum_cpu = g.peak_mem = 0;
  g.n = 0;
  g.revocations = 0;
}

// The busy hint: P(the lender's peak stays below what it kept) over 1..k control periods,
// k = the lease period in periods; the first period by whose end the lull has more
// likely than not ended is when the host should expect the wake. ProbStayBelow is
// monotone in the horizon, so the scan stops at the first such period.
void Engine::Hint(G& g, uint64_t now) {
  if (cfg_.policy != Policy::kLull) return;  // only lull's forecasts say when a lull ends
  if (g.leases.empty()) {
    g.hinted_busy = false;  // the host's hints live with the leases they were given for
    return;
  }
  const double kept = std::clamp((g.info.vcpus - g.lent_cpu) / g.info.vcpus, 0.0, 1.0);
  const int k = std::clamp(static_cast<int>(std::ceil(cfg_.lease_period_s / cfg_.control_period_s - 1e-9)), 1, 16);
  double p_busy = 0;
  uint64_t from = 0;
  for (int j = 1; j <= k; ++j) {
    double p = 1.0 - g.prof->ProbCpuBelowFor(kept, j);
    if (p >= cfg_.busy_hint_p) {
      p_busy = std::min(1.0, p);
      from = now + static_cast<uint64_t>(j - 1) * period_ns_;
      break;
    }
  }
  if (p_busy > 0) {
    if (g.hinted_busy && g.hinted_from_ns == from) return;
    if (host_->HintBusy(g.info.domid, from, p_busy, true).ok()) {
      g.hinted_busy = true;
      g.hinted_from_ns = from;
      ++stats_.busy_hints;
    }
  } else if (g.hinted_busy) {
    if (host_->HintBusy(g.info.domid, now, g.prof->ProbCpuBelowFor(kept, k), false).ok()) {  // p(idle)
      g.hinted_busy = false;
      ++stats_.idle_hints;
    }
  }
}

// Lease what the donors have left to the highest-priority tasks that fit, each task from
// the donor with the most lendable CPU that also has its memory. New leases are decided
// on fresh information only: from the donors whose interval closed in this step (their
// forecast was just made), and from every donor when the host's own interval closes
// (its headroom was just re-forecast). A lease granted from a decision up to an interval
// old was measured to cost more revocations (PlanetLab: 3x the unmet demand).
void Engine::Dispatch(uint64_t now, bool all) {
  // Donors that have nothing left drop out of the list (it only grows at a close).
  for (size_t k = 0; k < donors_.size();) {
    G& g = *guests_[donors_[k]];
    if (g.lc >= cfg_.min_lend_cpus) { ++k; continue; }
    g.is_donor = false;
    donors_[k] = donors_.back();
    donors_.pop_back();
  }
  if (donors_.empty() || grants_blocked_) return;
  double host_left = HostLeft(now);
  if (host_left < cfg_.min_lend_cpus) return;
  const uint64_t expires = now + static_cast<uint64_t>(cfg_.lease_period_s * kNs);
  for (Task* t : tasks_->Pending()) {
    if (host_left < cfg_.min_lend_cpus) break;
    if (t->arrival_ns > now || t->leases > 0) continue;
    G* best = nullptr;
    for (size_t i : donors_) {
      G& g = *guests_[i];
      if (!all && g.closed_ns != now) continue;  // a decision made earlier: wait
      if (g.lc < cfg_.min_lend_cpus || g.lm + 1e-9 < t->mem_gib) continue;
      if (!best || g.lc > best->lc || (g.lc == best->lc && g.index < best->index)) best = &g;
    }
    if (!best) continue;
    G& g = *best;
    double cpus = Floor05(std::min({g.lc, static_cast<double>(t->max_cpus), host_left}));
    if (cpus < cfg_.min_lend_cpus) continue;
    LeaseGrant grant{next_lease_++, g.info.domid, cpus, t->mem_gib, expires};
    if (!host_->InstallLease(grant).ok()) continue;
    leases_[grant.id] = L{LeaseInfo{grant.id, g.info.domid, t->id, cpus, t->mem_gib, now, expires, false}, now};
    g.leases.push_back(grant.id);
    t->leases++;
    g.lent_cpu += cpus;
    g.lent_mem += t->mem_gib;
    g.leased = true;
    g.lc -= cpus;
    g.lm -= t->mem_gib;
    lent_total_ += cpus;
    host_left -= cpus;
    ++stats_.leases_granted;
  }
  host_leased_ = host_leased_ || !leases_.empty();
}

void Engine::OnPressure(const PressureEvent& ev) {
  const uint64_t now = host_->NowNs();
  CreditLeases(now);
  if (ev.kind == PressureKind::kHost) {
    // Guests wait for CPU: free the largest leases until the shortfall is covered; the
    // host's threshold learns from it.
    ReturnLargest(ev.shortfall, true);
    host_violated_ = true;
    ++stats_.host_pressure_events;
    grants_blocked_ = true;  // the host's headroom was wrong: nothing new until it closes
    return;
  }
  G* g = FindG(ev.domid);
  if (!g) return;
  if (g->leases.empty()) return;
  scratch_ids_.assign(g->leases.begin(), g->leases.end());
  for (uint64_t id : scratch_ids_) EndLease(id, true);
  scratch_ids_.clear();
  // Its prediction was wrong: it lends nothing more until its interval closes.
  g->lc = g->lm = 0;
  g->violated = true;
  g->cost += ev.shortfall;
  g->revocations++;
}

Status Engine::Lend(DomId donor, uint64_t task, double cpus, double mem, uint64_t* lease_id) {
  G* g = FindG(donor);
  if (!g) return Status::NotFound("domain " + std::to_string(donor) + " is not a guest lulld manages");
  Task* t = tasks_->Find(task);
  if (!t) return Status::NotFound("task " + std::to_string(task) + " does not exist");
  if (t->completed_ns) return Status::InvalidArgument("task " + std::to_string(task) + " is already complete");
  if (!(cpus >= 0) || !(mem >= 0) || (cpus == 0 && mem == 0) || !std::isfinite(cpus) || !std::isfinite(mem))
    return Status::InvalidArgument("lend needs finite cpus > 0 or mem > 0");
  const uint64_t now = host_->NowNs();
  const uint64_t expires = now + static_cast<uint64_t>(cfg_.lease_period_s * kNs);
  LeaseGrant grant{next_lease_++, donor, cpus, mem, expires};
  Status s = host_->InstallLease(grant);
  if (!s.ok()) return s;
  leases_[grant.id] = L{LeaseInfo{grant.id, donor, task, cpus, mem, now, expires, true}, now};
  g->leases.push_back(grant.id);
  t->leases++;
  g->lent_cpu += cpus;
  g->lent_mem += mem;
  g->leased = true;
  g->lc = std::max(0.0, g->lc - cpus);
  g->lm = std::max(0.0, g->lm - mem);
  lent_total_ += cpus;
  ++stats_.leases_granted;
  if (lease_id) *lease_id = grant.id;
  return Status::Ok();
}

Status Engine::Revoke(uint64_t id) {
  if (!leases_.count(id)) return Status::NotFound("lease " + std::to_string(id) + " is not active");
  CreditLeases(host_->NowNs());
  if (!leases_.count(id)) return Status::Ok();  // its task just completed
  EndLease(id, false);
  return Status::Ok();
}

Status Engine::RestoreAll() {
  CreditLeases(host_->NowNs());
  std::vector<uint64_t> ids;
  for (auto& [id, l] : leases_) ids.push_back(id);
  for (uint64_t id : ids) EndLease(id, false);
  return Status::Ok();
}

Status Engine::Guest(DomId d, GuestView* out) const {
  for (const auto& gp : guests_) {
    const G& g = *gp;
    if (g.info.domid != d) continue;
    out->info = g.info;
    out->cpu_demand = g.last_cpu;
    out->mem_used_gib = g.last_mem;
    out->cpu = g.prof->Cpu();
    out->mem = g.prof->Mem();
    out->threshold = g.tuner.Threshold(stats_.host_load);
    out->lent_cpus = g.lent_cpu;
    out->lent_mem_gib = g.lent_mem;
    out->leased_periods = g.tuner.periods();
    out->violations = g.tuner.violations();
    out->cpu_mae = g.prof->CpuMae();
    out->p95_exceed_rate = g.prof->CpuP95ExceedRate();
    return Status::Ok();
  }
  return Status::NotFound("domain " + std::to_string(d) + " is not a guest lulld manages");
}

std::vector<GuestView> Engine::Guests() const {
  std::vector<GuestView> out;
  for (const auto& gp : guests_) {
    GuestView v;
    if (Guest(gp->info.domid, &v).ok()) out.push_back(v);
  }
  return out;
}

std::vector<LeaseInfo> Engine::Leases() const {
  std::vector<LeaseInfo> out;
  for (const auto& [id, l] : leases_) out.push_back(l.info);
  return out;
}

size_t Engine::MemoryBytes() const {
  size_t b = sizeof(*this);
  for (const auto& g : guests_) b += sizeof(G) + g->prof->MemoryBytes();
  return b;
}

}  // namespace lull::dom0
