#include "dom0/xen_ring.h"

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>

#include "dom0/log.h"
#include "dom0/xen_glue.h"

namespace lull::dom0 {
namespace {

// Credit hands out 300 credits per pCPU per 30 ms accounting period
// (CSCHED_CREDITS_PER_MSEC 10): a lease's `credit` is CPUs times that.
constexpr double kCreditsPerCpu = 300.0;
// Telemetry records are drained in batches of this many per ring and call.
constexpr uint32_t kBatch = 256;
// A domain's newest WAKE times kept to find the one before a revocation.
constexpr size_t kWakeHistory = 256;
// Bounds on what one domain's telemetry may make us track: a hostile or broken Xen
// cannot make the maps grow without limit.
constexpr size_t kMaxDoms = 1024;
constexpr size_t kMaxVcpusPerDom = 512;
// A single run, wait or block longer than a day is not a real interval.
constexpr uint64_t kMaxIntervalNs = 86'400'000'000'000ull;

uint64_t MonoNow() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

std::string Errno(int neg) { return std::strerror(neg < 0 ? -neg : neg); }

}  // namespace

XenRing::XenRing(const XenRingOptions& o, void* mem, uint64_t size) : opt_(o), mem_(mem), size_(size) {}

XenRing::~XenRing() {
  StopPoller();
  if (xen_) {
    lull_xen_unmap(xen_, mem_, pages_);
    lull_xen_close(xen_);
  }
}

uint64_t XenRing::Mono() const { return opt_.clock ? opt_.clock() : MonoNow(); }

Status XenRing::Attach(void* mem, uint64_t size, const XenRingOptions& o, std::unique_ptr<XenRing>* out) {
  if (!mem || !out) return Status::InvalidArgument("XenRing::Attach: null region or output");
  std::unique_ptr<XenRing> r(new XenRing(o, mem, size));
  Status s = r->Init();
  if (!s.ok()) return s;
  *out = std::move(r);
  return Status::Ok();
}

Status XenRing::OpenXen(const XenRingOptions& o, std::unique_ptr<XenRing>* out) {
  if (!out) return Status::InvalidArgument("XenRing::OpenXen: null output");
  lull_xen* x = nullptr;
  int rc = lull_xen_open(&x);
  if (rc) return Status::IoError("opening libxenctrl/xencall/xenforeignmemory: " + Errno(rc));
  lull_sysctl_op op{};
  op.cmd = LULL_SYSCTL_SETUP;
  op.tel_capacity = o.tel_capacity;
  op.cmd_capacity = o.cmd_capacity;
  op.n_leases = o.n_leases;
  rc = lull_xen_lull_op(x, &op);
  if (rc) {
    lull_xen_close(x);
    if (rc == -EOPNOTSUPP || rc == -ENOSYS || rc == -EINVAL)
      return Status::Unavailable("XEN_SYSCTL_lull_op setup: " + Errno(rc) +
                                 " (not the lull-patched hypervisor?)");
    return Status::IoError("XEN_SYSCTL_lull_op setup: " + Errno(rc));
  }
  if (!op.mfn || op.size < sizeof(lull_shm_hdr)) {
    lull_xen_close(x);
    return Status::Corruption("XEN_SYSCTL_lull_op setup answered mfn " + std::to_string(op.mfn) +
                              ", size " + std::to_string(op.size));
  }
  const size_t pages = (op.size + 4095) / 4096;
  void* mem = nullptr;
  rc = lull_xen_map(x, op.mfn, pages, &mem);
  if (rc) {
    lull_xen_close(x);
    return Status::IoError("mapping " + std::to_string(pages) + " pages of DOMID_XEN from mfn " +
                           std::to_string(op.mfn) + ": " + Errno(rc));
  }
  std::unique_ptr<XenRing> r(new XenRing(o, mem, op.size));
  r->xen_ = x;
  r->pages_ = pages;
  Status s = r->Init();
  if (!s.ok()) return s;  // the destructor unmaps
  *out = std::move(r);
  return Status::Ok();
}

Status XenRing::Init() {
  if (opt_.grace_window_ns == 0 || opt_.grace_run_ns == 0 || opt_.grace_wakes == 0)
    return Status::InvalidArgument("XenRing: grace window, run and wakes must be positive");
  int rc = lull_shm_attach(mem_, size_, &view_);
  if (rc) return Status::Corruption("lull region fails validation (magic, version, layout): " + Errno(rc));
  tel_.resize(view_.geom.n_tel);
  last_ns_.assign(view_.geom.n_tel, 0);
  for (uint32_t i = 0; i < view_.geom.n_tel; i++) {
    rc = lull_cons_init(&tel_[i], lull_shm_tel_ring(&view_, i), view_.tel_stride,
                        view_.geom.tel_capacity, sizeof(lull_tel_rec));
    if (rc) return Status::Corruption("telemetry ring " + std::to_string(i) + " header: " + Errno(rc));
    // Drops before we attached (nobody was draining) are not ours to report.
    drop_base_ += lull_cons_dropped(&tel_[i]);
  }
  rc = lull_prod_init(&cmd_, lull_shm_cmd_ring(&view_),
                      lull_ring_bytes(view_.geom.cmd_capacity, sizeof(lull_cmd_rec)),
                      view_.geom.cmd_capacity, sizeof(lull_cmd_rec));
  if (rc) return Status::Corruption("command ring header: " + Errno(rc));
  slot_busy_.assign(view_.geom.n_leases, false);
  // Leases a dead lulld left behind: free them (their owner's settings are restored
  // by the undo journal; Xen would have ended them at expiry anyway).
  for (uint32_t i = 0; i < view_.geom.n_leases; i++) {
    lull_lease* l = lull_shm_lease(&view_, i);
    if (LULL_LOAD_RLX(&l->state) != LULL_LEASE_FREE || LULL_LOAD_RLX(&l->id) != 0) {
      lull_lease_val freed{};
      lull_lease_write(l, &freed);
      (void)PushCmd(static_cast<uint16_t>(i));
    }
  }
  lull_prod_publish(&cmd_);
  return Status::Ok();
}

Status XenRing::Teardown() {
  if (!xen_) return Status::InvalidArgument("XenRing::Teardown: the region is not Xen's");
  lull_sysctl_op op{};
  op.cmd = LULL_SYSCTL_TEARDOWN;
  int rc = lull_xen_lull_op(xen_, &op);
  return rc ? Status::IoError("XEN_SYSCTL_lull_op teardown: " + Errno(rc)) : Status::Ok();
}

Status XenRing::PushCmd(uint16_t slot) {
  lull_cmd_rec c{};
  c.type = LULL_CMD_LEASE_CHANGED;
  c.slot = slot;
  if (lull_prod_push(&cmd_, &c, sizeof(c))) {
    // Xen re-reads the whole table every accounting period anyway: a full command
    // ring delays the change by at most 30 ms, it does not lose it.
    st_.cmd_full++;
    return Status::Unavailable("command ring full");
  }
  st_.cmds++;
  return Status::Ok();
}

Status XenRing::WriteSlot(uint32_t slot, const lull_lease_val& v) {
  lull_lease_write(lull_shm_lease(&view_, slot), &v);
  (void)PushCmd(static_cast<uint16_t>(slot));
  lull_prod_publish(&cmd_);
  return Status::Ok();
}

double XenRing::LentBy(DomId d) const {
  double cpus = 0;
  for (const auto& [id, h] : held_)
    if (h.val.lender == d) cpus += h.cpus;
  return cpus;
}

Status XenRing::Grant(const LeaseGrant& g, DomId borrower) {
  if (g.id == 0) return Status::InvalidArgument("lease id 0 (0 marks a free entry)");
  if (g.donor >= LULL_DOMID_LIMIT || borrower >= LULL_DOMID_LIMIT)
    return Status::InvalidArgument("lease " + std::to_string(g.id) + ": domain id out of range (donor " +
                                   std::to_string(g.donor) + ", borrower " + std::to_string(borrower) + ")");
  if (g.donor == borrower)
    return Status::InvalidArgument("lease " + std::to_string(g.id) + ": donor and borrower are both domain " +
                                   std::to_string(borrower));
  const double credit = g.cpus * kCreditsPerCpu;
  if (!(credit >= 1) || credit > LULL_LEASE_MAX_CREDIT)
    return Status::InvalidArgument("lease " + std::to_string(g.id) + ": " + std::to_string(g.cpus) +
                                   " CPUs is not a credit Xen takes (1.." + std::to_string(LULL_LEASE_MAX_CREDIT) + ")");
  std::lock_guard<std::mutex> lk(mu_);
  if (held_.count(g.id)) return Status::AlreadyExists("lease " + std::to_string(g.id) + " is already in the table");
  if (!st_.clock_known)
    return Status::Unavailable("no telemetry from Xen yet, so Xen's clock is unknown: poll first");
  const uint64_t now = Mono();
  if (g.expires_ns <= now) return Status::InvalidArgument("lease " + std::to_string(g.id) + " expires in the past");
  auto free_slot = std::find(slot_busy_.begin(), slot_busy_.end(), false);
  if (free_slot == slot_busy_.end())
    return Status::Unavailable("lease table full (" + std::to_string(slot_busy_.size()) + " entries)");
  Held h;
  h.slot = static_cast<uint32_t>(free_slot - slot_busy_.begin());
  h.cpus = g.cpus;
  h.val.id = g.id;
  h.val.state = LULL_LEASE_ACTIVE;
  h.val.lender = static_cast<uint16_t>(g.donor);
  h.val.borrower = static_cast<uint16_t>(borrower);
  h.val.credit = static_cast<uint32_t>(credit);
  h.val.granted_ns = static_cast<uint64_t>(static_cast<int64_t>(now) - st_.clock_offset_ns);
  h.val.expires_ns = static_cast<uint64_t>(static_cast<int64_t>(g.expires_ns) - st_.clock_offset_ns);
  if (!lull_lease_val_valid(&h.val)) return Status::Internal("lease value fails lull_lease_val_valid");
  *free_slot = true;
  held_[g.id] = h;
  // A fresh demand window for the lender: what it did before the grant is not demand.
  if (auto it = doms_.find(g.donor); it != doms_.end()) {
    it->second.win_start = 0;
    it->second.win_fired = false;
  }
  st_.grants++;
  return WriteSlot(h.slot, h.val);
}

Status XenRing::Renew(uint64_t id, uint64_t expires_ns) {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = held_.find(id);
  if (it == held_.end()) return Status::NotFound("lease " + std::to_string(id) + " is not in the table");
  lull_lease* l = lull_shm_lease(&view_, it->second.slot);
  if (LULL_LOAD_ACQ(&l->revoked_id) == id)
    return Status::NotFound("lease " + std::to_string(id) + " was revoked by Xen");
  if (expires_ns <= Mono()) return Status::InvalidArgument("lease " + std::to_string(id) + ": new expiry in the past");
  it->second.val.expires_ns = static_cast<uint64_t>(static_cast<int64_t>(expires_ns) - st_.clock_offset_ns);
  st_.renewals++;
  return WriteSlot(it->second.slot, it->second.val);
}

Status XenRing::Revoke(uint64_t id) {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = held_.find(id);
  if (it == held_.end()) return Status::NotFound("lease " + std::to_string(id) + " is not in the table");
  const uint32_t slot = it->second.slot;
  held_.erase(it);
  slot_busy_[slot] = false;
  st_.dom0_revokes++;
  return WriteSlot(slot, lull_lease_val{});
}

Status XenRing::Hint(DomId d, uint64_t from_ns, double p, bool busy) {
  if (d >= LULL_DOMID_LIMIT) return Status::InvalidArgument("hint for domain " + std::to_string(d) + ": domain id out of range");
  if (!(p >= 0 && p <= 1)) return Status::InvalidArgument("hint for domain " + std::to_string(d) + ": confidence must be in [0, 1]");
  if (p < 0.5)
    return Status::InvalidArgument(std::string(busy ? "busy" : "idle") + " hint for domain " + std::to_string(d) +
                                   " at confidence " + std::to_string(p) + ": Xen ignores hints below 0.5");
  std::lock_guard<std::mutex> lk(mu_);
  if (!st_.clock_known) return Status::Unavailable("no telemetry from Xen yet, so Xen's clock is unknown: poll first");
  lull_cmd_rec c{};
  c.type = busy ? LULL_CMD_HINT_BUSY : LULL_CMD_HINT_IDLE;
  c.domid = static_cast<uint16_t>(d);
  c.value = static_cast<uint32_t>(p * 1000.0 + 0.5);
  const int64_t xen = static_cast<int64_t>(from_ns) - st_.clock_offset_ns;
  c.until_ns = xen > 0 ? static_cast<uint64_t>(xen) : 1;
  if (!lull_cmd_valid(&c, view_.geom.n_leases)) return Status::Internal("hint record fails lull_cmd_valid");
  if (lull_prod_push(&cmd_, &c, sizeof(c))) {
    st_.cmd_full++;
    return Status::Unavailable("command ring full: hint for domain " + std::to_string(d) + " not sent");
  }
  lull_prod_publish(&cmd_);
  st_.cmds++;
  (busy ? st_.busy_hints : st_.idle_hints)++;
  return Status::Ok();
}

void XenRing::TakeRevoked(std::vector<std::pair<uint64_t, uint64_t>>* out) {
  std::lock_guard<std::mutex> lk(mu_);
  out->insert(out->end(), revoked_.begin(), revoked_.end());
  revoked_.clear();
}

void XenRing::SetDemandHandler(std::function<void(const PressureEvent&)> h) {
  std::lock_guard<std::mutex> lk(mu_);
  on_demand_ = std::move(h);
}

bool XenRing::DomTelemetry(DomId d, XenDomTel* out) const {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = doms_.find(d);
  if (it == doms_.end()) return false;
  *out = it->second.tel;
  return true;
}

XenRingStats XenRing::stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  return st_;
}

std::vector<XenRevocation> XenRing::revocations() const {
  std::lock_guard<std::mutex> lk(mu_);
  return history_;
}

// The grace rule on telemetry, as Xen applies it (xen-patches/0003): only for lenders.
void XenRing::Demand(DomId d, uint64_t ran, bool woke, uint64_t at, std::vector<PressureEvent>* demand) {
  const double lent = LentBy(d);
  if (lent <= 0) return;
  Dom& dom = doms_[d];
  if (at - dom.win_start >= opt_.grace_window_ns || at < dom.win_start) {
    dom.win_start = at;
    dom.win_ran = 0;
    dom.win_wakes = 0;
    dom.win_fired = false;
  }
  dom.win_ran += ran;
  dom.win_wakes += woke ? 1 : 0;
  if (!dom.win_fired && (dom.win_ran >= opt_.grace_run_ns || dom.win_wakes >= opt_.grace_wakes)) {
    dom.win_fired = true;  // once per window: the engine revokes on the first
    st_.demand_events++;
    demand->push_back(PressureEvent{PressureKind::kCpu, d, Mono(), lent});
  }
}

void XenRing::XenRevoked(uint64_t id, uint64_t revoked_ns, std::vector<PressureEvent>* demand) {
  auto it = held_.find(id);
  if (it == held_.end()) return;  // not ours, or already taken (record and entry both say it)
  const Held h = it->second;
  held_.erase(it);
  slot_busy_[h.slot] = false;
  // Sanity of Xen's half: a revocation before the grant is nonsense; keep the lease
  // revoked (Xen stopped honouring it) but do not derive a latency from that time.
  const bool sane = revoked_ns >= h.val.granted_ns;
  if (!sane) st_.xen_half_errors++;
  XenRevocation rv;
  rv.id = id;
  rv.lender = h.val.lender;
  rv.revoked_xen_ns = revoked_ns;
  rv.revoked_mono_ns = sane ? static_cast<uint64_t>(static_cast<int64_t>(revoked_ns) + st_.clock_offset_ns) : Mono();
  if (auto d = doms_.find(h.val.lender); sane && d != doms_.end()) {
    // The demand came back at the lender's last WAKE at or before the revocation.
    uint64_t w = 0;
    for (uint64_t t : d->second.wakes)
      if (t <= revoked_ns && t > w) w = t;
    if (w && w >= h.val.granted_ns) rv.wake_to_revoke_us = static_cast<double>(revoked_ns - w) / 1e3;
  }
  history_.push_back(rv);
  revoked_.emplace_back(id, rv.revoked_mono_ns);
  Log(LogLevel::kInfo, "xen ring: lease %llu of dom %u revoked by Xen's scheduler %.3f s after the grant, "
      "%.1f us after the lender's WAKE that brought its demand back",
      static_cast<unsigned long long>(id), static_cast<unsigned>(h.val.lender),
      sane ? static_cast<double>(revoked_ns - h.val.granted_ns) / 1e9 : -1.0, rv.wake_to_revoke_us);
  st_.xen_revokes++;
  // dom0 frees a revoked entry once it has accounted for it (lull_shm.h, LEASES).
  const lull_lease_val freed{};
  lull_lease_write(lull_shm_lease(&view_, h.slot), &freed);
  (void)PushCmd(static_cast<uint16_t>(h.slot));
  demand->push_back(PressureEvent{PressureKind::kCpu, h.val.lender, Mono(), h.cpus});
}

void XenRing::Account(const lull_tel_rec& r, std::vector<PressureEvent>* demand) {
  if (r.type == LULL_TEL_LEASE_REVOKED) {
    // vcpu carries the slot, arg the lease id: believe it only if it names a lease we
    // hold in that slot; the table's Xen half is checked once every ring is drained
    // (the lender's WAKE may sit in another pCPU's ring).
    auto it = held_.find(r.arg);
    if (it != held_.end() && it->second.slot == r.vcpu) pending_revoked_.push_back(r.arg);
    return;
  }
  if (r.domid == 0x7FFFu || r.type == LULL_TEL_ACCT) return;  // idle; accounting ticks
  if (r.arg > kMaxIntervalNs) {
    st_.invalid++;
    return;
  }
  auto it = doms_.find(r.domid);
  if (it == doms_.end()) {
    if (doms_.size() >= kMaxDoms) {
      st_.invalid++;
      return;
    }
    it = doms_.emplace(r.domid, Dom{}).first;
  }
  Dom& d = it->second;
  if (d.vcpu.size() >= kMaxVcpusPerDom && !d.vcpu.count(r.vcpu)) {
    st_.invalid++;
    return;
  }
  uint8_t& vs = d.vcpu[r.vcpu];
  XenDomTel& t = d.tel;
  t.last_event_ns = std::max(t.last_event_ns, r.time_ns);
  switch (r.type) {
    case LULL_TEL_WAKE:
      t.wakes++;
      t.blocked_ns += r.arg;
      t.last_wake_ns = std::max(t.last_wake_ns, r.time_ns);
      d.wakes.push_back(r.time_ns);
      if (d.wakes.size() > kWakeHistory) d.wakes.pop_front();
      vs = 1;
      Demand(r.domid, 0, true, r.time_ns, demand);
      break;
    case LULL_TEL_BLOCK:
      t.blocks++;
      t.ran_ns += r.arg;
      vs = 0;
      Demand(r.domid, r.arg, false, r.time_ns, demand);
      break;
    case LULL_TEL_DESCHED:
      t.descheds++;
      t.ran_ns += r.arg;
      vs = 1;
      Demand(r.domid, r.arg, false, r.time_ns, demand);
      break;
    case LULL_TEL_RUN:
      t.runs++;
      t.waited_ns += r.arg;
      vs = 2;
      break;
    default:
      break;
  }
  t.running = t.runnable = t.blocked = 0;
  for (const auto& [v, s] : d.vcpu) (s == 2 ? t.running : s == 1 ? t.runnable : t.blocked)++;
}

Status XenRing::Poll() {
  std::vector<PressureEvent> demand;
  std::function<void(const PressureEvent&)> handler;
  Status result = Status::Ok();
  {
    std::lock_guard<std::mutex> lk(mu_);
    const uint64_t mono = Mono();
    uint64_t batch_total = 0, newest = 0;
    lull_tel_rec buf[kBatch];
    for (uint32_t i = 0; i < tel_.size(); i++) {
      lull_cons& c = tel_[i];
      // Bounded: at most one ring's capacity per call, however fast Xen writes.
      for (uint64_t taken = 0; taken <= view_.geom.tel_capacity;) {
        int n = lull_cons_pop(&c, buf, kBatch, sizeof(lull_tel_rec));
        if (n < 0) {
          result = Status::Corruption("telemetry ring " + std::to_string(i) +
                                      ": Xen's producer index is not believable");
          break;
        }
        if (n == 0) break;
        taken += static_cast<uint64_t>(n);
        batch_total += static_cast<uint64_t>(n);
        for (int k = 0; k < n; k++) {
          const lull_tel_rec& r = buf[k];
          if (!lull_tel_valid(&r, view_.geom.n_tel)) {
            st_.invalid++;
            continue;
          }
          if (r.time_ns < last_ns_[i]) {
            st_.out_of_order++;  // not used for the clock, still counted as an event
          } else {
            last_ns_[i] = r.time_ns;
            newest = std::max(newest, r.time_ns);
          }
          st_.records++;
          Account(r, &demand);
        }
      }
      lull_cons_release(&c);
    }
    uint64_t dropped = 0;
    st_.errors = st_.skipped = 0;
    for (const lull_cons& c : tel_) {
      st_.errors += c.errors;
      st_.skipped += c.skipped;
      dropped += lull_cons_dropped(&c);
    }
    st_.dropped = dropped >= drop_base_ ? dropped - drop_base_ : dropped;
    // Xen's clock: every record is at or before now, so mono - newest over-estimates
    // the offset by the record's age; the smallest value seen is the best estimate.
    if (newest && newest <= (uint64_t{1} << 62)) {
      const int64_t off = static_cast<int64_t>(mono) - static_cast<int64_t>(newest);
      if (!st_.clock_known || off < st_.clock_offset_ns) st_.clock_offset_ns = off;
      st_.clock_known = true;
    }
    // Revocations, once every ring is drained: those the LEASE_REVOKED records name, and
    // those whose record was lost (ring full) but show in the table. The table decides.
    std::vector<std::pair<uint64_t, uint64_t>> revoked;
    for (const auto& [id, h] : held_) {
      lull_lease* l = lull_shm_lease(&view_, h.slot);
      if (LULL_LOAD_ACQ(&l->revoked_id) == id) revoked.emplace_back(id, LULL_LOAD_RLX(&l->revoked_ns));
    }
    for (uint64_t id : pending_revoked_)
      if (std::none_of(revoked.begin(), revoked.end(), [id](const auto& p) { return p.first == id; }))
        st_.xen_half_errors++;  // the record says revoked, the table does not
    pending_revoked_.clear();
    for (auto& [id, ns] : revoked) XenRevoked(id, ns, &demand);
    lull_prod_publish(&cmd_);
    st_.polls++;
    st_.max_batch = std::max(st_.max_batch, batch_total);
    handler = on_demand_;
  }
  if (handler)
    for (const PressureEvent& ev : demand) handler(ev);
  return result;
}

Status XenRing::StartPoller(uint32_t period_ms) {
  if (period_ms == 0 || period_ms > 10'000) return Status::InvalidArgument("poll period must be 1..10000 ms");
  if (poller_.joinable()) return Status::AlreadyExists("the poller is already running");
  stop_.store(false);
  poller_ = std::thread([this, period_ms] {
    uint64_t next_log = Mono();
    const uint64_t log_every = static_cast<uint64_t>(opt_.stats_log_s * 1e9);
    while (!stop_.load(std::memory_order_acquire)) {
      (void)Poll();  // errors are counted in stats(); the poller keeps going
      if (log_every && Mono() >= next_log) {
        next_log = Mono() + log_every;
        XenRingStats s = stats();
        Log(LogLevel::kInfo, "xen ring: %llu polls, %llu records (max %llu a poll), dropped %llu, invalid %llu, "
            "errors %llu, skipped %llu; leases granted %llu, revoked by Xen %llu, by lulld %llu",
            static_cast<unsigned long long>(s.polls), static_cast<unsigned long long>(s.records),
            static_cast<unsigned long long>(s.max_batch), static_cast<unsigned long long>(s.dropped),
            static_cast<unsigned long long>(s.invalid), static_cast<unsigned long long>(s.errors),
            static_cast<unsigned long long>(s.skipped), static_cast<unsigned long long>(s.grants),
            static_cast<unsigned long long>(s.xen_revokes), static_cast<unsigned long long>(s.dom0_revokes));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(period_ms));
    }
  });
  return Status::Ok();
}

void XenRing::StopPoller() {
  stop_.store(true, std::memory_order_release);
  if (poller_.joinable()) poller_.join();
}

}  // namespace lull::dom0
