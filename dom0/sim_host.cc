#include "dom0/sim_host.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace lull::dom0 {

namespace {
constexpr double kNs = 1e9;
constexpr double kEps = 1e-9;

uint64_t Hash2(uint64_t a, uint64_t b) {
  uint64_t z = a * 0x9E3779B97F4A7C15ULL ^ (b + 0x632BE59BD9B4E019ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}
}  // namespace

SimHost::SimHost(const SimHostConfig& cfg, const Workload* w) : cfg_(cfg), w_(w) {
  for (const auto& s : w->guests) {
    Guest g;
    g.info = s.info;
    g.info.instance = ++instances_;
    g.sched.weight = s.info.weight;
    g.maxmem_gib = s.info.mem_max_gib;
    g.balloon_gib = s.info.mem_max_gib;
    g.rs.resize(static_cast<size_t>(s.info.vcpus));
    g.vcpu_affinity.resize(static_cast<size_t>(s.info.vcpus));
    index_[g.info.domid] = guests_.size();
    guests_.push_back(std::move(g));
  }
  pcpu_pool_.assign(static_cast<size_t>(std::max(0, cfg_.pcpus)), 0);
  UpdatePlacement();
  table_status_ = OpenLeaseTable(guests_.size());
}

// A lull region with a lease table of 8 entries per guest (64 .. 4096), in a memfd.
Status SimHost::OpenLeaseTable(size_t guests) {
  lull_shm_geom geom{1, LULL_RING_MIN_CAP, LULL_RING_MIN_CAP,
                     static_cast<uint32_t>(std::clamp<size_t>(guests * 8, 64, LULL_MAX_LEASES))};
  const uint64_t bytes = lull_shm_size(&geom);
  int rc = lull::shm::Segment::CreateMemfd(bytes, false, &table_mem_);
  if (rc < 0) return Status::IoError("lease table: memfd of " + std::to_string(bytes) + " bytes: errno " + std::to_string(-rc));
  if ((rc = lull_shm_format(table_mem_.data(), table_mem_.size(), &geom, 1)) < 0 ||
      (rc = lull_shm_attach(table_mem_.data(), table_mem_.size(), &table_)) < 0)
    return Status::Internal("lease table: format/attach failed: errno " + std::to_string(-rc));
  for (uint32_t i = geom.n_leases; i > 0; --i) free_slots_.push_back(i - 1);
  return Status::Ok();
}

// The scheduler model's read of the lease table, every slice: only entries that read
// consistently, validate, and are ACTIVE at this time take CPUs from their lender.
void SimHost::ReadLeaseTable() {
  for (auto& g : guests_) g.lent_cpu = 0;
  for (uint32_t i = 0; i < slots_used_; ++i) {
    const lull_lease* e = lull_shm_lease(&table_, i);
    lull_lease_val v{};
    if (lull_lease_read(e, &v) < 0) { ++stats_.lease_entries_rejected; continue; }
    if (lull_lease_effective(e, &v, now_ns_) != LULL_LEASE_ACTIVE) continue;
    Guest* g = Find(v.lender);
    if (!g) { ++stats_.lease_entries_rejected; continue; }
    // 300 credits per 30 ms slice = one pCPU.
    g->lent_cpu += v.credit / 300.0;
  }
}

Status SimHost::WriteEntry(const Lease& l, bool active) {
  lull_lease* e = lull_shm_lease(&table_, l.slot);
  if (!e) return Status::Internal("lease table slot " + std::to_string(l.slot) + " out of range");
  lull_lease_val v{};
  v.state = active ? LULL_LEASE_ACTIVE : LULL_LEASE_FREE;
  if (active) {
    v.id = l.g.id;
    v.lender = static_cast<uint16_t>(l.g.donor);
    v.borrower = static_cast<uint16_t>(cfg_.task_domid);
    v.credit = static_cast<uint32_t>(std::lround(l.g.cpus * 300.0));
    v.expires_ns = l.g.expires_ns;
    v.granted_ns = l.installed_ns;
  }
  lull_lease_write(e, &v);
  // Xen re-reads the entry on LULL_CMD_LEASE_CHANGED; the model re-reads the table.
  ReadLeaseTable();
  return Status::Ok();
}

lull_lease* SimHost::LeaseEntry(uint64_t id) const {
  auto it = leases_.find(id);
  return it == leases_.end() ? nullptr : lull_shm_lease(&table_, it->second.slot);
}

// Recomputes every guest's allowed pCPUs after an affinity or cpupool change.
void SimHost::UpdatePlacement() {
  placed_ = false;
  for (auto& g : guests_) {
    g.allowed.clear();
    for (int c = 0; c < cfg_.pcpus; ++c) {
      if (pcpu_pool_[static_cast<size_t>(c)] != g.pool) continue;
      bool any = false;
      for (const auto& a : g.vcpu_affinity)
        any = any || a.empty() || std::find(a.begin(), a.end(), c) != a.end();
      if (any) g.allowed.push_back(c);
    }
    if (static_cast<int>(g.allowed.size()) != cfg_.pcpus) placed_ = true;
  }
}

SimHost::Guest* SimHost::Find(DomId d) {
  auto it = index_.find(d);
  return it == index_.end() || !guests_[it->second].present ? nullptr : &guests_[it->second];
}
const SimHost::Guest* SimHost::Find(DomId d) const {
  auto it = index_.find(d);
  return it == index_.end() || !guests_[it->second].present ? nullptr : &guests_[it->second];
}

Status SimHost::SetPresent(DomId d, bool present) {
  auto it = index_.find(d);
  if (it == index_.end()) return Status::NotFound("domain " + std::to_string(d) + " is not in the workload");
  Guest& g = guests_[it->second];
  if (g.present == present)
    return present ? Status::AlreadyExists("domain " + std::to_string(d) + " is running")
                   : Status::NotFound("domain " + std::to_string(d) + " is not running");
  if (!present) {
    // Destroyed: its leases die with it (the scheduler forgets a dead lender's entries).
    for (auto l = leases_.begin(); l != leases_.end();) {
      if (l->second.g.donor != d) { ++l; continue; }
      stats_.handed_cpu_s += l->second.g.cpus * (now_ns_ - l->second.installed_ns) / kNs;
      Restore(l->second);
      ++stats_.leases_dropped;
      l = leases_.erase(l);
    }
    g.present = false;
  } else {
    // A new domain under a reused domid: nothing of the old one carries over.
    const auto& spec = w_->guests[it->second].info;
    g.info.instance = ++instances_;
    g.sched = SchedParams{spec.weight, 0};
    g.maxmem_gib = g.balloon_gib = spec.mem_max_gib;
    g.lent_cpu = g.lent_mem = 0;
    g.rs.assign(static_cast<size_t>(spec.vcpus), VcpuRunstate{});
    for (auto& a : g.vcpu_affinity) a.clear();
    g.pool = 0;
    g.last_want = g.last_served = g.mem_used = 0;
    g.present = true;
  }
  UpdatePlacement();
  ++version_;
  return Status::Ok();
}

double SimHost::Entitled(const Guest& g) const {
  double e = std::max(0.0, g.info.vcpus - g.lent_cpu);
  if (g.sched.cap_pct > 0) e = std::min(e, g.sched.cap_pct / 100.0);
  return e;
}

double SimHost::Usable(const Guest& g) const {
  return std::min(Entitled(g), static_cast<double>(g.allowed.size()));
}

double SimHost::Entitlement(DomId d) const { auto* g = Find(d); return g ? Entitled(*g) : 0; }
double SimHost::BalloonTarget(DomId d) const { auto* g = Find(d); return g ? g->balloon_gib : 0; }
SchedParams SimHost::Sched(DomId d) const { auto* g = Find(d); return g ? g->sched : SchedParams{}; }
double SimHost::LastDemand(DomId d) const { auto* g = Find(d); return g ? g->last_want : 0; }
double SimHost::LastServed(DomId d) const { auto* g = Find(d); return g ? g->last_served : 0; }

uint64_t SimHost::TickPhaseNs(size_t gi) const {
  double u = (Hash2(gi + 1, static_cast<uint64_t>(step_)) >> 11) * (1.0 / 9007199254740992.0);
  return static_cast<uint64_t>(u * cfg_.tick_ms * 1e6) + 1;
}

namespace {
// Weighted water-filling of `avail` over requests (limit, weight): each gets at most its
// limit, and what a satisfied request leaves is shared by the others' weights. Results
// go to grant[slot].
struct Request { double lim; double weight; size_t slot; };
void WaterFill(std::vector<Request>* reqs, double avail, std::vector<double>* grant) {
  std::sort(reqs->begin(), reqs->end(),
            [](const Request& a, const Request& b) { return a.lim / a.weight < b.lim / b.weight; });
  double wsum = 0;
  for (const auto& r : *reqs) wsum += r.weight;
  for (const auto& r : *reqs) {
    double a = std::min(r.lim, avail * r.weight / wsum);
    (*grant)[r.slot] = a;
    avail -= a;
    wsum -= r.weight;
  }
}
}  // namespace

// Weighted water-filling over the capacity left after leases: a credit scheduler with
// weights converges to this share when every domain is runnable.
void SimHost::Allocate(std::vector<double>* alloc, const std::vector<double>& want) const {
  double lent = 0;
  for (const auto& g : guests_) lent += g.lent_cpu;  // as read from the lease table
  double avail = std::max(0.0, cfg_.pcpus - lent);
  size_t n = guests_.size();
  std::vector<double> lim(n);
  double total = 0;
  for (size_t i = 0; i < n; ++i) { lim[i] = std::min(want[i], Usable(guests_[i])); total += lim[i]; }
  alloc->assign(n, 0);
  if (placed_) return AllocatePlaced(alloc, lim, avail);
  if (total <= avail + kEps) { *alloc = lim; return; }
  std::vector<Request> reqs(n);
  for (size_t i = 0; i < n; ++i) reqs[i] = {lim[i], static_cast<double>(guests_[i].sched.weight), i};
  WaterFill(&reqs, avail, alloc);
}

// Weighted max-min fair shares when guests are confined (progressive filling, as a
// credit scheduler that balances vCPUs onto idle pCPUs converges to): every guest's
// share rises with its weight until it has what it wants or a set of pCPUs it is
// confined to is full. The sets checked are each guest's allowed set and the unions of
// overlapping ones: exact for nested or disjoint sets (pinning, cpupools).
void SimHost::AllocatePlaced(std::vector<double>* alloc, const std::vector<double>& lim, double avail) const {
  const size_t n = guests_.size(), np = static_cast<size_t>(cfg_.pcpus), words = (np + 63) / 64;
  if (np == 0) return;
  using Mask = std::vector<uint64_t>;
  auto subset = [&](const Mask& a, const Mask& b) {
    for (size_t k = 0; k < words; ++k) if (a[k] & ~b[k]) return false;
    return true;
  };
  std::vector<Mask> gm(n, Mask(words, 0)), sets;
  for (size_t i = 0; i < n; ++i) {
    for (int c : guests_[i].allowed) gm[i][static_cast<size_t>(c) / 64] |= 1ULL << (c % 64);
    if (std::find(sets.begin(), sets.end(), gm[i]) == sets.end()) sets.push_back(gm[i]);
  }
  const size_t base = sets.size();
  for (size_t a = 0; a < base; ++a)
    for (size_t b = a + 1; b < base; ++b) {
      Mask u(words);
      bool overlap = false;
      for (size_t k = 0; k < words; ++k) { u[k] = sets[a][k] | sets[b][k]; overlap |= (sets[a][k] & sets[b][k]) != 0; }
      if (overlap && std::find(sets.begin(), sets.end(), u) == sets.end()) sets.push_back(u);
    }
  struct Limit { double cap; std::vector<size_t> members; };
  std::vector<Limit> limits;
  for (const auto& m : sets) {
    size_t count = 0;
    for (uint64_t w : m) count += static_cast<size_t>(__builtin_popcountll(w));
    Limit l{avail * static_cast<double>(count) / static_cast<double>(np), {}};
    for (size_t i = 0; i < n; ++i) if (subset(gm[i], m)) l.members.push_back(i);
    limits.push_back(std::move(l));
  }
  std::vector<double>& x = *alloc;
  std::vector<char> frozen(n);
  for (size_t i = 0; i < n; ++i) frozen[i] = lim[i] <= kEps;
  for (size_t round = 0; round <= n + limits.size(); ++round) {
    double delta = -1;
    for (size_t i = 0; i < n; ++i) {
      if (frozen[i]) continue;
      double d = (lim[i] - x[i]) / guests_[i].sched.weight;
      if (delta < 0 || d < delta) delta = d;
    }
    if (delta < 0) break;  // everyone is frozen
    for (const auto& l : limits) {
      double used = 0, w = 0;
      for (size_t i : l.members) { used += x[i]; if (!frozen[i]) w += guests_[i].sched.weight; }
      if (w > 0) delta = std::min(delta, std::max(0.0, l.cap - used) / w);
    }
    for (size_t i = 0; i < n; ++i) if (!frozen[i]) x[i] += delta * guests_[i].sched.weight;
    for (size_t i = 0; i < n; ++i) if (x[i] >= lim[i] - kEps) frozen[i] = 1;
    for (const auto& l : limits) {
      double used = 0;
      for (size_t i : l.members) used += x[i];
      if (used >= l.cap - kEps) for (size_t i : l.members) frozen[i] = 1;
    }
  }
}

void SimHost::Restore(const Lease& l) {
  Guest* g = Find(l.g.donor);
  (void)WriteEntry(l, false);  // the lender's CPUs come back through the table
  free_slots_.push_back(l.slot);
  if (!g) return;
  g->lent_mem = std::max(0.0, g->lent_mem - l.g.mem_gib);
  g->balloon_gib = std::min(g->maxmem_gib, g->balloon_gib + l.g.mem_gib);
}

void SimHost::Step() {
  const uint64_t dt_ns = static_cast<uint64_t>(cfg_.step_s * kNs);
  const uint64_t start = now_ns_;
  const uint64_t end = start + dt_ns;
  const int64_t t_s = static_cast<int64_t>(start / kNs);
  const size_t n = guests_.size();

  // 1. Host-enforced expiry: whatever lulld is doing, an expired lease is undone.
  for (auto it = leases_.begin(); it != leases_.end();) {
    if (it->second.g.expires_ns <= start) {
      uint64_t until = std::max(it->second.installed_ns, it->second.g.expires_ns);
      stats_.handed_cpu_s += it->second.g.cpus * (until - it->second.installed_ns) / kNs;
      stats_.handed_mem_gib_s += it->second.g.mem_gib * (until - it->second.installed_ns) / kNs;
      Restore(it->second);
      ++stats_.leases_expired;
      it = leases_.erase(it);
    } else {
      ++it;
    }
  }
  // The slice's read of the lease table: what every lender has lent right now.
  ReadLeaseTable();

  // 2. Demand for this step, and the allocation under the current leases.
  std::vector<double> want(n), mem(n), before, after;
  for (size_t i = 0; i < n; ++i) {
    if (!guests_[i].present) continue;  // a destroyed guest wants nothing
    want[i] = w_->Cpu(i, t_s);
    mem[i] = w_->Mem(i, t_s);
    guests_[i].mem_used = mem[i];
  }
  Allocate(&before, want);
  std::vector<double> target_before(n);
  for (size_t i = 0; i < n; ++i) target_before[i] = guests_[i].balloon_gib;

  // 3. Pressure events, in time order, each delivered at its tick.
  std::vector<PressureEvent> events;
  double lent_total = 0;
  for (const auto& g : guests_) lent_total += g.lent_cpu;
  double served_total = 0;
  size_t most_waiting = n;
  double most_wait = 0;
  for (size_t i = 0; i < n; ++i) {
    const Guest& g = guests_[i];
    double ent = Entitled(g);
    if (g.lent_cpu > 0 && want[i] > ent + kEps)
      events.push_back({PressureKind::kCpu, g.info.domid, start + TickPhaseNs(i), want[i] - ent});
    if (g.lent_mem > 0 && mem[i] > g.balloon_gib + kEps)
      events.push_back({PressureKind::kMemory, g.info.domid, start + TickPhaseNs(i), mem[i] - g.balloon_gib});
    served_total += before[i];
    double waiting = std::min(want[i], Usable(g)) - before[i];
    if (waiting > most_wait) { most_wait = waiting; most_waiting = i; }
  }
  if (lent_total > 0 && most_waiting < n && most_wait > 1e-6) {
    double short_total = 0;
    for (size_t i = 0; i < n; ++i) short_total += std::min(want[i], Usable(guests_[i])) - before[i];
    events.push_back({PressureKind::kHost, guests_[most_waiting].info.domid,
                      start + TickPhaseNs(most_waiting), short_total});
  }
  std::sort(events.begin(), events.end(),
            [](const PressureEvent& a, const PressureEvent& b) { return a.at_ns < b.at_ns; });
  pressured_.clear();
  host_pressure_ = false;
  for (const auto& ev : events) {
    if (ev.kind == PressureKind::kHost) host_pressure_ = true; else pressured_.push_back(ev.domid);
  }
  std::vector<uint64_t> restored_at(n, 0);
  uint64_t host_restored_at = 0;
  for (const auto& ev : events) {
    if (!handler_) break;
    now_ns_ = ev.at_ns;
    size_t before_leases = leases_.size();
    handler_(ev);
    if (leases_.size() == before_leases) continue;
    if (ev.kind == PressureKind::kHost) host_restored_at = now_ns_;
  }
  // Which donors got their lease back, and when (RevokeLease marked them).
  for (const auto& r : revoked_in_step_) {
    for (size_t i = 0; i < n; ++i)
      if (guests_[i].info.domid == r.first && restored_at[i] == 0) restored_at[i] = r.second;
  }
  now_ns_ = start;
  Allocate(&after, want);

  // 4. Serve and account. A guest throttled by a lease waits until it is restored.
  for (size_t i = 0; i < n; ++i) {
    Guest& g = guests_[i];
    double tau = 0;  // fraction of the step spent under the old allocation
    if (restored_at[i]) tau = (restored_at[i] - start) / static_cast<double>(dt_ns);
    else if (host_restored_at) tau = (host_restored_at - start) / static_cast<double>(dt_ns);
    else tau = 1.0;  // nothing changed this step: before == after
    double served = before[i] * tau + after[i] * (1 - tau);
    double unmet = std::max(0.0, want[i] - served);
    stats_.demand_cpu_s += want[i] * cfg_.step_s;
    stats_.served_cpu_s += served * cfg_.step_s;
    stats_.unmet_cpu_s += unmet * cfg_.step_s;
    if (unmet > 1e-6) {
      bool fixed = restored_at[i] || host_restored_at;
      stats_.waits_ms.push_back(fixed ? tau * cfg_.step_s * 1000 : cfg_.step_s * 1000);
    }
    // Memory: the guest pages until its balloon target is back above its use.
    stats_.demand_mem_gib_s += mem[i] * cfg_.step_s;
    double short_gib = mem[i] - target_before[i];
    if (short_gib > kEps) {
      double secs = cfg_.step_s;
      if (g.balloon_gib >= mem[i]) {
        double deflate = (g.balloon_gib - target_before[i]) / cfg_.deflate_gib_per_s;
        secs = std::min(cfg_.step_s, (restored_at[i] ? (restored_at[i] - start) / kNs : 0) + deflate);
      }
      stats_.unmet_mem_gib_s += short_gib * secs;
    }
    if (!g.present) continue;
    // Runstate: served time runs, the rest of the wanted time is runnable-waiting.
    double per_vcpu_run = served / g.info.vcpus, per_vcpu_wait = unmet / g.info.vcpus;
    for (auto& r : g.rs) {
      r.running_ns += static_cast<uint64_t>(per_vcpu_run * dt_ns);
      r.runnable_ns += static_cast<uint64_t>(per_vcpu_wait * dt_ns);
      r.blocked_ns += static_cast<uint64_t>(std::max(0.0, 1 - per_vcpu_run - per_vcpu_wait) * dt_ns);
    }
    g.last_want = want[i];
    g.last_served = served;
  }
  revoked_in_step_.clear();
  pressured_.clear();
  host_pressure_ = false;
  now_ns_ = end;
  ++step_;
}

Status SimHost::ListGuests(std::vector<GuestInfo>* out) const {
  out->clear();
  for (const auto& g : guests_) if (g.present) out->push_back(g.info);
  return Status::Ok();
}

Status SimHost::ReadTelemetry(DomId d, GuestTelemetry* out) const {
  const Guest* g = Find(d);
  if (!g) return Status::NotFound("domain " + std::to_string(d) + " does not exist");
  out->domid = d;
  out->now_ns = now_ns_;
  out->vcpus = g->rs;
  out->mem_used_gib = g->mem_used;
  out->balloon_target_gib = g->balloon_gib;
  return Status::Ok();
}

Status SimHost::SetSched(DomId d, const SchedParams& p) {
  Guest* g = Find(d);
  if (!g) return Status::NotFound("domain " + std::to_string(d) + " does not exist");
  if (p.weight < 1 || p.weight > 65535)
    return Status::InvalidArgument("weight " + std::to_string(p.weight) + " not in 1..65535");
  g->sched = p;
  return Status::Ok();
}

Status SimHost::SetAffinity(DomId d, int vcpu, const std::vector<int>& pcpus) {
  Guest* g = Find(d);
  if (!g) return Status::NotFound("domain " + std::to_string(d) + " does not exist");
  if (vcpu < 0 || vcpu >= g->info.vcpus)
    return Status::InvalidArgument("vcpu " + std::to_string(vcpu) + " out of range");
  bool in_pool = pcpus.empty();
  for (int c : pcpus) {
    if (c < 0 || c >= cfg_.pcpus) return Status::InvalidArgument("pcpu " + std::to_string(c) + " out of range");
    in_pool = in_pool || pcpu_pool_[static_cast<size_t>(c)] == g->pool;
  }
  if (!in_pool)
    return Status::InvalidArgument("affinity of domain " + std::to_string(d) + " vcpu " + std::to_string(vcpu) +
                                   " has no pCPU in its cpupool " + std::to_string(g->pool));
  g->vcpu_affinity[static_cast<size_t>(vcpu)] = pcpus;  // empty = every pCPU
  UpdatePlacement();
  return Status::Ok();
}

Status SimHost::CreateCpupool(int pool, const std::vector<int>& pcpus) {
  if (pool <= 0) return Status::InvalidArgument("cpupool " + std::to_string(pool) + ": must be > 0 (0 is the default pool)");
  if (pcpus.empty()) return Status::InvalidArgument("cpupool " + std::to_string(pool) + ": no pCPUs");
  for (int p : pcpu_pool_)
    if (p == pool) return Status::AlreadyExists("cpupool " + std::to_string(pool) + " exists");
  int left = 0;
  for (int p : pcpu_pool_) left += p == 0;
  for (int c : pcpus) {
    if (c < 0 || c >= cfg_.pcpus) return Status::InvalidArgument("pcpu " + std::to_string(c) + " out of range");
    if (pcpu_pool_[static_cast<size_t>(c)] != 0)
      return Status::InvalidArgument("pcpu " + std::to_string(c) + " is not free (in cpupool " +
                                     std::to_string(pcpu_pool_[static_cast<size_t>(c)]) + ")");
  }
  if (left - static_cast<int>(pcpus.size()) < 1) return Status::InvalidArgument("cpupool 0 must keep a pCPU");
  for (int c : pcpus) pcpu_pool_[static_cast<size_t>(c)] = pool;
  UpdatePlacement();
  return Status::Ok();
}

Status SimHost::MoveToCpupool(DomId d, int pool) {
  Guest* g = Find(d);
  if (!g) return Status::NotFound("domain " + std::to_string(d) + " does not exist");
  if (std::find(pcpu_pool_.begin(), pcpu_pool_.end(), pool) == pcpu_pool_.end())
    return Status::NotFound("cpupool " + std::to_string(pool) + " does not exist");
  g->pool = pool;
  for (auto& a : g->vcpu_affinity) a.clear();
  UpdatePlacement();
  return Status::Ok();
}

std::vector<int> SimHost::AllowedPcpus(DomId d) const {
  const Guest* g = Find(d);
  return g ? g->allowed : std::vector<int>{};
}

Status SimHost::SetBalloonTarget(DomId d, double gib) {
  Guest* g = Find(d);
  if (!g) return Status::NotFound("domain " + std::to_string(d) + " does not exist");
  if (!(gib > 0) || gib > g->maxmem_gib)
    return Status::InvalidArgument("balloon target " + std::to_string(gib) + " GiB not in (0, maxmem]");
  g->balloon_gib = gib;
  return Status::Ok();
}

Status SimHost::SetMaxMem(DomId d, double gib) {
  Guest* g = Find(d);
  if (!g) return Status::NotFound("domain " + std::to_string(d) + " does not exist");
  if (!(gib > 0)) return Status::InvalidArgument("maxmem must be > 0");
  g->maxmem_gib = gib;
  g->balloon_gib = std::min(g->balloon_gib, gib);
  return Status::Ok();
}

Status SimHost::InstallLease(const LeaseGrant& l) {
  Guest* g = Find(l.donor);
  if (!g) return Status::NotFound("lease donor domain " + std::to_string(l.donor) + " does not exist");
  if (leases_.count(l.id)) return Status::AlreadyExists("lease " + std::to_string(l.id) + " exists");
  if (l.cpus < 0 || l.mem_gib < 0) return Status::InvalidArgument("lease amounts must be >= 0");
  if (l.cpus > Entitled(*g) + kEps)
    return Status::InvalidArgument("lease takes " + std::to_string(l.cpus) + " CPUs, donor has " +
                                   std::to_string(Entitled(*g)));
  if (l.mem_gib > g->balloon_gib - 0.25 + kEps)
    return Status::InvalidArgument("lease takes more memory than the donor's balloon allows");
  if (l.expires_ns <= now_ns_) return Status::InvalidArgument("lease expires in the past");
  if (!table_status_.ok()) return table_status_;
  if (l.donor >= LULL_DOMID_LIMIT || l.donor == cfg_.task_domid)
    return Status::InvalidArgument("lease donor domain " + std::to_string(l.donor) +
                                   " cannot be a lender in the lease table");
  if (free_slots_.empty()) return Status::Unavailable("lease table full (" + std::to_string(table_.geom.n_leases) + " entries)");
  Lease lease{l, now_ns_, free_slots_.back()};
  free_slots_.pop_back();
  slots_used_ = std::max(slots_used_, lease.slot + 1);
  g->lent_mem += l.mem_gib;
  g->balloon_gib -= l.mem_gib;
  leases_[l.id] = lease;
  ++stats_.leases_installed;
  return WriteEntry(lease, true);
}

Status SimHost::RenewLease(uint64_t id, uint64_t expires_ns) {
  auto it = leases_.find(id);
  if (it == leases_.end()) return Status::NotFound("lease " + std::to_string(id) + " is not active");
  if (expires_ns <= now_ns_) return Status::InvalidArgument("lease renewal expires in the past");
  it->second.g.expires_ns = expires_ns;
  return WriteEntry(it->second, true);
}

Status SimHost::RevokeLease(uint64_t id) {
  auto it = leases_.find(id);
  if (it == leases_.end()) return Status::NotFound("lease " + std::to_string(id) + " is not active");
  const Lease& l = it->second;
  stats_.handed_cpu_s += l.g.cpus * (now_ns_ - l.installed_ns) / kNs;
  stats_.handed_mem_gib_s += l.g.mem_gib * (now_ns_ - l.installed_ns) / kNs;
  Restore(l);
  ++stats_.leases_revoked;
  uint64_t step_start = static_cast<uint64_t>(step_) * static_cast<uint64_t>(cfg_.step_s * kNs);
  if (now_ns_ > step_start) {  // revoked inside a step, i.e. from an event
    // Demand changes at step boundaries, so it returned at step_start.
    if (host_pressure_ || std::find(pressured_.begin(), pressured_.end(), l.g.donor) != pressured_.end())
      stats_.revoke_latency_ms.push_back((now_ns_ - step_start) / 1e6);
    revoked_in_step_.push_back({l.g.donor, now_ns_});
  }
  leases_.erase(it);
  return Status::Ok();
}

}  // namespace lull::dom0
