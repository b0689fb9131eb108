// lull::clone::ProcessInstance - a primary or shadow instance backed by a real process.
//
// It stands in for a Xen domain: Start() boots it from the golden config and returns once
// it is listening with its cache warm ("READY" handshake); Pause()/Resume() are
// SIGSTOP/SIGCONT, the analogue of a paused domain (no CPU, memory kept, warm);
// SetVcpus() is vCPU hotplug within the golden profile's max_vcpus. On a Xen host the
// same operations map to libxl (domain create paused / unpause / vcpu-set) and, where
// the hypervisor has memory sharing, xc_memshr_fork of the primary; see docs/clone.md.
// Not thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "dom0/clone/golden.h"
#include "dom0/clone/process.h"
#include "forecast/status.h"

namespace lull::clone {

struct InstanceStats {
  int vcpus = 0, inflight = 0;
  uint64_t served = 0, cache_hits = 0, volume_reads = 0;
};

class ProcessInstance {
 public:
  ProcessInstance(std::string id, std::string golden_path, std::string backend_path,
                  std::string log_dir)
      : id_(std::move(id)), golden_path_(std::move(golden_path)),
        backend_(std::move(backend_path)), log_dir_(std::move(log_dir)) {}

  Status Start(int vcpus, int timeout_ms = 10000);
  Status Pause();
  Status Resume();
  // GET /health over a fresh connection, within timeout_ms.
  Status Probe(int timeout_ms) const;
  Status SetVcpus(int n);
  Status Stats(InstanceStats* out) const;
  Status Stop() { paused_ = false; port_ = 0; return proc_.Stop(2000); }

  const std::string& id() const { return id_; }
  int port() const { return port_; }
  int vcpus() const { return vcpus_; }
  bool paused() const { return paused_; }
  pid_t pid() const { return proc_.pid(); }

 private:
  std::string id_, golden_path_, backend_, log_dir_;
  ChildProcess proc_;
  int port_ = 0, vcpus_ = 0;
  bool paused_ = false;
};

}  // namespace lull::clone
