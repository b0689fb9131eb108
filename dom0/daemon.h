// lull::dom0::Daemon - lulld's running state: a host, the engine, the task queue, and
// the answers to the control socket, behind one lock.
//
// Run() steps the simulated host and the engine (paced by `speed`, or as fast as
// possible) until asked to stop - or, on a live host (`--host xen`: XenHost), samples
// the host and polls the engine every host.step_s of real time; the socket thread and the metrics thread take the same
// lock for every request, so they see a consistent state between steps. Shutdown()
// returns every lease at once (SIGTERM). BuildWorkload turns the configuration into the
// workload the simulated host replays.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>

#include <nlohmann/json.hpp>

#include "dom0/config.h"
#include "dom0/engine.h"
#include "dom0/harness.h"
#include "dom0/sim_host.h"
#include "dom0/tasks.h"
#include "dom0/workload.h"

namespace lull::dom0 {

// A host that runs on real time (dom0/xen_host.h): Sample() reads its state and raises
// pressure events; the daemon calls it every host.step_s, before the engine's Poll().
class LiveHost : public HostBackend {
 public:
  virtual Status Sample() = 0;
};

Status BuildWorkload(const LulldConfig& cfg, Workload* w);

class Daemon {
 public:
  // With `live`, lulld runs on that host in real time; without, on the simulated host.
  explicit Daemon(const LulldConfig& cfg, std::unique_ptr<LiveHost> live = nullptr);
  Status Init();
  // Steps until `stop` is set, or the workload ends when exit_at_end.
  Status Run(const std::atomic<bool>& stop, bool exit_at_end);
  // One step: simulated, or one sample of the live host (tests drive the daemon with this).
  void StepOnce();
  // An event from a thread of the host's own (the patched Xen's ring poller: Xen revoked
  // a lease, or a lender's demand is back), handled at once under the daemon's lock -
  // the engine ends the lease and requeues its task without waiting for the next step.
  void Deliver(const PressureEvent& ev);
  uint64_t delivered() const { return delivered_.load(); }
  nlohmann::json Handle(const nlohmann::json& req);
  std::string Metrics();
  // Returns every lease; the number returned goes to *n.
  Status Shutdown(size_t* n = nullptr);

  std::mutex& mu() { return mu_; }
  SimHost* host() { return host_.get(); }   // null on a live host
  HostBackend* backend() { return hb_; }
  Engine* engine() { return engine_.get(); }
  const LulldConfig& config() const { return cfg_; }

 private:
  nlohmann::json GuestJson(const GuestView& g) const;
  Status ResolveDomain(const nlohmann::json& v, DomId* d) const;
  LulldConfig cfg_;
  Workload w_;
  std::unique_ptr<SimHost> host_;
  std::unique_ptr<LiveHost> live_;
  HostBackend* hb_ = nullptr;   // host_ or live_
  std::unique_ptr<TaskQueue> tasks_;
  std::unique_ptr<WorkloadFuture> future_;
  std::unique_ptr<Engine> engine_;
  std::mutex mu_;
  int64_t steps_total_ = 0;
  std::atomic<uint64_t> delivered_{0};
};

}  // namespace lull::dom0
