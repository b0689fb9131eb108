// lull::dom0::Engine - the anticipation engine: profile, predict, lend, take back.
//
// Poll() is the engine's control step, run once per host step (1 s on the simulated
// host; a real host may poll faster). Every control step the engine samples each
// guest's telemetry (demand = running + runnable time, memory in use), credits running
// tasks for the capacity their leases gave them, forgets leases the host expired, and
// (lull) returns leases before host contention. That is the cheap, bounded part.
//
// Forecasting is not done every step: each guest has its own sample interval
// (control_period_s, 60 s by default) and the guests' intervals are STAGGERED, guest i
// of n closing at phase i/n of the interval. When a guest's interval closes, the
// engine feeds its profiler the interval's peak (one observe per resource), lets the
// learning loop score it, decides how much of its CPU and memory can be lent for the
// coming interval under the policy, and renews or returns its leases; its lendable
// capacity goes to the highest-priority management tasks that fit. The host's own
// interval (phase 0) re-forecasts the host's headroom, returns at once what it no
// longer covers, and offers every donor's remaining capacity. Pressure events from the host (a donor's demand is
// back, guests wait for CPU) revoke leases at once, inside the event.
//
// The bound on a control step's forecasting work: with n guests, interval P and steps
// dt apart, a step closes at most ceil(n * dt / P) + 1 guests (the rest wait for the
// next step), each costing 2 observes (c_obs each) + 2 threshold searches (6 quantile
// probes each) + one forecast. For n = 1000, P = 60 s, dt = 1 s that is 18 guests, i.e.
// 1000 x 2 x c_obs / 60 = 33 x c_obs of observes per step instead of 2000 x c_obs once a
// minute (c_obs ~ 5-9 us today: ~0.3 ms, not 15 ms, per step). Handing out capacity
// costs O(pending tasks x donors closed in the step), and O(pending x all donors) once
// per interval, at the host's close. A step allocates nothing unless a lease is granted
// (the lease table is a map).
//
// Policies, compared in the harness on the same workload:
//   kNone      lends nothing (the cost of doing nothing, and the unmet-demand floor);
//   kReactive  lends what was idle in the last period (mean demand);
//   kLull      lends up to the lowest level the guest will stay below for the whole
//              window with probability >= its learned threshold, and returns its
//              largest leases early when the host's demand nears what they leave;
//   kOracle    knows each guest's future demand (FutureView) and lends exactly the
//              headroom of the coming period.
// Every policy is capped by the host's own headroom (capacity minus the host's
// predicted/observed/future guest demand, by the same rule) so no policy can lend CPUs
// the host does not have.
//
// Thread-safety: none; lulld serialises calls (the control socket runs on the same
// thread or takes the daemon's lock).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "dom0/host.h"
#include "dom0/learning.h"
#include "dom0/profiler.h"
#include "dom0/tasks.h"

namespace lull::dom0 {

enum class Policy { kNone, kReactive, kLull, kOracle };
const char* PolicyName(Policy p);
// The q-quantile of a forecast, interpolated through its p50/p90/p95/p99 and 1.0.
double QuantileAt(const Prediction& p, double q);
bool ParsePolicy(const std::string& s, Policy* out);

// The future, for the oracle only: max demand of a guest (or of all guests) in [t0,t1).
class FutureView {
 public:
  virtual ~FutureView() = default;
  virtual double MaxCpu(DomId d, uint64_t t0_ns, uint64_t t1_ns) const = 0;
  virtual double MaxMem(DomId d, uint64_t t0_ns, uint64_t t1_ns) const = 0;
  virtual double MaxHostCpu(uint64_t t0_ns, uint64_t t1_ns) const = 0;
};

struct EngineConfig {
  Policy policy = Policy::kLull;
  double control_period_s = 60;
  double lease_period_s = 180;     // a dead lulld's leases are gone after this
  // The prediction window, in control periods: leases are re-decided every period, so
  // one period is what a decision must hold for (the lease period only bounds a dead
  // lulld's leases).
  int window_periods = 1;
  double min_lend_cpus = 0.25;
  double mem_guard_gib = 0.25;     // never balloon a donor below use + this
  double cpu_margin = 0.05;        // fraction of vCPUs kept above the predicted level
  double mem_margin = 0.03;
  double host_reserve_cpus = 0.5;  // kept free on the host in every policy
  // Busy hint (lull only): a lender whose lull the forecast ends within the coming lease
  // period with at least this probability is hinted busy to the host from the control
  // period it ends in (HostBackend::HintBusy), so the host can end the lease at the
  // wake; withdrawn when the probability falls back below it.
  double busy_hint_p = 0.5;
  TunerConfig tuner;
  // The host's own threshold (P(host demand stays below the level) to lend up to it),
  // tuned by the same loop from host-pressure events.
  TunerConfig host_tuner{0.05, 0.01, {0.5, 0.5, 0.5}, {0.9, 0.9, 0.9}, 0.999, 2.0, 0.0};
};

struct LeaseInfo {
  uint64_t id = 0;
  DomId donor = 0;
  uint64_t task = 0;
  double cpus = 0, mem_gib = 0;
  uint64_t start_ns = 0, expires_ns = 0;
  bool manual = false;
};

struct GuestView {
  GuestInfo info;
  double cpu_demand = 0;        // CPUs, last sample
  double mem_used_gib = 0;
  Prediction cpu, mem;          // peak utilisation over the window, fraction
  double threshold = 0;
  double lent_cpus = 0, lent_mem_gib = 0;
  uint64_t leased_periods = 0, violations = 0;
  double cpu_mae = 0, p95_exceed_rate = 0;
};

struct EngineStats {
  uint64_t control_periods = 0;
  uint64_t leases_granted = 0, forced_revocations = 0, planned_returns = 0;
  uint64_t host_pressure_events = 0;   // forced revocations for host-wide contention
  uint64_t guests_added = 0, guests_left = 0;  // at run time, after Start
  uint64_t leases_dropped = 0;         // ended because their donor left
  uint64_t busy_hints = 0, idle_hints = 0;  // HintBusy sent / withdrawn
  uint64_t tasks_completed = 0;
  double handed_cpu_s = 0, handed_mem_gib_s = 0;
  double last_control_wall_us = 0;
  double host_load = 0;          // predicted host demand / capacity
  double lendable_cpus = 0;      // last period: guests' lendable CPUs, before the host cap
  double host_headroom = 0;      // last period: the host's lendable CPUs
  double sum_lendable = 0, sum_headroom = 0;  // over all periods (averages for reports)
};

// One control period of one guest, for the plot.
struct PeriodRecord {
  double t_s = 0;
  DomId domid = 0;
  double demand_mean = 0, demand_peak = 0;   // CPUs over the period just ended
  double pred_p50 = 0, pred_p95 = 0;         // CPUs, predicted peak over the next window
  double lent_cpus = 0;                      // lent for the next period
  int revocations = 0;                       // forced, during the period just ended
};

class Engine {
 public:
  Engine(HostBackend* host, TaskQueue* tasks, const EngineConfig& cfg,
         const FutureView* future = nullptr);
  ~Engine();

  // Enumerates guests, builds their profilers and registers for pressure events.
  Status Start();
  // Re-reads the host's guest list (Poll does it whenever GuestsVersion moves): a new
  // domain gets a profiler and the next phase slot; a domain that left - or whose domid
  // now names another domain (instance changed) - is dropped with its leases (the host
  // has undone them; their tasks are pending again) and nothing is ever actuated on it.
  void SyncGuests();
  // The control step, every host step: sample telemetry, credit tasks, close the guests
  // whose interval ends now (bounded, see above), lease lendable capacity to tasks.
  void Poll();
  void OnPressure(const PressureEvent& ev);

  // Operator actions (lullctl lend / revoke).
  Status Lend(DomId donor, uint64_t task, double cpus, double mem_gib, uint64_t* lease_id);
  Status Revoke(uint64_t lease_id);
  // SIGTERM: every donor gets its settings back now.
  Status RestoreAll();

  std::vector<GuestView> Guests() const;
  Status Guest(DomId d, GuestView* out) const;
  std::vector<LeaseInfo> Leases() const;
  const EngineStats& stats() const { return stats_; }
  const EngineConfig& config() const { return cfg_; }
  TaskQueue* tasks() { return tasks_; }
  size_t MemoryBytes() const;

  void SetPeriodHook(std::function<void(const PeriodRecord&)> h) { hook_ = std::move(h); }
  // Guests whose period records go to the hook (all when empty).
  void TraceGuests(std::vector<DomId> d) { traced_ = std::move(d); }

 private:
  struct G;
  struct L {
    LeaseInfo info;
    uint64_t accounted_ns = 0;
  };
  void Lendable(G& g, double host_load, uint64_t now, double* cpu, double* mem);
  double HostHeadroom(uint64_t now);
  double HostLeft(uint64_t now) { return HostHeadroom(now) - lent_total_; }
  void CloseHost(uint64_t now);
  void CloseGuest(G& g, uint64_t now);
  void Dispatch(uint64_t now, bool all);
  void ShedBeforeContention(double host_now);
  void ReturnLargest(double cpus, bool forced);
  void CreditLeases(uint64_t now);
  // Ends lease `id` on the host and in the books (task, donor, totals); false if unknown.
  bool DropLease(uint64_t id);
  void EndLease(uint64_t id, bool forced);
  void Forget(const LeaseInfo& l);
  G* FindG(DomId d);
  G* AddG(const GuestInfo& gi, uint64_t next_close_ns, size_t at);
  void RemoveG(size_t index);
  void RebuildDonors();
  void Hint(G& g, uint64_t now);

  HostBackend* host_;
  TaskQueue* tasks_;
  EngineConfig cfg_;
  const FutureView* future_;
  std::vector<std::unique_ptr<G>> guests_;
  std::unordered_map<DomId, G*> by_domid_;
  std::map<uint64_t, L> leases_;
  std::unique_ptr<ResourceModel> host_model_;
  EngineStats stats_;
  uint64_t next_lease_ = 1;
  uint64_t next_control_ns_ = 0;   // the host's own interval (phase 0)
  uint64_t period_ns_ = 0, last_poll_ns_ = 0;
  size_t cursor_ = 0;              // next guest to close, in phase order
  double lent_total_ = 0;          // CPUs in active leases
  double host_headroom_ = 0, host_load_ = 0;  // from the host's last close
  double oracle_headroom_ = 0;
  bool grants_blocked_ = false;    // after host contention, until the host's next close
  uint64_t oracle_headroom_ns_ = ~0ULL;
  uint64_t guests_version_ = 0;
  std::vector<size_t> donors_;     // guests with lendable CPU left (lazily pruned)
  std::vector<uint64_t> scratch_ids_;
  std::vector<std::pair<double, uint64_t>> scratch_sizes_;
  double host_peak_ = 0, host_sum_ = 0, host_last_mean_ = 0;
  int host_n_ = 0;
  ThresholdTuner host_tuner_;
  bool host_leased_ = false, host_violated_ = false;
  std::function<void(const PeriodRecord&)> hook_;
  std::vector<DomId> traced_;
};

}  // namespace lull::dom0
