// lull::clone::ShadowPool - the primary, its warm shadows and the load balancer.
//
// Start() runs the primary from the golden config and HAProxy in front of it. SetSize(n)
// keeps n shadows built from the golden image with the shadow hardware profile
// (shadow_vcpus may exceed the primary's vcpus): each is started, warmed, given a HAProxy
// slot (address set, state maint) and paused. Activate() takes an idle shadow and makes
// it serve: resume, health probe, weight, `state ready`; the wall time of these steps is
// the measured activation time, which the scheduler uses as its lead. Deactivate()
// returns the most recently activated shadow: `state drain` (no new requests), waits
// until HAProxy shows no session on it, `state maint`, pause. No request fails in either
// shift (HAProxy finishes or retries what is in flight). Resize() changes a shadow's
// vCPUs and its HAProxy weight (weight = 16 * vCPUs, so the hash ring splits keys in
// proportion to capacity). Not thread-safe: one control thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "dom0/clone/golden.h"
#include "dom0/clone/haproxy.h"
#include "dom0/clone/instance.h"
#include "forecast/status.h"

namespace lull::clone {

struct PoolConfig {
  std::string domain = "web";     // the primary this pool serves (lullctl's DOMAIN)
  std::string dir;                // work directory: sockets, configs, logs
  std::string golden_path;        // golden TOML (see golden.h)
  std::string backend_path;       // the lull-clone-backend executable
  int shadow_vcpus = 0;           // shadow hardware profile; 0 = the golden vcpus
  int max_shadows = 8;            // HAProxy slots
  int drain_timeout_ms = 5000;
  HaproxyConfig lb;               // dir and slots are filled in from above
};

struct CloneInfo {
  std::string id, server, state;  // state: "active", "idle" (warm, paused)
  int port = 0, vcpus = 0;
  long pid = 0;
  double activation_ms = 0;       // of its last activation, 0 if never
};

class ShadowPool {
 public:
  ~ShadowPool() { Stop(); }
  Status Start(const PoolConfig& cfg);
  Status Stop();
  Status SetSize(int n);
  // Activates one idle shadow; *ms (optional) gets the activation wall time.
  Status Activate(double* ms = nullptr);
  Status Deactivate();
  Status Resize(int shadow_index, int vcpus);

  int size() const { return static_cast<int>(shadows_.size()); }
  int active() const;
  int idle() const { return size() - active(); }
  std::vector<CloneInfo> List() const;
  const GoldenConfig& golden() const { return golden_; }
  int shadow_vcpus() const { return shadow_vcpus_; }
  // Capacity in requests per second of the primary plus the active shadows.
  double ActiveCapacityRps() const;
  double primary_capacity_rps() const { return golden_.per_vcpu_rps() * golden_.vcpus; }
  ProcessInstance& primary() { return *primary_; }
  ProcessInstance& shadow(int i) { return *shadows_[i].inst; }
  bool shadow_active(int i) const { return shadows_[i].active; }
  Haproxy& lb() { return lb_; }

 private:
  struct Shadow {
    std::unique_ptr<ProcessInstance> inst;
    int slot = 0;
    bool active = false;
    double activation_ms = 0;
  };
  Status AddShadow();
  static int WeightFor(int vcpus) { return vcpus * 16 > 256 ? 256 : vcpus * 16; }

  PoolConfig cfg_;
  GoldenConfig golden_;
  int shadow_vcpus_ = 0;
  Haproxy lb_;
  std::unique_ptr<ProcessInstance> primary_;
  std::vector<Shadow> shadows_;
  std::vector<int> activation_order_;  // indices into shadows_, last = newest
  int next_id_ = 1;
  bool started_ = false;
};

}  // namespace lull::clone
