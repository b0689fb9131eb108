// lull::dom0::HostBackend - the one interface between lulld's engine and a host.
//
// The engine never knows which host it runs on. A backend enumerates guests, reads their
// telemetry and applies actions; the simulated host (dom0/sim_host.h) implements it
// today and a libxenctrl backend will implement it later with no engine change:
//   guests        <- xc_domain_getinfolist (domid, vCPU count, tot_pages, max_pages)
//   VcpuRunstate  <- per-vCPU runstate times (running / runnable / blocked), as Xen keeps
//   memory        <- tot_pages and xenstore memory/target
//   SetSched      -> xc_sched_credit_domain_set (weight, cap in % of one pCPU)
//   SetAffinity   -> xc_vcpu_setaffinity;  SetBalloonTarget -> xenstore memory/target;
//   SetMaxMem     -> xc_domain_setmaxmem
//   Lease calls   -> the shared-memory lease table (shm/) read by the Xen scheduler
//                    patch, which restores a donor by itself when a lease expires.
//
// Contract: every call returns a Status (no exceptions). Times are host nanoseconds on
// the backend's own monotonic clock (simulated time for the simulated host). A lease
// installed with InstallLease stays in force until RevokeLease or its expiry, whichever
// comes first; expiry is enforced by the HOST, so a dead or hung lulld leaves every
// guest with its original settings within one lease period. Pressure (a donor's vCPU
// wakes while capped, its memory use reaches the lowered balloon target, or guests wait
// for CPU while leases are active) is reported to the registered PressureHandler at
// once, the way an event channel would wake lulld. Guests may appear and leave while
// lulld runs (GuestsVersion); a guest that leaves takes its leases with it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "forecast/status.h"

namespace lull::dom0 {

using DomId = uint32_t;

// Critical guests are lent from more conservatively (see dom0/learning.h).
enum class PriorityClass { kCritical = 0, kStandard = 1, kBestEffort = 2 };
const char* PriorityClassName(PriorityClass c);
bool ParsePriorityClass(const std::string& s, PriorityClass* out);

struct GuestInfo {
  DomId domid = 0;
  // Which domain holds `domid` (Xen reuses domids): a hash of the domain's UUID on Xen,
  // a counter on the simulated host. A changed instance is a new guest.
  uint64_t instance = 0;
  std::string name;
  int vcpus = 1;
  double mem_max_gib = 1;    // what the guest is entitled to (maxmem)
  uint32_t weight = 256;     // credit weight
  PriorityClass cls = PriorityClass::kStandard;
};

// Cumulative times since the vCPU came up, as Xen's runstate info.
struct VcpuRunstate {
  uint64_t running_ns = 0;
  uint64_t runnable_ns = 0;  // wanted a pCPU but waited (cap or contention)
  uint64_t blocked_ns = 0;
};

struct GuestTelemetry {
  DomId domid = 0;
  uint64_t now_ns = 0;
  std::vector<VcpuRunstate> vcpus;
  double mem_used_gib = 0;          // pages in use by the guest
  double balloon_target_gib = 0;    // current memory/target
};

struct SchedParams {
  uint32_t weight = 256;
  uint32_t cap_pct = 0;  // 0 = uncapped, else % of one pCPU (Xen credit semantics)
};

// What a donor gives up for a management task, until `expires_ns`.
struct LeaseGrant {
  uint64_t id = 0;
  DomId donor = 0;
  double cpus = 0;       // pCPUs taken from the donor's entitlement
  double mem_gib = 0;    // memory ballooned out of the donor
  uint64_t expires_ns = 0;
};

enum class PressureKind { kCpu, kMemory, kHost };
struct PressureEvent {
  PressureKind kind = PressureKind::kCpu;
  DomId domid = 0;           // the donor (kCpu/kMemory) or a waiting guest (kHost)
  uint64_t at_ns = 0;        // when lulld is told
  double shortfall = 0;      // CPUs or GiB the guest is missing right now
};
using PressureHandler = std::function<void(const PressureEvent&)>;

class HostBackend {
 public:
  virtual ~HostBackend() = default;

  virtual uint64_t NowNs() const = 0;
  virtual int PhysicalCpus() const = 0;
  virtual double PhysicalMemGib() const = 0;
  virtual Status ListGuests(std::vector<GuestInfo>* out) const = 0;
  // Bumped whenever the guest list changes (a domain appeared, left, or its domid now
  // names another domain): the engine re-reads ListGuests when it moves, so guests
  // come and go at run time without a restart. A host whose guests never change may
  // keep the default.
  virtual uint64_t GuestsVersion() const { return 0; }
  virtual Status ReadTelemetry(DomId d, GuestTelemetry* out) const = 0;

  virtual Status SetSched(DomId d, const SchedParams& p) = 0;
  virtual Status SetAffinity(DomId d, int vcpu, const std::vector<int>& pcpus) = 0;
  virtual Status SetBalloonTarget(DomId d, double gib) = 0;
  virtual Status SetMaxMem(DomId d, double gib) = 0;

  // Leases: the host lowers the donor's cap and balloon target by the grant and gives
  // the capacity to the management-task domain; it restores the donor by itself at
  // expiry. Renew moves the expiry; Revoke restores at once.
  virtual Status InstallLease(const LeaseGrant& g) = 0;
  virtual Status RenewLease(uint64_t id, uint64_t expires_ns) = 0;
  virtual Status RevokeLease(uint64_t id) = 0;

  virtual void SetPressureHandler(PressureHandler h) = 0;

  // The forecast says donor `d`'s lull ends (its demand returns) from `from_ns` on, with
  // probability `p` (busy = true), or withdraws that (busy = false). A host that can act
  // before the wake (the patched scheduler revokes on the first wake after it, without
  // the grace rule) uses it; others ignore it.
  virtual Status HintBusy(DomId d, uint64_t from_ns, double p, bool busy) {
    (void)d; (void)from_ns; (void)p; (void)busy;
    return Status::Ok();
  }
};

}  // namespace lull::dom0
