// lull::migrate::ResourceControl - giving a guest on the target what the plan says.
//
// A Provisioner (planner.h) says, per step after the switch-over, how much CPU, memory
// and I/O the guest gets; a ResourceControl applies that and measures what the guest
// really uses, so the plan can be corrected (ProvisionStep below). On Xen this is the
// credit scheduler's cap and xc_domain_setmaxmem; for a process guest it is a cgroup:
//   cgroup v2 (a unified hierarchy at /sys/fs/cgroup): cpu.max, memory.max, cpu.stat,
//   memory.current;
//   cgroup v1 (cpu, cpuacct and memory hierarchies): cpu.cfs_quota_us/cfs_period_us,
//   memory.limit_in_bytes, cpuacct.usage, memory.usage_in_bytes.
// I/O is not applied to process guests: their memory is all they have (no block device
// to throttle); the plan still carries it for Xen. CPU use is measured as vCPUs over the
// time since the previous Measure(). The cgroup is removed (its processes moved back to
// the parent) when the CgroupControl is destroyed.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "dom0/migrate/planner.h"
#include "forecast/status.h"

namespace lull::migrate {

class ResourceControl {
 public:
  virtual ~ResourceControl() = default;
  virtual lull::Status Apply(const Resources& r) = 0;
  virtual lull::Status Measure(Resources* used) = 0;
};

class CgroupControl : public ResourceControl {
 public:
  // A new cgroup `name` holding process `pid`. Unavailable (naming the file) when this
  // machine has no writable cpu/memory cgroup controllers.
  static lull::Status Create(const std::string& name, pid_t pid, std::unique_ptr<CgroupControl>* out);
  ~CgroupControl() override;
  lull::Status Apply(const Resources& r) override;
  lull::Status Measure(Resources* used) override;
  bool v2() const { return v2_; }
  // The file holding the CPU limit / memory limit (for tests and operators).
  std::string cpu_limit_file() const;
  std::string memory_limit_file() const;

 private:
  CgroupControl() = default;
  bool v2_ = false;
  std::string cpu_dir_, acct_dir_, mem_dir_;  // all the same directory on v2
  uint64_t last_usage_ns_ = 0;
  double last_ms_ = 0;
};

// One provisioning step: apply the plan's resources for `step`, then measure and correct
// the plan with what the guest used. `applied` and `used` report both.
lull::Status ProvisionStep(int step, Provisioner* plan, ResourceControl* rc, Resources* applied,
                           Resources* used);

}  // namespace lull::migrate
