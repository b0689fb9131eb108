// lull::clone Xen back end - shadow instances that are real Xen domains, through libxl.
//
// The golden image is an xl config file (parsed with libxlutil, the parser xl uses):
//
//   name = "web"                  # shadows are named "<name>-shadow-<k>"
//   type = "pv"                   # only PV here (see below)
//   kernel = "/guest/vmlinux"     # required
//   ramdisk = "/guest/initrd.gz"  # optional
//   cmdline = "console=hvc0"      # optional ("extra" is accepted as its old name)
//   memory = 128                  # MiB, required, 16..1048576
//   maxmem = 256                  # MiB, >= memory (default: memory)
//   vcpus = 1                     # vCPUs online at start (default 1)
//   maxvcpus = 4                  # the hardware profile's ceiling (default: vcpus)
//
// Keys this back end cannot honour (disk, vif, pci, device_model..., type "hvm"/"pvh")
// are an InvalidArgument naming the file and key, never silently dropped; other keys
// are ignored as xl would ignore keys it does not use.
//
// XenHost wraps one libxl context and a xenstore handle (the memory-sharing probe is in C:
// xen_memshr.h). A shadow is created **paused** (libxl_domain_create_new leaves a new
// domain paused; xl unpauses it unless -p). Warm() lets it boot until its kernel has brought up
// xenbus (the guest writes control/feature-poweroff into xenstore) and pauses it again:
// a warm shadow keeps its booted memory, like a paused process keeps its warm cache.
// Activate = unpause, timed until Xen reports the domain no longer paused (the measured
// activation time the scheduler's lead uses); Deactivate = pause; Resize =
// libxl_set_vcpuonline (within maxvcpus) and libxl_set_memory_target (within maxmem,
// read from xenstore's memory/static-max; Xen's max follows the target);
// Destroy = libxl_domain_destroy.
//
// Memory sharing (VM forks, xc_memshr_fork) is probed at run time: the hypervisor
// answers XENMEM_sharing_op with ENOSYS when it was built without CONFIG_MEM_SHARING
// (Debian's build), anything else (ESRCH for the nonexistent domain we name) means it is
// there. Forks also need HAP (HVM/PVH guests); with a PV golden image, or without
// sharing, the pool is the paused pool. See docs/clone.md.
//
// Not thread-safe: one control thread. Every error names the domain and the libxl call.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "forecast/status.h"

namespace lull::clone {

struct XenGolden {
  std::string origin;  // file it came from, for messages
  std::string name, kernel, ramdisk, cmdline;
  int memory_mib = 0, maxmem_mib = 0;
  int vcpus = 1, max_vcpus = 1;
};

Status ParseXenGolden(const std::string& text, const std::string& origin, XenGolden* out);
Status LoadXenGolden(const std::string& path, XenGolden* out);

struct XenDomainInfo {
  std::string name;
  uint32_t domid = 0;
  std::string state;  // "paused", "running", "blocked", "shutdown", "dying"
  int vcpus_online = 0, max_vcpus = 0;
  uint64_t memory_kib = 0, max_memory_kib = 0;
  bool paused() const { return state == "paused"; }
};

struct MemshrProbe {
  bool available = false;
  int err = 0;         // errno of the probe call
  std::string detail;  // one line for logs and reports
};

class XenHost {
 public:
  // Unavailable (naming what is missing) when this is not a Xen dom0.
  static Status Open(std::unique_ptr<XenHost>* out);
  ~XenHost();
  XenHost(const XenHost&) = delete;
  XenHost& operator=(const XenHost&) = delete;

  // A new paused domain `name` from the golden image with `vcpus` online (<= maxvcpus)
  // and `memory_mib` (<= maxmem); 0 takes the golden value.
  Status CreatePaused(const XenGolden& g, const std::string& name, int vcpus, int memory_mib,
                      uint32_t* domid);
  // Unpause until the guest's kernel is up (see above) or timeout_ms, then pause.
  Status Warm(uint32_t domid, int timeout_ms, double* boot_ms);
  // Unpause; *ms = wall time until Xen reports the domain running (not paused).
  Status Unpause(uint32_t domid, double* ms);
  Status Pause(uint32_t domid);
  Status SetVcpus(uint32_t domid, int n);
  Status SetMemory(uint32_t domid, int mib);
  Status Destroy(uint32_t domid);
  Status Info(uint32_t domid, XenDomainInfo* out);
  // Every domain whose name starts with `prefix`, by domid.
  Status List(const std::string& prefix, std::vector<XenDomainInfo>* out);
  MemshrProbe ProbeMemshr();

 private:
  struct Impl;
  explicit XenHost(Impl* impl) : impl_(impl) {}
  Impl* impl_;
};

// The shadow pool of one primary on Xen: the counterpart of ShadowPool (pool.h) with
// domains instead of processes, without the load balancer (guests' traffic is steered
// outside dom0 here). State lives in Xen: shadows are found by name, so separate
// `lull-clone --xen` invocations operate on the same pool.
struct XenPoolConfig {
  std::string domain;        // the primary: shadows are "<domain>-shadow-<k>"
  std::string golden_path;   // its golden xl config (name = domain); needed to grow
  int shadow_vcpus = 0;      // 0: the golden vcpus
  int shadow_memory_mib = 0; // 0: the golden memory
  bool warm = true;          // boot each new shadow once before pausing it
  int warm_timeout_ms = 60000;
};

class XenShadowPool {
 public:
  // Opens the host and loads the golden image (if given); finds existing shadows.
  Status Open(const XenPoolConfig& cfg);
  // Creates or destroys (idle ones first) shadows until there are n.
  Status SetSize(int n);
  // Unpauses one idle shadow; *ms = its activation time, *name = which one.
  Status Activate(double* ms, std::string* name);
  // Pauses the active shadow with the highest index (the newest, as ShadowPool does).
  Status Deactivate(std::string* name);
  Status Resize(const std::string& name, int vcpus, int memory_mib);
  Status List(std::vector<XenDomainInfo>* out);
  const XenGolden& golden() const { return golden_; }
  XenHost& host() { return *host_; }
  std::string prefix() const { return cfg_.domain + "-shadow-"; }

 private:
  Status Find(const std::string& name, XenDomainInfo* out);
  XenPoolConfig cfg_;
  XenGolden golden_;
  std::unique_ptr<XenHost> host_;
};

}  // namespace lull::clone
