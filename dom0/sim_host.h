// lull::dom0::SimHost - a simulated Xen host that runs everywhere, deterministically.
//
// N physical CPUs and M GiB under a credit-scheduler-like fluid model: each simulated
// step (1 s by default) every guest wants the CPU its workload demands; the capacity
// not reserved by leases is shared by weight (water-filling), each guest limited by its
// cap and by its entitlement (vCPUs minus CPUs lent away). Credit accounting notices a
// capped vCPU that wakes at its next 10 ms tick (Xen credit1 ticks every 10 ms inside a
// 30 ms slice); boost on wake means the vCPU runs as soon as the cap is lifted. So a
// donor's demand that returns mid-lease is reported to lulld at `detect` = the next tick
// (a deterministic hash of guest and time picks the phase), and the guest waits until
// lulld revokes; memory is given back at the balloon's deflate rate.
//
// Placement: a vCPU's hard affinity (SetAffinity) and the guest's cpupool (pCPUs are
// split into disjoint pools, as Xen's cpupools; pool 0 holds every pCPU not given to
// another) restrict where a guest may run. A guest runs only on its pool's pCPUs within
// the union of its vCPUs' affinities, on at most as many pCPUs at once as it has vCPUs,
// and competes by weight only with the guests that share those pCPUs. While every guest
// may run everywhere the host is one fluid pool; otherwise each pCPU water-fills the
// requests of the guests allowed on it, a guest's unserved remainder moving to its other
// pCPUs with room, until nothing moves. Capacity lent to management tasks is taken
// evenly from every pCPU.
//
// Leases take the same data path as on Xen: InstallLease / RenewLease / RevokeLease are
// the dom0 side and write the shared-memory lease table of shm/lull_shm.h (a memfd
// region, each entry under its sequence lock); the scheduler model reads the whole
// table every slice (Step) with lull_lease_read and lull_lease_effective, as the Xen
// scheduler patch does, and a donor's CPUs are reduced only by entries it reads as
// valid and ACTIVE. A torn entry (a writer that never finished) or a corrupt one is
// ignored and counted: the donor keeps its resources. Memory leases are ballooning,
// which Xen does through xenstore, not the table, so they stay dom0-side state here.
//
// Time is simulated: results depend on the seed and the workload only, never on the
// machine's speed. Lease expiry is enforced here, by the host, as the Xen scheduler
// patch will do: a donor whose lease was neither renewed nor revoked gets its settings
// back at expiry even if lulld is dead.
//
// Not thread-safe; the daemon serialises access.
#pragma once

#include <cstdint>
#include <map>
#include <unordered_map>
#include <vector>

#include "dom0/host.h"
#include "dom0/workload.h"
#include "shm/lull_shm.h"
#include "shm/segment.h"

namespace lull::dom0 {

struct SimHostConfig {
  int pcpus = 16;
  double mem_gib = 256;
  double step_s = 1.0;
  double tick_ms = 10;            // credit accounting tick: how soon a wake is noticed
  double deflate_gib_per_s = 2.0; // balloon give-back rate on memory revocation
  DomId task_domid = 0;           // the borrower in the lease table: where tasks run
};

// What the host measured, for the comparison table and the metrics.
struct SimStats {
  double demand_cpu_s = 0, served_cpu_s = 0, unmet_cpu_s = 0;
  double demand_mem_gib_s = 0, unmet_mem_gib_s = 0;
  double handed_cpu_s = 0, handed_mem_gib_s = 0;
  uint64_t leases_installed = 0, leases_revoked = 0, leases_expired = 0;
  uint64_t leases_dropped = 0;          // ended because their donor left (SetPresent)
  uint64_t lease_entries_rejected = 0;  // torn or invalid lease-table reads, ignored
  std::vector<double> waits_ms;         // each throttled guest-step: how long it waited
  std::vector<double> revoke_latency_ms;// demand returned -> donor restored
};

class SimHost : public HostBackend {
 public:
  SimHost(const SimHostConfig& cfg, const Workload* w);

  // Advances one step: expires leases, serves demand, raises pressure events (the
  // handler runs inside Step, at the event's simulated time) and accounts the result.
  void Step();
  int64_t StepIndex() const { return step_; }
  const SimStats& stats() const { return stats_; }
  const SimHostConfig& config() const { return cfg_; }

  // Test and harness views of the host's state.
  double Entitlement(DomId d) const;          // vCPUs minus lent CPUs
  double BalloonTarget(DomId d) const;
  SchedParams Sched(DomId d) const;
  size_t ActiveLeases() const { return leases_.size(); }
  double LastDemand(DomId d) const;           // what the guest wanted in the last step
  double LastServed(DomId d) const;

  // HostBackend
  uint64_t NowNs() const override { return now_ns_; }
  int PhysicalCpus() const override { return cfg_.pcpus; }
  double PhysicalMemGib() const override { return cfg_.mem_gib; }
  Status ListGuests(std::vector<GuestInfo>* out) const override;
  Status ReadTelemetry(DomId d, GuestTelemetry* out) const override;
  Status SetSched(DomId d, const SchedParams& p) override;
  Status SetAffinity(DomId d, int vcpu, const std::vector<int>& pcpus) override;
  Status SetBalloonTarget(DomId d, double gib) override;
  Status SetMaxMem(DomId d, double gib) override;
  Status InstallLease(const LeaseGrant& g) override;
  Status RenewLease(uint64_t id, uint64_t expires_ns) override;
  Status RevokeLease(uint64_t id) override;

  // Cpupools (simulated host only): `pool` > 0 takes `pcpus`, which must all be in pool 0
  // (free), as xl cpupool-create does; a pool keeps them until the host is destroyed.
  Status CreateCpupool(int pool, const std::vector<int>& pcpus);
  // Moves a guest to a pool (0 = the default); like xl cpupool-migrate, its vCPUs'
  // affinity is reset to the whole pool.
  Status MoveToCpupool(DomId d, int pool);
  // Where the guest may run now: its pool's pCPUs within its vCPUs' affinities.
  std::vector<int> AllowedPcpus(DomId d) const;

  // The lease table entry holding lease `id` (nullptr when none): what the scheduler
  // model reads each slice. Tests write to it to play a broken or hostile writer.
  lull_lease* LeaseEntry(uint64_t id) const;
  // Guests that come and go (xl create / xl destroy): a workload guest leaves (its
  // leases end with it, its demand stops) or appears again under the same domid as a
  // NEW domain (fresh instance, runstate, default settings), as Xen reuses domids.
  // Each change bumps GuestsVersion(). NotFound for a domid not in the workload.
  Status SetPresent(DomId d, bool present);
  uint64_t GuestsVersion() const override { return version_; }

  void SetPressureHandler(PressureHandler h) override { handler_ = std::move(h); }

 private:
  struct Guest {
    GuestInfo info;
    SchedParams sched;
    double maxmem_gib = 0, balloon_gib = 0;
    double lent_cpu = 0, lent_mem = 0;
    std::vector<VcpuRunstate> rs;
    double last_want = 0, last_served = 0, mem_used = 0;
    std::vector<std::vector<int>> vcpu_affinity;  // per vCPU; empty = every pCPU
    int pool = 0;
    std::vector<int> allowed;   // pool ∩ union of vCPU affinities, sorted
    bool present = true;        // false: destroyed (SetPresent), invisible to lulld
  };
  struct Lease {
    LeaseGrant g;
    uint64_t installed_ns = 0;
    uint32_t slot = 0;  // lease table entry
  };
  Guest* Find(DomId d);
  const Guest* Find(DomId d) const;
  void Restore(const Lease& l);
  void Allocate(std::vector<double>* alloc, const std::vector<double>& want) const;
  void AllocatePlaced(std::vector<double>* alloc, const std::vector<double>& lim, double avail) const;
  void UpdatePlacement();
  void ReadLeaseTable();     // the scheduler's view: each guest's lent CPUs
  Status WriteEntry(const Lease& l, bool active);
  Status OpenLeaseTable(size_t guests);
  double Entitled(const Guest& g) const;
  double Usable(const Guest& g) const;  // entitled and on as many pCPUs as it may use
  uint64_t TickPhaseNs(size_t gi) const;

  SimHostConfig cfg_;
  const Workload* w_;
  std::vector<Guest> guests_;
  std::unordered_map<DomId, size_t> index_;   // domid -> guests_ slot
  std::map<uint64_t, Lease> leases_;
  PressureHandler handler_;
  SimStats stats_;
  uint64_t now_ns_ = 0;
  int64_t step_ = 0;
  uint64_t version_ = 0, instances_ = 0;
  std::vector<std::pair<DomId, uint64_t>> revoked_in_step_;  // donor, when
  std::vector<DomId> pressured_;  // donors with a pressure event this step
  bool host_pressure_ = false;
  lull::shm::Segment table_mem_;  // the lull region (memfd) holding the lease table
  lull_shm_view table_{};
  Status table_status_;
  std::vector<uint32_t> free_slots_;  // lowest last, so the table stays dense
  uint32_t slots_used_ = 0;           // entries [0, slots_used_) were ever written
  std::vector<int> pcpu_pool_;  // pCPU -> cpupool
  bool placed_ = false;         // some guest may not run everywhere
};

}  // namespace lull::dom0
