// lull::dom0::XenRing - lulld's end of the patched hypervisor's lull region.
//
// The patched Xen (xen-patches/0001-0005) shares one region laid out by shm/lull_shm.h:
// per-pCPU telemetry rings (Xen -> dom0), a command ring (dom0 -> Xen) and a lease
// table. XenRing sets the region up with XEN_SYSCTL_lull_op (setup, or resume on the
// region Xen already has), maps it from DOMID_XEN, and then:
//
//   telemetry  Poll() drains every ring. Each record is validated (the ring's own index
//              and sequence checks, lull_tel_valid, per-ring time order); what passes
//              updates per-domain run / block / wake state (DomTelemetry). Nothing Xen
//              writes is trusted: a bad record is counted and ignored, never summed.
//   leases     Grant / Renew / Revoke write the lease table under its per-entry
//              sequence lock and push LEASE_CHANGED on the command ring, so Xen re-reads
//              the slot within a tick. Lease times are dom0 CLOCK_MONOTONIC ns in this
//              API and Xen's NOW() in the table; the offset is learnt from telemetry
//              timestamps (the smallest mono - xen difference seen), so no lease is
//              granted before the first telemetry has arrived.
//   revocations  Xen revokes by itself when the lender's demand returns (the grace
//              rule of xen-patches/0003) and says so twice: the entry's Xen half
//              (revoked_id, revoked_ns) and a LEASE_REVOKED record. Poll() takes either,
//              frees the entry (dom0's part of the protocol), and records the
//              revocation with its latency measured on Xen's clock: from the lender's
//              last WAKE at or before revoked_ns (its demand came back) to revoked_ns.
//   hints      Hint() pushes the forecast's HINT_BUSY (the lender's lull ends from a
//              given time: Xen revokes at its first wake after it, no grace) or
//              HINT_IDLE (withdrawn) on the command ring.
//   pressure   a lender whose demand is back - Xen revoked, or its telemetry crosses
//              the same grace thresholds first - is reported to the demand handler at
//              once, from the thread that polls (the poller, if started).
//
// A daemon that dies leaves its leases in the table; Xen ends each at its expiry. A new
// XenRing frees every lease it finds ACTIVE at attach: they belong to a dead run.
// Thread-safe: one mutex guards the state; handlers run outside it.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "dom0/host.h"
#include "dom0/xen_host.h"
#include "forecast/status.h"
#include "shm/lull_shm.h"

struct lull_xen;  // dom0/xen_glue.h

namespace lull::dom0 {

struct XenRingOptions {
  // Region geometry asked of Xen at setup; 0 = Xen's default. Ignored on resume.
  uint32_t tel_capacity = 0, cmd_capacity = 0, n_leases = 0;
  // dom0's copy of the hypervisor's grace rule (xen-patches/0003): a lender's demand
  // is back when, within window_ns, its vCPUs ran run_ns or woke wakes times.
  uint64_t grace_window_ns = 100'000'000;
  uint64_t grace_run_ns = 25'000'000;
  uint32_t grace_wakes = 32;
  // The poller logs the telemetry counters every stats_log_s seconds (0 = never).
  double stats_log_s = 0;
  // dom0's monotonic clock (tests inject their own).
  std::function<uint64_t()> clock;
};

// One domain as its telemetry describes it (all its vCPUs, Xen's clock).
struct XenDomTel {
  uint64_t wakes = 0, blocks = 0, runs = 0, descheds = 0;
  uint64_t ran_ns = 0;       // BLOCK and DESCHED args: time on a pCPU
  uint64_t waited_ns = 0;    // RUN args: runnable, waiting for a pCPU
  uint64_t blocked_ns = 0;   // WAKE args: time blocked
  uint64_t last_event_ns = 0, last_wake_ns = 0;
  uint32_t running = 0, runnable = 0, blocked = 0;  // vCPUs in each state now
};

struct XenRevocation {
  uint64_t id = 0;
  DomId lender = 0;
  uint64_t revoked_xen_ns = 0;   // Xen's revoked_ns
  uint64_t revoked_mono_ns = 0;  // the same moment on dom0's clock
  double wake_to_revoke_us = -1; // lender's last WAKE -> revocation; -1 if no WAKE seen
};

struct XenRingStats {
  uint64_t polls = 0, records = 0, max_batch = 0;
  uint64_t invalid = 0;       // records that failed lull_tel_valid or sanity bounds
  uint64_t errors = 0;        // ring protocol errors (insane index, stale slot)
  uint64_t skipped = 0;       // records the consumer could not trust
  uint64_t out_of_order = 0;  // a ring's timestamps went backwards
  uint64_t dropped = 0;       // records Xen could not publish since we attached (its count)
  uint64_t xen_half_errors = 0;  // a revoked_ns that made no sense
  uint64_t cmds = 0, cmd_full = 0;  // command records pushed; not pushed (ring full)
  uint64_t grants = 0, renewals = 0, dom0_revokes = 0, xen_revokes = 0, demand_events = 0;
  uint64_t busy_hints = 0, idle_hints = 0;
  int64_t clock_offset_ns = 0;  // dom0 mono - Xen NOW(); valid when clock_known
  bool clock_known = false;
};

class XenRing : public XenLeaseTable {
 public:
  // Patched hypervisor: XEN_SYSCTL_lull_op setup (or resume) and map from DOMID_XEN.
  static Status OpenXen(const XenRingOptions& o, std::unique_ptr<XenRing>* out);
  // A region at `mem` (size bytes) someone formatted with lull_shm_format, e.g. a memfd
  // in tests. Not owned: the caller keeps it mapped while the XenRing lives.
  static Status Attach(void* mem, uint64_t size, const XenRingOptions& o,
                       std::unique_ptr<XenRing>* out);
  ~XenRing() override;  // stops the poller and unmaps; Xen keeps publishing (see Teardown)
  XenRing(const XenRing&) = delete;
  XenRing& operator=(const XenRing&) = delete;

  // Stop Xen's publishing (XEN_SYSCTL_lull_op teardown); Xen drops every lease.
  Status Teardown();

  // Drain every telemetry ring once (bounded by the rings' capacities).
  Status Poll();
  // Poll every period_ms on a thread of our own, until StopPoller or destruction.
  Status StartPoller(uint32_t period_ms);
  void StopPoller();
  // Called (from the polling thread, outside the lock) when a lender's demand is back:
  // domid, dom0 mono ns when seen, and the CPUs it lent.
  void SetDemandHandler(std::function<void(const PressureEvent&)> h);

  // Leases: XenHost's XenLeaseTable (dom0/xen_host.h). g.cpus become credits per 30 ms
  // accounting period (300 per pCPU), g.expires_ns is dom0 monotonic.
  Status Grant(const LeaseGrant& g, DomId borrower) override;
  Status Renew(uint64_t id, uint64_t expires_ns) override;
  Status Revoke(uint64_t id) override;
  // Leases Xen revoked since the last call: (lease id, dom0 monotonic ns of revoked_ns).
  void TakeRevoked(std::vector<std::pair<uint64_t, uint64_t>>* out) override;
  // The busy hint (xen-patches/0005): HINT_BUSY for lender d from from_ns (dom0 mono,
  // sent on Xen's clock) with confidence p in 1/1000, or HINT_IDLE to withdraw it.
  // Xen ignores a hint below 500/1000, so one is not sent (InvalidArgument).
  Status Hint(DomId d, uint64_t from_ns, double p, bool busy) override;

  bool DomTelemetry(DomId d, XenDomTel* out) const;
  XenRingStats stats() const;
  std::vector<XenRevocation> revocations() const;
  uint32_t rings() const { return view_.geom.n_tel; }
  uint32_t lease_slots() const { return view_.geom.n_leases; }

 private:
  struct Held {            // a lease we wrote into the table
    uint32_t slot = 0;
    lull_lease_val val{};
    double cpus = 0;
  };
  struct Dom {
    XenDomTel tel;
    std::map<uint16_t, uint8_t> vcpu;   // 0 blocked, 1 runnable, 2 running
    std::deque<uint64_t> wakes;         // newest WAKE times, for revocation latency
    uint64_t win_start = 0, win_ran = 0;
    uint32_t win_wakes = 0;
    bool win_fired = false;
  };

  XenRing(const XenRingOptions& o, void* mem, uint64_t size);
  Status Init();
  uint64_t Mono() const;
  void Account(const lull_tel_rec& r, std::vector<PressureEvent>* demand);
  void Demand(DomId d, uint64_t ran, bool woke, uint64_t at, std::vector<PressureEvent>* demand);
  void XenRevoked(uint64_t id, uint64_t revoked_ns, std::vector<PressureEvent>* demand);
  Status WriteSlot(uint32_t slot, const lull_lease_val& v);
  Status PushCmd(uint16_t slot);
  double LentBy(DomId d) const;

  XenRingOptions opt_;
  void* mem_ = nullptr;
  uint64_t size_ = 0;
  ::lull_xen* xen_ = nullptr;  // set when the region came from Xen
  size_t pages_ = 0;
  lull_shm_view view_{};

  mutable std::mutex mu_;
  std::vector<lull_cons> tel_;
  std::vector<uint64_t> last_ns_;  // per ring: newest timestamp
  uint64_t drop_base_ = 0;         // Xen's drop count when we attached
  lull_prod cmd_{};
  std::map<uint64_t, Held> held_;  // lease id -> what we wrote
  std::vector<bool> slot_busy_;
  std::map<DomId, Dom> doms_;
  std::vector<std::pair<uint64_t, uint64_t>> revoked_;  // for TakeRevoked
  std::vector<uint64_t> pending_revoked_;  // LEASE_REVOKED ids of this poll
  std::vector<XenRevocation> history_;
  XenRingStats st_;
  std::function<void(const PressureEvent&)> on_demand_;

  std::thread poller_;
  std::atomic<bool> stop_{false};
};

}  // namespace lull::dom0
