// Compiled as GNU C++ (Debian's xenctrl.h uses GNU extensions); see dom0/CMakeLists.txt.
#include "dom0/xen_host.h"

// Debian's headers have no extern "C" of their own.
extern "C" {
#include <xenctrl.h>
#include <xenstore.h>
}

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "dom0/log.h"

namespace lull::dom0 {

namespace {

constexpr double kKibPerGib = 1024.0 * 1024.0;

xc_interface* XC(void* p) { return static_cast<xc_interface*>(p); }
xs_handle* XS(void* p) { return static_cast<xs_handle*>(p); }

std::string XenErr(const std::string& what) { return what + ": " + std::strerror(errno); }

std::string Uuid(const xen_domain_handle_t h) {
  char b[40];
  std::snprintf(b, sizeof b, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]);
  return b;
}

bool XsRead(xs_handle* xs, const std::string& path, std::string* out) {
  unsigned int len = 0;
  char* v = static_cast<char*>(xs_read(xs, XBT_NULL, path.c_str(), &len));
  if (!v) return false;
  out->assign(v, len);
  std::free(v);
  return true;
}

bool XsReadU64(xs_handle* xs, const std::string& path, uint64_t* out) {
  std::string s;
  if (!XsRead(xs, path, &s)) return false;
  char* end = nullptr;
  unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (end == s.c_str()) return false;
  *out = v;
  return true;
}

// Reads a domain's info; NotFound when it is gone.
Status DomInfo(xc_interface* xch, DomId d, xc_domaininfo_t* info) {
  int n = xc_domain_getinfolist(xch, d, 1, info);
  if (n < 0) return Status::IoError(XenErr("xc_domain_getinfolist(" + std::to_string(d) + ")"));
  if (n == 0 || info->domain != d) return Status::NotFound("domain " + std::to_string(d) + " does not exist");
  return Status::Ok();
}

// Writes a journal entry's originals back with its own handles (lulld or lull-guard).
class XenApplier : public UndoApplier {
 public:
  XenApplier() : xch_(xc_interface_open(nullptr, nullptr, 0)), xs_(xs_open(0)) {}
  ~XenApplier() override {
    if (xs_) xs_close(xs_);
    if (xch_) xc_interface_close(xch_);
  }
  bool ok() const { return xch_ != nullptr; }

  Status Restore(const UndoEntry& e) override {
    xc_domaininfo_t info;
    Status s = DomInfo(xch_, e.domid, &info);
    if (!s.ok()) return s;
    if (Uuid(info.handle) != e.uuid)
      return Status::NotFound("domain " + std::to_string(e.domid) + " is now " + Uuid(info.handle) + ", not " + e.uuid);
    std::string err;
    if (e.has_sched) {
      xen_domctl_sched_credit sc{};
      sc.weight = static_cast<uint16_t>(e.weight);
      sc.cap = static_cast<uint16_t>(e.cap);
      if (xc_sched_credit_domain_set(xch_, e.domid, &sc) != 0) err += XenErr(" sched-credit") + ";";
    }
    if (e.has_maxmem && xc_domain_setmaxmem(xch_, e.domid, e.maxmem_kib) != 0) err += XenErr(" setmaxmem") + ";";
    if (e.has_target) {
      if (!xs_) {
        err += " no xenstore;";
      } else {
        std::string p = "/local/domain/" + std::to_string(e.domid) + "/memory/target", v = std::to_string(e.target_kib);
        if (!xs_write(xs_, XBT_NULL, p.c_str(), v.data(), static_cast<unsigned>(v.size()))) err += XenErr(" memory/target") + ";";
      }
    }
    for (const auto& [vcpu, mask] : e.affinity) {
      xc_cpumap_t hard = xc_cpumap_alloc(xch_), soft = xc_cpumap_alloc(xch_);
      if (!hard || !soft) { std::free(hard); std::free(soft); err += " cpumap;"; continue; }
      int bytes = std::min(8, (xc_get_max_cpus(xch_) + 7) / 8);
      for (int b = 0; b < bytes; ++b) hard[b] = static_cast<uint8_t>(mask >> (8 * b));
      if (xc_vcpu_setaffinity(xch_, e.domid, vcpu, hard, soft, XEN_VCPUAFFINITY_HARD) != 0)
        err += XenErr(" affinity of vcpu " + std::to_string(vcpu)) + ";";
      std::free(hard);
      std::free(soft);
    }
    if (!err.empty()) return Status::IoError("restoring domain " + std::to_string(e.domid) + ":" + err);
    return Status::Ok();
  }

 private:
  xc_interface* xch_;
  xs_handle* xs_;
};

}  // namespace

struct XenHost::Dom {
  GuestInfo info;
  std::string uuid;
  bool managed = true;                 // a guest the engine sees (not dom0, not the task domain)
  uint32_t orig_weight = 256, orig_cap = 0;
  uint64_t orig_target_kib = 0;
  bool have_orig = false;
  uint64_t tot_kib = 0;
  GuestTelemetry tel;
  struct V {
    uint64_t cpu_ns = 0;
    bool blocked = true;
    uint64_t runnable_ns = 0;
  };
  std::vector<V> v;
  uint64_t sampled_ns = 0, dt_ns = 0;
  bool target_touched = false;
  double rate = 0;                     // CPUs used over the last interval
  double runnable = 0;                 // CPUs held back over the last interval
};

XenHost::XenHost(const XenHostConfig& cfg) : cfg_(cfg), journal_(cfg.journal) {}

XenHost::~XenHost() {
  if (xsh_) xs_close(XS(xsh_));
  if (xch_) xc_interface_close(XC(xch_));
  // The guard replays whatever is still journaled when the pipe closes.
  guard_.Stop();
}

uint64_t XenHost::NowNs() const { return MonotonicNs(); }

Status XenHost::Open() {
  if (cfg_.task_domain.empty()) return Status::InvalidArgument("host.task_domain: the Xen host needs the management-task domain's name");
  std::string dir = cfg_.journal.substr(0, cfg_.journal.find_last_of('/'));
  if (!dir.empty() && dir != cfg_.journal) {
    // mkdir -p, one level at a time.
    for (size_t p = 1; p <= dir.size(); ++p)
      if (p == dir.size() || dir[p] == '/') (void)mkdir(dir.substr(0, p).c_str(), 0700);
  }
  // A journal left by an earlier run: put every guest back before anything else.
  {
    XenApplier a;
    if (!a.ok()) return Status::Unavailable(XenErr("xc_interface_open (is this dom0 with privcmd loaded?)"));
    Status s = ReplayJournal(cfg_.journal, &a, true, 0, &replayed_);
    if (!s.ok()) return Status(s.code() == Status::Code::kCorruption
                                   ? Status::Corruption(s.message() + " (left in place; restore by hand or remove it)")
                                   : s);
    if (replayed_) Log(LogLevel::kWarning, "replayed the undo journal %s of an earlier run: %zu domain(s) restored",
                       cfg_.journal.c_str(), replayed_);
  }
  // The guard before our own handles: nothing of libxc crosses the fork.
  if (cfg_.guard) {
    Status s = guard_.Start(cfg_.journal, []() -> std::unique_ptr<UndoApplier> {
      auto a = std::make_unique<XenApplier>();
      if (!a->ok()) return nullptr;
      return a;
    });
    if (!s.ok()) return s;
  }
  xch_ = xc_interface_open(nullptr, nullptr, 0);
  if (!xch_) return Status::Unavailable(XenErr("xc_interface_open"));
  xsh_ = xs_open(0);
  if (!xsh_) return Status::Unavailable(XenErr("xs_open (is xenstored running?)"));
  if (!xs_watch(XS(xsh_), "@introduceDomain", "lull-intro") || !xs_watch(XS(xsh_), "@releaseDomain", "lull-release"))
    return Status::IoError(XenErr("xs_watch @introduceDomain/@releaseDomain"));
  xc_physinfo_t pi{};
  if (xc_physinfo(XC(xch_), &pi) != 0) return Status::IoError(XenErr("xc_physinfo"));
  pcpus_ = static_cast<int>(pi.nr_cpus);
  mem_gib_ = static_cast<double>(pi.total_pages) * 4.0 / kKibPerGib;
  opened_ns_ = NowNs();
  Status s = RefreshDomains();
  if (!s.ok()) return s;
  DomId task;
  if (!(s = FindTaskDomain(&task)).ok()) return s;
  return Sample();
}

Status XenHost::FindTaskDomain(DomId* out) const {
  for (const auto& [id, d] : doms_)
    if (d->info.name == cfg_.task_domain) { *out = id; return Status::Ok(); }
  return Status::NotFound("host.task_domain = \"" + cfg_.task_domain + "\": no running domain of that name");
}

XenHost::Dom* XenHost::Find(DomId d) {
  auto it = doms_.find(d);
  return it == doms_.end() ? nullptr : it->second.get();
}
const XenHost::Dom* XenHost::Find(DomId d) const {
  auto it = doms_.find(d);
  return it == doms_.end() ? nullptr : it->second.get();
}

bool XenHost::Alive(DomId d, const std::string& uuid) const {
  const Dom* dom = Find(d);
  return dom && dom->uuid == uuid;
}

Status XenHost::RefreshDomains() {
  std::vector<xc_domaininfo_t> infos(1024);
  int n = xc_domain_getinfolist(XC(xch_), 0, static_cast<unsigned>(infos.size()), infos.data());
  if (n < 0) return Status::IoError(XenErr("xc_domain_getinfolist"));
  std::map<DomId, std::unique_ptr<Dom>> next;
  for (int i = 0; i < n; ++i) {
    const auto& in = infos[static_cast<size_t>(i)];
    if (in.flags & XEN_DOMINF_dying) continue;
    DomId id = in.domain;
    std::string uuid = Uuid(in.handle);
    auto old = doms_.find(id);
    std::unique_ptr<Dom> d;
    if (old != doms_.end() && old->second->uuid == uuid) d = std::move(old->second);
    else d = std::make_unique<Dom>();
    d->uuid = uuid;
    d->info.domid = id;
    d->info.instance = std::hash<std::string>{}(uuid);
    std::string name;
    if (!XsRead(XS(xsh_), "/local/domain/" + std::to_string(id) + "/name", &name)) name = id == 0 ? "Domain-0" : "";
    if (name.empty()) continue;  // still being built: its name comes with the next watch event
    d->info.name = name;
    d->info.vcpus = static_cast<int>(in.max_vcpu_id) + 1;
    d->info.mem_max_gib = static_cast<double>(in.max_pages) * 4.0 / kKibPerGib;
    d->managed = id != 0 && name != cfg_.task_domain;
    xen_domctl_sched_credit sc{};
    if (xc_sched_credit_domain_get(XC(xch_), id, &sc) == 0) d->info.weight = sc.weight;
    next[id] = std::move(d);
  }
  // doms_ entries moved into `next` are null here; a reused domid left a non-null one.
  bool changed = false;
  for (auto& [id, d] : doms_) {
    if (next.count(id) && !d) continue;
    changed = true;
    Log(LogLevel::kInfo, "domain %u (%s) left", id, d ? d->info.name.c_str() : "?");
  }
  for (auto& [id, d] : next) {
    auto old = doms_.find(id);
    if (old != doms_.end() && !old->second) continue;
    changed = true;
    Log(LogLevel::kInfo, "domain %u (%s) appeared", id, d->info.name.c_str());
  }
  if (changed) ++version_;
  doms_ = std::move(next);
  // Leases of a domain that left (or whose domid is now another domain) are void; the
  // journal entry goes with the restore attempt.
  std::vector<uint64_t> gone;
  for (auto& [lid, l] : leases_)
    if (!Alive(l.g.donor, l.donor_uuid) || !Alive(l.borrower, l.borrower_uuid)) gone.push_back(lid);
  for (uint64_t lid : gone) (void)EndLease(lid, "a domain left");
  dirty_ = false;
  return Status::Ok();
}

Status XenHost::Sample() {
  // Domain watch events: drain, then refresh the list once.
  while (char** w = xs_check_watch(XS(xsh_))) {
    std::free(w);
    dirty_ = true;
  }
  if (dirty_) {
    Status s = RefreshDomains();
    if (!s.ok()) return s;
  }
  const uint64_t now = NowNs();
  // Host busy share from the pCPUs' idle time.
  std::vector<xc_cpuinfo_t> ci(static_cast<size_t>(std::max(1, pcpus_)));
  int nr = 0;
  HostLoadSample load;
  load.pcpus = pcpus_;
  if (xc_getcpuinfo(XC(xch_), static_cast<int>(ci.size()), ci.data(), &nr) == 0 && nr > 0) {
    if (prev_idle_ns_.size() == static_cast<size_t>(nr) && now > prev_idle_at_) {
      uint64_t idle = 0;
      for (int i = 0; i < nr; ++i) idle += ci[static_cast<size_t>(i)].idletime - prev_idle_ns_[static_cast<size_t>(i)];
      host_busy_ = std::clamp(1.0 - static_cast<double>(idle) / (static_cast<double>(now - prev_idle_at_) * nr), 0.0, 1.0);
      load.pcpus = nr;
      load.interval_ns = now - prev_idle_at_;
      load.idle_ns = idle;
    }
    prev_idle_ns_.resize(static_cast<size_t>(nr));
    for (int i = 0; i < nr; ++i) prev_idle_ns_[static_cast<size_t>(i)] = ci[static_cast<size_t>(i)].idletime;
    prev_idle_at_ = now;
  }
  xc_domaininfo_t info;
  for (auto& [id, dp] : doms_) {
    Dom& d = *dp;
    if (!DomInfo(XC(xch_), id, &info).ok()) { dirty_ = true; continue; }
    d.tot_kib = info.tot_pages * 4;
    // A paused domain's vCPUs are neither blocked nor running, yet want nothing: not
    // demand held back by a cap (xl pause, a migration's last pass).
    const bool paused = (info.flags & XEN_DOMINF_paused) != 0;
    d.v.resize(static_cast<size_t>(d.info.vcpus));
    d.tel.vcpus.resize(d.v.size());
    std::vector<xc_vcpuinfo_t> vis(d.v.size());
    std::vector<bool> got(d.v.size());
    for (size_t k = 0; k < d.v.size(); ++k)
      got[k] = xc_vcpu_getinfo(XC(xch_), id, static_cast<uint32_t>(k), &vis[k]) == 0 && vis[k].online;
    // This domain's own time stamp: a slow dom0 reads the domains one after another,
    // and a rate over another domain's interval would be wrong.
    const uint64_t t = NowNs();
    const uint64_t dt = d.sampled_ns && t > d.sampled_ns ? t - d.sampled_ns : 0;
    uint64_t ran = 0, held = 0;
    for (size_t k = 0; k < d.v.size(); ++k) {
      if (!got[k]) continue;
      const xc_vcpuinfo_t& vi = vis[k];
      auto& v = d.v[k];
      uint64_t used = vi.cpu_time >= v.cpu_ns ? vi.cpu_time - v.cpu_ns : 0;
      // Not blocked at both ends: it wanted the pCPU all along; what it did not run, it waited.
      if (dt && !paused && !v.blocked && !vi.blocked && used < dt) { v.runnable_ns += dt - used; held += dt - used; }
      used = std::min(used, dt);
      if (dt) ran += used;
      v.cpu_ns = vi.cpu_time;
      v.blocked = vi.blocked;
      auto& rs = d.tel.vcpus[k];
      rs.running_ns = v.cpu_ns;
      rs.runnable_ns = v.runnable_ns;
      uint64_t up = t - opened_ns_;
      rs.blocked_ns = up > rs.running_ns + rs.runnable_ns ? up - rs.running_ns - rs.runnable_ns : 0;
    }
    if (dt) {
      d.rate = static_cast<double>(ran) / static_cast<double>(dt);
      d.runnable = static_cast<double>(held) / static_cast<double>(dt);
    }
    d.dt_ns = dt;
    d.sampled_ns = t;
    d.tel.domid = id;
    d.tel.now_ns = t;
    uint64_t target = 0, used_kib = 0;
    const std::string base = "/local/domain/" + std::to_string(id) + "/memory/";
    d.tel.balloon_target_gib = XsReadU64(XS(xsh_), base + "target", &target) ? target / kKibPerGib : d.tot_kib / kKibPerGib;
    d.tel.mem_used_gib = XsReadU64(XS(xsh_), base + "meminfo", &used_kib) ? used_kib / kKibPerGib : d.tot_kib / kKibPerGib;
  }

  // Patched Xen revoked some leases in the lender's wake path.
  if (cfg_.ring) {
    std::vector<std::pair<uint64_t, uint64_t>> rv;
    cfg_.ring->TakeRevoked(&rv);
    for (auto& [lid, at] : rv) {
      auto it = leases_.find(lid);
      if (it == leases_.end()) continue;
      pressured_[it->second.g.donor] = at;
      if (handler_) handler_(PressureEvent{PressureKind::kCpu, it->second.g.donor, now, it->second.g.cpus});
      if (leases_.count(lid)) (void)EndLease(lid, "revoked by Xen");
    }
  }
  // Expired leases: lulld did not renew them in time.
  std::vector<uint64_t> expired;
  for (auto& [lid, l] : leases_) if (l.g.expires_ns <= now) expired.push_back(lid);
  for (uint64_t lid : expired) (void)EndLease(lid, "expired");

  // Pressure: a donor's demand is back.
  std::map<DomId, std::pair<double, double>> lent;  // donor -> cpus, GiB
  for (auto& [lid, l] : leases_) { lent[l.g.donor].first += l.g.cpus; lent[l.g.donor].second += l.g.mem_gib; }
  for (auto& [donor, amt] : lent) {
    Dom* d = Find(donor);
    if (!d || !d->have_orig) continue;
    double cap = d->info.vcpus - amt.first;
    if (d->orig_cap) cap = std::min(cap, d->orig_cap / 100.0);
    cap = std::max(cap, 0.01);
    bool cpu = d->rate >= cfg_.pressure_util * cap || d->runnable >= 0.5 * cap;
    bool mem = amt.second > 0 && d->tel.mem_used_gib >= 0.98 * d->tel.balloon_target_gib;
    if (!cpu && !mem) continue;
    // When did it come back? Busy since t0 at its capped rate, it ran (now - t0) x cap
    // in this interval, so t0 = now - ran / cap (at most one interval back).
    if (!pressured_.count(donor)) {
      double back_ns = std::min(static_cast<double>(d->dt_ns), d->rate * static_cast<double>(d->dt_ns) / cap);
      pressured_[donor] = now - static_cast<uint64_t>(back_ns);
    }
    if (handler_) {
      PressureEvent ev{cpu ? PressureKind::kCpu : PressureKind::kMemory, donor, now,
                       cpu ? std::max(0.0, d->rate + d->runnable - cap) : d->tel.mem_used_gib - d->tel.balloon_target_gib};
      handler_(ev);
    }
    // The engine revokes inside the handler; whatever it left (a lease it no longer
    // tracks) the host takes back itself, as the patched scheduler does in its wake path.
    std::vector<uint64_t> left;
    for (auto& [lid, l] : leases_) if (l.g.donor == donor) left.push_back(lid);
    for (uint64_t lid : left) (void)EndLease(lid, "demand back");
  }
  for (auto it = pressured_.begin(); it != pressured_.end();) {
    bool any = false;
    for (auto& [lid, l] : leases_) any |= l.g.donor == it->first;
    it = any ? std::next(it) : pressured_.erase(it);
  }
  return HostWide(load, now);
}

// Host-wide pressure from the pCPUs' idle time and free memory (dom0/host_pressure.h).
Status XenHost::HostWide(HostLoadSample load, uint64_t now) {
  xc_physinfo_t pi{};
  if (xc_physinfo(XC(xch_), &pi) == 0) load.free_mem_gib = static_cast<double>(pi.free_pages) * 4.0 / kKibPerGib;
  else load.free_mem_gib = mem_gib_;  // unknown: never a memory shortage
  for (const auto& [lid, l] : leases_) {
    load.lent_cpus += l.g.cpus;
    load.mem_lent |= l.g.mem_gib > 0;
  }
  for (const auto& [id, d] : doms_) {
    if (!d->managed) continue;
    bool lender = false;
    for (const auto& [lid, l] : leases_) lender |= l.g.donor == id;
    if (!lender) load.waiting_cpus += d->runnable;  // a lender's own wait is its own pressure
  }
  pressure_ = DeriveHostPressure(load, cfg_.host_pressure, pressure_.saturated_run);
  if (cfg_.host_log_s > 0 && now >= next_host_log_ns_) {
    next_host_log_ns_ = now + static_cast<uint64_t>(cfg_.host_log_s * 1e9);
    Log(LogLevel::kInfo, "host: %.2f of %d pCPUs busy, %.2f idle, %.3f GiB free, guests waiting %.2f CPU, lent %.2f CPU",
        pressure_.busy_cpus, load.pcpus, pressure_.idle_cpus, pressure_.free_mem_gib, load.waiting_cpus, load.lent_cpus);
  }
  if (!pressure_.cpu && !pressure_.mem) return Status::Ok();
  Log(LogLevel::kInfo, "host pressure: %s%s (idle %.2f pCPUs for %d samples, %.3f GiB free, guests waiting %.2f CPU)",
      pressure_.cpu ? "cpu" : "", pressure_.mem ? " memory" : "", pressure_.idle_cpus, pressure_.saturated_run,
      pressure_.free_mem_gib, load.waiting_cpus);
  // The engine frees the largest leases for the CPU shortfall (none for memory: it stops
  // granting until the host's next close).
  if (handler_) handler_(PressureEvent{PressureKind::kHost, 0, now, pressure_.cpu ? pressure_.cpu_shortfall : 0});
  pressure_.saturated_run = 0;  // raised: the next needs a sustained run of its own
  return Status::Ok();
}

Status XenHost::HintBusy(DomId d, uint64_t from_ns, double p, bool busy) {
  const Dom* dom = Find(d);
  if (!dom || !dom->managed) return Status::NotFound("domain " + std::to_string(d) + " is not a guest lulld manages");
  if (!cfg_.ring) return Status::Ok();  // stock Xen has no use for it
  return cfg_.ring->Hint(d, from_ns, p, busy);
}

Status XenHost::ListGuests(std::vector<GuestInfo>* out) const {
  out->clear();
  for (const auto& [id, d] : doms_) if (d->managed) out->push_back(d->info);
  return Status::Ok();
}

Status XenHost::ReadTelemetry(DomId id, GuestTelemetry* out) const {
  const Dom* d = Find(id);
  if (!d) return Status::NotFound("domain " + std::to_string(id) + " does not exist");
  *out = d->tel;
  return Status::Ok();
}

// Records what Apply/Set* are about to change, originals first.
Status XenHost::Journal(Dom& d, bool sched, bool target, uint64_t deadline_ns) {
  if (!d.have_orig) {
    xen_domctl_sched_credit sc{};
    if (xc_sched_credit_domain_get(XC(xch_), d.info.domid, &sc) != 0)
      return Status::IoError(XenErr("xc_sched_credit_domain_get(" + std::to_string(d.info.domid) + ")"));
    d.orig_weight = sc.weight;
    d.orig_cap = sc.cap;
    uint64_t t = 0;
    d.orig_target_kib = XsReadU64(XS(xsh_), "/local/domain/" + std::to_string(d.info.domid) + "/memory/target", &t) ? t : d.tot_kib;
    d.have_orig = true;
  }
  UndoEntry e;
  e.domid = d.info.domid;
  e.uuid = d.uuid;
  e.name = d.info.name;
  if (sched) { e.has_sched = true; e.weight = d.orig_weight; e.cap = d.orig_cap; }
  if (target) { e.has_target = true; e.target_kib = d.orig_target_kib; d.target_touched = true; }
  return journal_.Record(e, deadline_ns);
}

uint64_t XenHost::Deadline(DomId d) const {
  uint64_t dl = 0;
  for (const auto& [lid, l] : leases_)
    if (l.g.donor == d || l.borrower == d) dl = std::max(dl, l.g.expires_ns);
  return dl;
}

// A domain's settings from its originals and the leases it is part of now.
Status XenHost::Apply(DomId id) {
  Dom* d = Find(id);
  if (!d) return Status::NotFound("domain " + std::to_string(id) + " does not exist");
  double given = 0, given_mem = 0, got = 0;
  for (const auto& [lid, l] : leases_) {
    if (l.g.donor == id) { given += l.g.cpus; given_mem += l.g.mem_gib; }
    if (l.borrower == id) got += l.g.cpus;
  }
  if (given == 0 && given_mem == 0 && got == 0) {
    // No lease left: the journaled originals, exactly.
    XenApplier a;
    Status s = journal_.Undo(id, &a);
    if (s.ok()) d->have_orig = d->target_touched = false;
    return s;
  }
  xen_domctl_sched_credit sc{};
  sc.weight = static_cast<uint16_t>(std::min<double>(65535, d->orig_weight + std::lround(got * cfg_.borrower_weight_per_cpu)));
  double cap = d->orig_cap;
  if (given > 0) {
    double keep = std::max(1.0, std::round((d->info.vcpus - given) * 100.0));
    cap = d->orig_cap ? std::min<double>(d->orig_cap, keep) : keep;
  }
  if (got > 0 && d->orig_cap) cap = d->orig_cap + std::round(got * 100.0);
  sc.cap = static_cast<uint16_t>(std::min(65534.0, cap));
  if (xc_sched_credit_domain_set(XC(xch_), id, &sc) != 0)
    return Status::IoError(XenErr("xc_sched_credit_domain_set(" + std::to_string(id) + ")"));
  if (d->target_touched) {
    uint64_t tgt = d->orig_target_kib - std::min<uint64_t>(d->orig_target_kib, static_cast<uint64_t>(given_mem * kKibPerGib));
    std::string p = "/local/domain/" + std::to_string(id) + "/memory/target", v = std::to_string(tgt);
    if (!xs_write(XS(xsh_), XBT_NULL, p.c_str(), v.data(), static_cast<unsigned>(v.size())))
      return Status::IoError(XenErr("xenstore write " + p));
  }
  return Status::Ok();
}

Status XenHost::InstallLease(const LeaseGrant& g) {
  const uint64_t now = NowNs();
  if (now - opened_ns_ < static_cast<uint64_t>(cfg_.warmup_s * 1e9))
    return Status::Unavailable("warming up: no lease before host.warmup_s of history");
  if (leases_.count(g.id)) return Status::AlreadyExists("lease " + std::to_string(g.id) + " exists");
  Dom* donor = Find(g.donor);
  if (!donor || !donor->managed) return Status::NotFound("domain " + std::to_string(g.donor) + " is not a guest lulld manages");
  if (!(g.cpus >= 0) || g.cpus > donor->info.vcpus || !(g.mem_gib >= 0))
    return Status::InvalidArgument("lease " + std::to_string(g.id) + ": cpus " + std::to_string(g.cpus) +
                                   " / mem " + std::to_string(g.mem_gib) + " GiB do not fit domain " + std::to_string(g.donor));
  DomId b;
  Status s = FindTaskDomain(&b);
  if (!s.ok()) return s;
  Dom* borrower = Find(b);
  // Originals first (fsync'd), then the change.
  if (!(s = Journal(*donor, true, g.mem_gib > 0, g.expires_ns)).ok()) return s;
  if (!(s = Journal(*borrower, true, false, g.expires_ns)).ok()) return s;
  leases_[g.id] = Lease{g, b, donor->uuid, borrower->uuid};
  if (!(s = Apply(g.donor)).ok() || !(s = Apply(b)).ok()) {
    (void)EndLease(g.id, "could not be applied");
    return s;
  }
  if (cfg_.ring && !(s = cfg_.ring->Grant(g, b)).ok()) Log(LogLevel::kWarning, "lease table: %s", s.ToString().c_str());
  Log(LogLevel::kInfo, "lease %llu: %s (dom %u, using %.2f CPU) lends %.2f CPU, %.2f GiB to %s until +%.1fs",
      static_cast<unsigned long long>(g.id), donor->info.name.c_str(), g.donor, donor->rate, g.cpus, g.mem_gib,
      cfg_.task_domain.c_str(), (g.expires_ns - now) / 1e9);
  return Status::Ok();
}

Status XenHost::RenewLease(uint64_t id, uint64_t expires_ns) {
  auto it = leases_.find(id);
  if (it == leases_.end()) return Status::NotFound("lease " + std::to_string(id) + " is not active");
  it->second.g.expires_ns = expires_ns;
  Status s = journal_.SetDeadline(it->second.g.donor, Deadline(it->second.g.donor));
  if (s.ok()) s = journal_.SetDeadline(it->second.borrower, Deadline(it->second.borrower));
  if (s.ok() && cfg_.ring) (void)cfg_.ring->Renew(id, expires_ns);
  return s;
}

Status XenHost::RevokeLease(uint64_t id) {
  if (!leases_.count(id)) return Status::NotFound("lease " + std::to_string(id) + " is not active");
  return EndLease(id, "revoked");
}

Status XenHost::EndLease(uint64_t id, const char* why) {
  auto it = leases_.find(id);
  if (it == leases_.end()) return Status::Ok();
  Lease l = it->second;
  leases_.erase(it);
  if (cfg_.ring) (void)cfg_.ring->Revoke(id);
  // Only the domain the lease was made with is touched: a domid that changed hands is
  // another domain, whose settings lulld never journaled.
  const bool donor_alive = Alive(l.g.donor, l.donor_uuid), borrower_alive = Alive(l.borrower, l.borrower_uuid);
  Status s1 = donor_alive ? Apply(l.g.donor) : Status::Ok();
  Status s2 = borrower_alive ? Apply(l.borrower) : Status::Ok();
  // A domain that left: its journal entry is dropped by the restore attempt (the
  // applier checks the UUID, so a successor of the same domid is left alone).
  if (!donor_alive) { XenApplier a; (void)journal_.Undo(l.g.donor, &a); }
  if (!borrower_alive) { XenApplier a; (void)journal_.Undo(l.borrower, &a); }
  const uint64_t done = NowNs();
  auto p = pressured_.find(l.g.donor);
  if (p != pressured_.end()) {
    double ms = (done - std::min(done, p->second)) / 1e6;
    revocation_ms_.push_back(ms);
    Log(LogLevel::kInfo, "lease %llu revoked: dom %u's demand returned, its cap restored %.1f ms after the estimated return",
        static_cast<unsigned long long>(id), l.g.donor, ms);
    bool more = false;
    for (const auto& [lid, o] : leases_) more |= o.g.donor == l.g.donor;
    if (!more) pressured_.erase(p);
  } else {
    Log(LogLevel::kInfo, "lease %llu ended (%s): dom %u back to its own settings", static_cast<unsigned long long>(id), why,
        l.g.donor);
  }
  return s1.ok() ? s2 : s1;
}

Status XenHost::SetSched(DomId id, const SchedParams& p) {
  Dom* d = Find(id);
  if (!d) return Status::NotFound("domain " + std::to_string(id) + " does not exist");
  if (p.weight < 1 || p.weight > 65535 || p.cap_pct > 65534)
    return Status::InvalidArgument("sched params for domain " + std::to_string(id) + ": weight 1..65535, cap 0..65534");
  Status s = Journal(*d, true, false, 0);
  if (!s.ok()) return s;
  xen_domctl_sched_credit sc{};
  sc.weight = static_cast<uint16_t>(p.weight);
  sc.cap = static_cast<uint16_t>(p.cap_pct);
  if (xc_sched_credit_domain_set(XC(xch_), id, &sc) != 0)
    return Status::IoError(XenErr("xc_sched_credit_domain_set(" + std::to_string(id) + ")"));
  return Status::Ok();
}

Status XenHost::SetAffinity(DomId id, int vcpu, const std::vector<int>& pcpus) {
  Dom* d = Find(id);
  if (!d) return Status::NotFound("domain " + std::to_string(id) + " does not exist");
  if (vcpu < 0 || vcpu >= d->info.vcpus) return Status::InvalidArgument("domain " + std::to_string(id) + " has no vCPU " + std::to_string(vcpu));
  if (pcpus.empty()) return Status::InvalidArgument("affinity needs at least one pCPU");
  for (int c : pcpus)
    if (c < 0 || c >= std::min(pcpus_, 64)) return Status::InvalidArgument("pCPU " + std::to_string(c) + " does not exist (or is past 64)");
  xc_cpumap_t hard = xc_cpumap_alloc(XC(xch_)), soft = xc_cpumap_alloc(XC(xch_));
  if (!hard || !soft) { std::free(hard); std::free(soft); return Status::Internal("xc_cpumap_alloc"); }
  Status s;
  if (xc_vcpu_getaffinity(XC(xch_), id, vcpu, hard, soft, XEN_VCPUAFFINITY_HARD) != 0) {
    s = Status::IoError(XenErr("xc_vcpu_getaffinity"));
  } else {
    uint64_t orig = 0;
    for (int b = 0; b < std::min(8, (xc_get_max_cpus(XC(xch_)) + 7) / 8); ++b) orig |= static_cast<uint64_t>(hard[b]) << (8 * b);
    UndoEntry e;
    e.domid = id;
    e.uuid = d->uuid;
    e.name = d->info.name;
    e.affinity.push_back({vcpu, orig});
    s = journal_.Record(e, 0);
    if (s.ok()) {
      std::memset(hard, 0, static_cast<size_t>((xc_get_max_cpus(XC(xch_)) + 7) / 8));
      for (int c : pcpus) hard[c / 8] |= static_cast<uint8_t>(1u << (c % 8));
      if (xc_vcpu_setaffinity(XC(xch_), id, vcpu, hard, soft, XEN_VCPUAFFINITY_HARD) != 0)
        s = Status::IoError(XenErr("xc_vcpu_setaffinity"));
    }
  }
  std::free(hard);
  std::free(soft);
  return s;
}

Status XenHost::SetBalloonTarget(DomId id, double gib) {
  Dom* d = Find(id);
  if (!d) return Status::NotFound("domain " + std::to_string(id) + " does not exist");
  if (!(gib > 0) || gib > d->info.mem_max_gib)
    return Status::InvalidArgument("balloon target " + std::to_string(gib) + " GiB for domain " + std::to_string(id) +
                                   ": must be in (0, maxmem]");
  Status s = Journal(*d, false, true, 0);
  if (!s.ok()) return s;
  std::string p = "/local/domain/" + std::to_string(id) + "/memory/target",
              v = std::to_string(static_cast<uint64_t>(gib * kKibPerGib));
  if (!xs_write(XS(xsh_), XBT_NULL, p.c_str(), v.data(), static_cast<unsigned>(v.size())))
    return Status::IoError(XenErr("xenstore write " + p));
  return Status::Ok();
}

Status XenHost::SetMaxMem(DomId id, double gib) {
  Dom* d = Find(id);
  if (!d) return Status::NotFound("domain " + std::to_string(id) + " does not exist");
  if (!(gib > 0) || gib > mem_gib_) return Status::InvalidArgument("maxmem " + std::to_string(gib) + " GiB: must be in (0, host memory]");
  xc_domaininfo_t info;
  Status s = DomInfo(XC(xch_), id, &info);
  if (!s.ok()) return s;
  UndoEntry e;
  e.domid = id;
  e.uuid = d->uuid;
  e.name = d->info.name;
  e.has_maxmem = true;
  e.maxmem_kib = info.max_pages * 4;
  if (!(s = journal_.Record(e, 0)).ok()) return s;
  if (xc_domain_setmaxmem(XC(xch_), id, static_cast<uint64_t>(gib * kKibPerGib)) != 0)
    return Status::IoError(XenErr("xc_domain_setmaxmem(" + std::to_string(id) + ")"));
  d->info.mem_max_gib = gib;
  return Status::Ok();
}

}  // namespace lull::dom0
