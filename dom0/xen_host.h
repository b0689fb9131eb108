// lull::dom0::XenHost - lulld's HostBackend on a real Xen host (libxenctrl, libxenstore).
//
// Telemetry (Sample(), every host.step_s; the engine's reads see the last sample):
//   guests       xc_domain_getinfolist (all domains but Domain-0 and the task domain),
//                names from xenstore /local/domain/<id>/name; the list is refreshed when
//                the xenstore watches on @introduceDomain / @releaseDomain fire.
//   vCPUs        xc_vcpu_getinfo: cpu_time is running_ns. Stock Xen does not tell dom0
//                how long a vCPU waited (runstate is the guest's own), so a vCPU seen
//                not blocked at both ends of a sample interval is counted runnable for
//                the part of the interval it did not run: that is the demand a cap holds
//                back, which the engine must see when a donor's load returns.
//   memory       tot_pages; xenstore memory/target (KiB) as the balloon target; a guest
//                agent's memory/meminfo (used KiB, a plain number) when present.
//   pCPUs        xc_physinfo (count, memory, free memory each sample), xc_getcpuinfo
//                (idle time): host-wide pressure (dom0/host_pressure.h) is raised as a
//                PressureKind::kHost event when the pCPUs have no idle time left and
//                guests other than the lenders wait, with leases active; the values are
//                logged every host_log_s ("host: ...").
//   guests come and go: GuestsVersion() moves when the list changes (a domain appeared,
//                left, or its domid now names another UUID); the engine re-reads it. A
//                lease whose lender or borrower left (or was replaced) ends at once:
//                the survivor gets its journaled settings back, the dead domain's journal
//                entry is dropped, nothing is written to a domid that changed hands.
// Actuation: xc_sched_credit_domain_get/set (weight, cap), xc_vcpu_setaffinity (hard),
// xenstore memory/target, xc_domain_setmaxmem. Every change is preceded by recording
// the domain's original value in the undo journal (dom0/xen_guard.h), which lull-guard
// replays when lulld dies; at Open() a journal left by an earlier run is replayed first.
//
// Leases on the stock hypervisor: the donor's credit cap drops to what it keeps
// ((vCPUs - lent) x 100 %, or less if it was capped lower) and its balloon target by the
// lent memory; the borrower - the management-task domain named in the config - gets
// +lent x 100 % cap (if it is capped) and +lent x borrower_weight_per_cpu weight. The
// journal deadline of both is the leases' latest expiry; Sample() undoes expired leases
// itself, lull-guard does it if lulld hangs. When the last lease of a domain ends, its
// journaled originals are written back exactly.
// Pressure: each sample, a donor whose CPU rate reached pressure_util of its lowered cap,
// or whose vCPU was runnable through the interval, has its demand back: the handler runs
// inside Sample() (it revokes). So the revocation latency on stock Xen is the sample
// interval plus the hypercalls; each revocation's latency - from the estimated moment
// the demand returned (the interval's end minus the CPU it ran at its cap rate) to the
// restored cap - is logged ("lease N revoked ...") and kept in revocation_ms().
//
// Patched hypervisor (xen-patches/0003): a XenLeaseTable (dom0/xen_ring.*) given in the
// config gets every grant/renew/revoke as well, and Xen revokes in the lender's wake
// path; XenHost collects those revocations each sample (TakeRevoked) and restores the
// caps it set. Caps stay in place as the stock fallback.
//
// Warm-up: no lease is installed before the host has been watched for warmup_s (the
// profilers need a few lull cycles of history); InstallLease says so.
//
// Not thread-safe; lulld's daemon lock serialises calls.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "dom0/daemon.h"
#include "dom0/host_pressure.h"
#include "dom0/xen_guard.h"

namespace lull::dom0 {

// The patched hypervisor's shared lease table, as XenHost uses it (implemented by
// dom0/xen_ring.*). Times are CLOCK_MONOTONIC ns as XenHost's NowNs().
class XenLeaseTable {
 public:
  virtual ~XenLeaseTable() = default;
  virtual Status Grant(const LeaseGrant& g, DomId borrower) = 0;
  virtual Status Renew(uint64_t id, uint64_t expires_ns) = 0;
  virtual Status Revoke(uint64_t id) = 0;
  // Leases Xen revoked by itself since the last call: (lease id, when, monotonic ns).
  virtual void TakeRevoked(std::vector<std::pair<uint64_t, uint64_t>>* out) = 0;
  // The forecast's busy hint for lender `d` (HostBackend::HintBusy).
  virtual Status Hint(DomId d, uint64_t from_ns, double p, bool busy) = 0;
};

struct XenHostConfig {
  std::string task_domain;                    // the borrower: management tasks run there
  std::string journal = "/run/lull/undo.journal";
  bool guard = true;                          // fork lull-guard
  double warmup_s = 0;                        // no lease before this much history
  double pressure_util = 0.75;                // share of the lowered cap that means "demand back"
  uint32_t borrower_weight_per_cpu = 256;
  XenLeaseTable* ring = nullptr;              // patched hypervisor only
  HostPressureConfig host_pressure;           // host-wide pressure (dom0/host_pressure.h)
  double host_log_s = 5;                      // log the host's load this often (0 = never)
};

class XenHost : public LiveHost {
 public:
  explicit XenHost(const XenHostConfig& cfg);
  ~XenHost() override;
  // Forks lull-guard, opens libxenctrl and xenstore, replays a leftover journal,
  // registers the domain watches and takes the first sample.
  Status Open();

  // LiveHost
  Status Sample() override;
  // HostBackend
  uint64_t NowNs() const override;
  int PhysicalCpus() const override { return pcpus_; }
  double PhysicalMemGib() const override { return mem_gib_; }
  Status ListGuests(std::vector<GuestInfo>* out) const override;
  Status ReadTelemetry(DomId d, GuestTelemetry* out) const override;
  Status SetSched(DomId d, const SchedParams& p) override;
  Status SetAffinity(DomId d, int vcpu, const std::vector<int>& pcpus) override;
  Status SetBalloonTarget(DomId d, double gib) override;
  Status SetMaxMem(DomId d, double gib) override;
  Status InstallLease(const LeaseGrant& g) override;
  Status RenewLease(uint64_t id, uint64_t expires_ns) override;
  Status RevokeLease(uint64_t id) override;
  void SetPressureHandler(PressureHandler h) override { handler_ = std::move(h); }
  uint64_t GuestsVersion() const override { return version_; }
  Status HintBusy(DomId d, uint64_t from_ns, double p, bool busy) override;

  // Every lease's revocation latency (ms) and the host's pCPU busy share last sample.
  const std::vector<double>& revocation_ms() const { return revocation_ms_; }
  double host_busy() const { return host_busy_; }
  // The last sample's host-wide view (idle pCPUs, free memory, pressure raised).
  const HostPressure& host_pressure() const { return pressure_; }
  size_t replayed_at_open() const { return replayed_; }
  pid_t guard_pid() const { return guard_.pid(); }

 private:
  struct Dom;
  struct Lease {
    LeaseGrant g;
    DomId borrower = 0;
    std::string donor_uuid, borrower_uuid;  // a reused domid is another domain
  };
  Status RefreshDomains();
  Status HostWide(HostLoadSample load, uint64_t now);
  Status Journal(Dom& d, bool sched, bool target, uint64_t deadline_ns);
  Status Apply(DomId d);   // sets d's cap/weight/target from its originals and its leases
  Status EndLease(uint64_t id, const char* why);
  uint64_t Deadline(DomId d) const;
  Dom* Find(DomId d);
  const Dom* Find(DomId d) const;
  // Domain `d` is still the domain with this UUID (not gone, not a successor on its domid).
  bool Alive(DomId d, const std::string& uuid) const;
  Status FindTaskDomain(DomId* out) const;

  XenHostConfig cfg_;
  void* xch_ = nullptr;   // xc_interface*; void keeps xenctrl.h (GNU C only) out of this header
  void* xsh_ = nullptr;   // xs_handle*
  Guard guard_;
  UndoJournal journal_;
  std::map<DomId, std::unique_ptr<Dom>> doms_;
  std::map<uint64_t, Lease> leases_;
  std::map<DomId, uint64_t> pressured_;   // donor -> estimated time its demand returned
  PressureHandler handler_;
  std::vector<double> revocation_ms_;
  std::vector<uint64_t> prev_idle_ns_;
  uint64_t prev_idle_at_ = 0, opened_ns_ = 0;
  double host_busy_ = 0;
  HostPressure pressure_;
  uint64_t version_ = 1, next_host_log_ns_ = 0;
  int pcpus_ = 1;
  double mem_gib_ = 1;
  size_t replayed_ = 0;
  bool dirty_ = true;
};

}  // namespace lull::dom0
