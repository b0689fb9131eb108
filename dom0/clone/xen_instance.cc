#include "dom0/clone/xen_instance.h"

#include "dom0/clone/golden.h"
#include "dom0/clone/xen_memshr.h"

extern "C" {
#include <libxl.h>
#include <libxl_utils.h>
#include <libxlutil.h>
#include <xenstore.h>
#include <xentoollog.h>
}

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace lull::clone {

namespace {

double NowMs() {
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string Dom(uint32_t domid) { return "domain " + std::to_string(domid); }

Status LibxlError(const char* call, uint32_t domid, int rc) {
  return Status::IoError(std::string(call) + " on " + Dom(domid) + " failed (libxl error " +
                         std::to_string(rc) + ")");
}

// Index k of "<prefix>k", or -1.
int ShadowIndex(const std::string& name, const std::string& prefix) {
  if (name.rfind(prefix, 0) != 0 || name.size() == prefix.size()) return -1;
  int k = 0;
  for (size_t i = prefix.size(); i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9' || k > 100000) return -1;
    k = k * 10 + (name[i] - '0');
  }
  return k;
}

}  // namespace

// --- the golden xl config ---------------------------------------------------------------

Status ParseXenGolden(const std::string& text, const std::string& origin, XenGolden* out) {
  // libxlutil reports syntax errors on a FILE; keep them for our message.
  char* report = nullptr;
  size_t report_len = 0;
  FILE* rf = open_memstream(&report, &report_len);
  if (!rf) return Status::IoError("open_memstream: " + std::string(std::strerror(errno)));
  XLU_Config* c = xlu_cfg_init(rf, origin.c_str());
  Status st;
  auto bad = [&](const std::string& key, const std::string& why) {
    return Status::InvalidArgument(origin + ": " + key + ": " + why);
  };
  if (!c) {
    st = Status::IoError(origin + ": xlu_cfg_init failed");
  } else if (int e = xlu_cfg_readdata(c, text.data(), static_cast<int>(text.size())); e) {
    std::fflush(rf);
    std::string why = report && report_len ? std::string(report, report_len) : std::strerror(e);
    while (!why.empty() && why.back() == '\n') why.pop_back();
    st = Status::InvalidArgument(origin + ": not an xl config: " + why);
  }
  XenGolden g;
  g.origin = origin;
  auto str = [&](const char* key, std::string* v, bool required) {
    if (!st.ok()) return;
    const char* s = nullptr;
    int e = xlu_cfg_get_string(c, key, &s, 1);
    if (e == ESRCH) {
      if (required) st = bad(key, "missing (required)");
    } else if (e) {
      st = bad(key, "must be a string");
    } else {
      *v = s;
    }
  };
  auto num = [&](const char* key, int* v, long lo, long hi, bool required) {
    if (!st.ok()) return;
    long l = 0;
    int e = xlu_cfg_get_long(c, key, &l, 1);
    if (e == ESRCH) {
      if (required) st = bad(key, "missing (required)");
    } else if (e) {
      st = bad(key, "must be a whole number");
    } else if (l < lo || l > hi) {
      st = bad(key, std::to_string(l) + " is out of range [" + std::to_string(lo) + ", " +
                        std::to_string(hi) + "]");
    } else {
      *v = static_cast<int>(l);
    }
  };
  std::string type = "pv";
  str("type", &type, false);
  if (st.ok() && type != "pv")
    st = bad("type", "'" + type + "' is not supported (PV golden images only; see docs/clone.md)");
  // Devices this back end would have to create and does not: refuse rather than drop.
  for (const char* key : {"disk", "vif", "pci", "vfb", "vkb", "channel", "device_model_version",
                          "builder"}) {
    if (!st.ok()) break;
    const char* s = nullptr;
    XLU_ConfigList* l = nullptr;
    if (xlu_cfg_get_string(c, key, &s, 1) != ESRCH || xlu_cfg_get_list(c, key, &l, nullptr, 1) != ESRCH)
      st = bad(key, "not supported by lull-clone's Xen back end (no devices: shadows share the "
                    "primary's storage outside the guest config)");
  }
  str("name", &g.name, true);
  str("kernel", &g.kernel, true);
  str("ramdisk", &g.ramdisk, false);
  str("cmdline", &g.cmdline, false);
  if (g.cmdline.empty()) str("extra", &g.cmdline, false);
  num("memory", &g.memory_mib, 16, 1 << 20, true);
  g.maxmem_mib = g.memory_mib;
  num("maxmem", &g.maxmem_mib, 16, 1 << 20, false);
  num("vcpus", &g.vcpus, 1, 128, false);
  g.max_vcpus = g.vcpus;
  num("maxvcpus", &g.max_vcpus, 1, 128, false);
  if (st.ok()) {
    if (!ValidInstanceName(g.name)) st = bad("name", "'" + g.name + "' is not [A-Za-z0-9_-]{1,32}");
    else if (g.maxmem_mib < g.memory_mib)
      st = bad("maxmem", std::to_string(g.maxmem_mib) + " is below memory " + std::to_string(g.memory_mib));
    else if (g.max_vcpus < g.vcpus)
      st = bad("maxvcpus", std::to_string(g.max_vcpus) + " is below vcpus " + std::to_string(g.vcpus));
  }
  if (c) xlu_cfg_destroy(c);
  std::fclose(rf);
  std::free(report);
  if (st.ok()) *out = g;
  return st;
}

Status LoadXenGolden(const std::string& path, XenGolden* out) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("golden xl config " + path + " cannot be read: " + std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseXenGolden(ss.str(), path, out);
}

// --- XenHost ------------------------------------------------------------------------------

struct XenHost::Impl {
  xentoollog_logger_stdiostream* log = nullptr;
  libxl_ctx* ctx = nullptr;
  struct xs_handle* xs = nullptr;
};

Status XenHost::Open(std::unique_ptr<XenHost>* out) {
  // libxl would only log "cannot open privcmd"; say what this host lacks instead.
  if (access("/proc/xen/capabilities", R_OK) != 0 && access("/dev/xen/privcmd", R_OK | W_OK) != 0)
    return Status::Unavailable("not a Xen dom0: neither /proc/xen/capabilities nor "
                               "/dev/xen/privcmd is accessible");
  auto* impl = new Impl;
  std::unique_ptr<XenHost> h(new XenHost(impl));
  impl->log = xtl_createlogger_stdiostream(stderr, XTL_ERROR, 0);
  if (int rc = libxl_ctx_alloc(&impl->ctx, LIBXL_VERSION, 0,
                               reinterpret_cast<xentoollog_logger*>(impl->log)); rc)
    return Status::Unavailable("libxl_ctx_alloc failed (libxl error " + std::to_string(rc) +
                               "): is this dom0 with xenstored running?");
  impl->xs = xs_open(0);
  if (!impl->xs) return Status::Unavailable("xs_open (xenstore): " + std::string(std::strerror(errno)));
  *out = std::move(h);
  return Status::Ok();
}

XenHost::~XenHost() {
  if (impl_->xs) xs_close(impl_->xs);
  if (impl_->ctx) libxl_ctx_free(impl_->ctx);
  if (impl_->log) xtl_logger_destroy(reinterpret_cast<xentoollog_logger*>(impl_->log));
  delete impl_;
}

Status XenHost::CreatePaused(const XenGolden& g, const std::string& name, int vcpus,
                             int memory_mib, uint32_t* domid) {
  if (vcpus == 0) vcpus = g.vcpus;
  if (memory_mib == 0) memory_mib = g.memory_mib;
  const int max_vcpus = std::max(g.max_vcpus, vcpus);
  const int maxmem = std::max(g.maxmem_mib, memory_mib);
  if (vcpus < 1 || vcpus > 128 || memory_mib < 16)
    return Status::InvalidArgument("shadow " + name + ": " + std::to_string(vcpus) + " vCPUs and " +
                                   std::to_string(memory_mib) + " MiB is not a domain we create");
  uint32_t existing = 0;
  if (libxl_name_to_domid(impl_->ctx, name.c_str(), &existing) == 0)
    return Status::AlreadyExists("a domain named " + name + " exists (" + Dom(existing) + ")");
  libxl_domain_config dc;
  libxl_domain_config_init(&dc);
  dc.c_info.type = LIBXL_DOMAIN_TYPE_PV;
  dc.c_info.name = strdup(name.c_str());
  libxl_domain_build_info_init_type(&dc.b_info, LIBXL_DOMAIN_TYPE_PV);
  dc.b_info.max_vcpus = max_vcpus;
  Status st;
  if (libxl_bitmap_alloc(impl_->ctx, &dc.b_info.avail_vcpus, max_vcpus)) {
    st = Status::IoError("libxl_bitmap_alloc failed");
  } else {
    libxl_bitmap_set_none(&dc.b_info.avail_vcpus);
    for (int i = 0; i < vcpus; ++i) libxl_bitmap_set(&dc.b_info.avail_vcpus, i);
    dc.b_info.max_memkb = uint64_t(maxmem) * 1024;
    dc.b_info.target_memkb = uint64_t(memory_mib) * 1024;
    dc.b_info.kernel = strdup(g.kernel.c_str());
    if (!g.ramdisk.empty()) dc.b_info.ramdisk = strdup(g.ramdisk.c_str());
    if (!g.cmdline.empty()) dc.b_info.cmdline = strdup(g.cmdline.c_str());
    dc.on_crash = LIBXL_ACTION_ON_SHUTDOWN_DESTROY;
    // No ao_how: synchronous. The new domain stays paused until someone unpauses it.
    const uint32_t kNoDomid = static_cast<uint32_t>(INVALID_DOMID);
    uint32_t id = kNoDomid;
    int rc = libxl_domain_create_new(impl_->ctx, &dc, &id, nullptr, nullptr);
    if (rc) {
      if (id != kNoDomid) libxl_domain_destroy(impl_->ctx, id, nullptr);  // half-created
      st = Status::IoError("libxl_domain_create_new for " + name + " from " + g.origin +
                           " failed (libxl error " + std::to_string(rc) + "; kernel " + g.kernel +
                           ", " + std::to_string(memory_mib) + " MiB)");
    } else {
      *domid = id;
    }
  }
  libxl_domain_config_dispose(&dc);
  return st;
}

Status XenHost::Info(uint32_t domid, XenDomainInfo* out) {
  libxl_dominfo info;
  libxl_dominfo_init(&info);
  int rc = libxl_domain_info(impl_->ctx, &info, domid);
  if (rc == ERROR_DOMAIN_NOTFOUND) {
    libxl_dominfo_dispose(&info);
    return Status::NotFound(Dom(domid) + " does not exist");
  }
  if (rc) {
    libxl_dominfo_dispose(&info);
    return LibxlError("libxl_domain_info", domid, rc);
  }
  XenDomainInfo d;
  d.domid = domid;
  if (char* n = libxl_domid_to_name(impl_->ctx, domid)) {
    d.name = n;
    std::free(n);
  }
  d.state = info.dying ? "dying" : info.shutdown ? "shutdown" : info.paused ? "paused"
          : info.running ? "running" : "blocked";
  d.vcpus_online = static_cast<int>(info.vcpu_online);
  d.max_vcpus = static_cast<int>(info.vcpu_max_id) + 1;
  d.memory_kib = info.current_memkb;
  d.max_memory_kib = info.max_memkb;
  libxl_dominfo_dispose(&info);
  *out = d;
  return Status::Ok();
}

Status XenHost::List(const std::string& prefix, std::vector<XenDomainInfo>* out) {
  out->clear();
  int n = 0;
  libxl_dominfo* all = libxl_list_domain(impl_->ctx, &n);
  if (!all) return Status::IoError("libxl_list_domain failed");
  std::vector<uint32_t> ids;
  for (int i = 0; i < n; ++i) ids.push_back(all[i].domid);
  libxl_dominfo_list_free(all, n);
  for (uint32_t id : ids) {
    XenDomainInfo d;
    if (!Info(id, &d).ok()) continue;  // went away meanwhile
    if (d.name.rfind(prefix, 0) == 0) out->push_back(d);
  }
  return Status::Ok();
}

Status XenHost::Unpause(uint32_t domid, double* ms) {
  double t0 = NowMs();
  if (int rc = libxl_domain_unpause(impl_->ctx, domid, nullptr); rc)
    return LibxlError("libxl_domain_unpause", domid, rc);
  // Xen applies the unpause in the hypercall; confirm it as the toolstack sees it.
  for (;;) {
    XenDomainInfo d;
    Status s = Info(domid, &d);
    if (!s.ok()) return s;
    if (!d.paused()) break;
    if (NowMs() - t0 > 5000) return Status::Unavailable(Dom(domid) + " still paused 5 s after unpause");
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (ms) *ms = NowMs() - t0;
  return Status::Ok();
}

Status XenHost::Pause(uint32_t domid) {
  if (int rc = libxl_domain_pause(impl_->ctx, domid, nullptr); rc)
    return LibxlError("libxl_domain_pause", domid, rc);
  return Status::Ok();
}

Status XenHost::Warm(uint32_t domid, int timeout_ms, double* boot_ms) {
  double t0 = NowMs();
  if (Status s = Unpause(domid, nullptr); !s.ok()) return s;
  // Linux's xenbus shutdown watcher writes control/feature-poweroff once the kernel runs
  // its PV drivers: the guest is booted past the expensive part.
  const std::string path = "/local/domain/" + std::to_string(domid) + "/control/feature-poweroff";
  for (;;) {
    unsigned int len = 0;
    void* v = xs_read(impl_->xs, XBT_NULL, path.c_str(), &len);
    if (v) {
      std::free(v);
      break;
    }
    if (NowMs() - t0 > timeout_ms) {
      Pause(domid);
      return Status::Unavailable(Dom(domid) + " did not boot within " + std::to_string(timeout_ms) +
                                 " ms (no " + path + ")");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (boot_ms) *boot_ms = NowMs() - t0;
  return Pause(domid);
}

Status XenHost::SetVcpus(uint32_t domid, int n) {
  XenDomainInfo d;
  if (Status s = Info(domid, &d); !s.ok()) return s;
  if (n < 1 || n > d.max_vcpus)
    return Status::InvalidArgument(Dom(domid) + " (" + d.name + "): " + std::to_string(n) +
                                   " vCPUs is outside 1.." + std::to_string(d.max_vcpus) +
                                   " (its maxvcpus)");
  libxl_bitmap map;
  libxl_bitmap_init(&map);
  if (libxl_bitmap_alloc(impl_->ctx, &map, d.max_vcpus)) return Status::IoError("libxl_bitmap_alloc failed");
  libxl_bitmap_set_none(&map);
  for (int i = 0; i < n; ++i) libxl_bitmap_set(&map, i);
  int rc = libxl_set_vcpuonline(impl_->ctx, domid, &map, nullptr);
  libxl_bitmap_dispose(&map);
  if (rc) return LibxlError("libxl_set_vcpuonline", domid, rc);
  return Status::Ok();
}

Status XenHost::SetMemory(uint32_t domid, int mib) {
  XenDomainInfo d;
  if (Status s = Info(domid, &d); !s.ok()) return s;
  // The guest's ceiling is its maxmem, which libxl keeps in xenstore as static-max; Xen's
  // own max_pages is only the current target plus slack (libxl raises it with the target).
  uint64_t max_kib = d.max_memory_kib;
  const std::string path = "/local/domain/" + std::to_string(domid) + "/memory/static-max";
  unsigned int len = 0;
  if (char* v = static_cast<char*>(xs_read(impl_->xs, XBT_NULL, path.c_str(), &len))) {
    max_kib = std::strtoull(v, nullptr, 10);
    std::free(v);
  }
  const uint64_t kib = uint64_t(mib) * 1024;
  if (mib < 16 || kib > max_kib)
    return Status::InvalidArgument(Dom(domid) + " (" + d.name + "): " + std::to_string(mib) +
                                   " MiB is outside 16.." + std::to_string(max_kib / 1024) +
                                   " MiB (its maxmem)");
  // enforce=1: Xen's limit follows the target, so the balloon driver can grow into it.
  if (int rc = libxl_set_memory_target(impl_->ctx, domid, static_cast<int64_t>(kib), 0, 1); rc)
    return LibxlError("libxl_set_memory_target", domid, rc);
  return Status::Ok();
}

Status XenHost::Destroy(uint32_t domid) {
  if (int rc = libxl_domain_destroy(impl_->ctx, domid, nullptr); rc)
    return LibxlError("libxl_domain_destroy", domid, rc);
  return Status::Ok();
}

MemshrProbe XenHost::ProbeMemshr() {
  // Two domids that cannot exist (below DOMID_FIRST_RESERVED, far above any we create):
  // a hypervisor with sharing looks them up and says ESRCH; one without says ENOSYS
  // before looking at anything.
  MemshrProbe p;
  int rc = lull_clone_memshr_probe(&p.err);
  if (rc < 0) {
    p.detail = std::string("xc_interface_open: ") + std::strerror(p.err) + "; memory sharing unknown";
  } else if (rc == 1) {
    p.available = true;  // cannot happen for absent domains; report it as seen
    p.detail = "xc_memshr_fork accepted a probe on absent domains (unexpected)";
  } else if (p.err == ENOSYS || p.err == EOPNOTSUPP) {
    p.available = false;
    p.detail = std::string("xc_memshr_fork: ") + std::strerror(p.err) +
               ": the hypervisor has no memory sharing (built without CONFIG_MEM_SHARING); "
               "using the paused pool";
  } else {
    p.available = true;
    p.detail = std::string("xc_memshr_fork probe: ") + std::strerror(p.err) +
               " for absent domains: the hypervisor has memory sharing (forks need HVM/PVH "
               "guests with HAP; PV golden images use the paused pool)";
  }
  return p;
}

// --- XenShadowPool ------------------------------------------------------------------------

Status XenShadowPool::Open(const XenPoolConfig& cfg) {
  cfg_ = cfg;
  if (!cfg_.golden_path.empty()) {
    if (Status s = LoadXenGolden(cfg_.golden_path, &golden_); !s.ok()) return s;
    if (cfg_.domain.empty()) cfg_.domain = golden_.name;
    if (golden_.name != cfg_.domain)
      return Status::InvalidArgument("golden " + cfg_.golden_path + " is of '" + golden_.name +
                                     "', not of domain '" + cfg_.domain + "'");
  }
  if (cfg_.domain.empty()) return Status::InvalidArgument("xen shadow pool: no domain and no golden config");
  if (cfg_.shadow_vcpus < 0 || cfg_.shadow_vcpus > 128)
    return Status::InvalidArgument("shadow vCPUs " + std::to_string(cfg_.shadow_vcpus) + " out of range");
  if (cfg_.shadow_memory_mib != 0 && cfg_.shadow_memory_mib < 16)
    return Status::InvalidArgument("shadow memory " + std::to_string(cfg_.shadow_memory_mib) +
                                   " MiB is under 16");
  return XenHost::Open(&host_);
}

Status XenShadowPool::List(std::vector<XenDomainInfo>* out) {
  if (Status s = host_->List(prefix(), out); !s.ok()) return s;
  std::erase_if(*out, [&](const XenDomainInfo& d) { return ShadowIndex(d.name, prefix()) < 0; });
  std::sort(out->begin(), out->end(), [&](const XenDomainInfo& a, const XenDomainInfo& b) {
    return ShadowIndex(a.name, prefix()) < ShadowIndex(b.name, prefix());
  });
  return Status::Ok();
}

Status XenShadowPool::SetSize(int n) {
  if (n < 0 || n > 64) return Status::InvalidArgument("pool size " + std::to_string(n) + " is outside 0..64");
  std::vector<XenDomainInfo> have;
  if (Status s = List(&have); !s.ok()) return s;
  while (static_cast<int>(have.size()) > n) {
    // Idle (paused) shadows go first, newest first; then active ones.
    auto victim = std::find_if(have.rbegin(), have.rend(), [](const XenDomainInfo& d) { return d.paused(); });
    auto it = victim != have.rend() ? std::prev(victim.base()) : std::prev(have.end());
    if (Status s = host_->Destroy(it->domid); !s.ok()) return s;
    have.erase(it);
  }
  if (static_cast<int>(have.size()) < n && golden_.kernel.empty())
    return Status::InvalidArgument("growing the pool of " + cfg_.domain + " needs its golden xl config (--golden)");
  for (int k = 1; static_cast<int>(have.size()) < n; ++k) {
    std::string name = prefix() + std::to_string(k);
    if (std::any_of(have.begin(), have.end(), [&](const XenDomainInfo& d) { return d.name == name; })) continue;
    uint32_t id = 0;
    if (Status s = host_->CreatePaused(golden_, name, cfg_.shadow_vcpus, cfg_.shadow_memory_mib, &id); !s.ok())
      return s;
    if (cfg_.warm) {
      if (Status s = host_->Warm(id, cfg_.warm_timeout_ms, nullptr); !s.ok()) {
        host_->Destroy(id);
        return s;
      }
    }
    XenDomainInfo d;
    if (Status s = host_->Info(id, &d); !s.ok()) return s;
    have.push_back(d);
  }
  return Status::Ok();
}

Status XenShadowPool::Activate(double* ms, std::string* name) {
  std::vector<XenDomainInfo> have;
  if (Status s = List(&have); !s.ok()) return s;
  for (const auto& d : have) {
    if (!d.paused()) continue;
    if (name) *name = d.name;
    return host_->Unpause(d.domid, ms);
  }
  return Status::Unavailable("no idle shadow of " + cfg_.domain + " (" + std::to_string(have.size()) +
                             " shadows, all active); grow the pool first");
}

Status XenShadowPool::Deactivate(std::string* name) {
  std::vector<XenDomainInfo> have;
  if (Status s = List(&have); !s.ok()) return s;
  for (auto it = have.rbegin(); it != have.rend(); ++it) {
    if (it->paused() || it->state == "dying" || it->state == "shutdown") continue;
    if (name) *name = it->name;
    return host_->Pause(it->domid);
  }
  return Status::NotFound("no active shadow of " + cfg_.domain);
}

Status XenShadowPool::Find(const std::string& name, XenDomainInfo* out) {
  std::vector<XenDomainInfo> have;
  if (Status s = List(&have); !s.ok()) return s;
  for (const auto& d : have) {
    if (d.name == name) {
      *out = d;
      return Status::Ok();
    }
  }
  return Status::NotFound("no shadow named " + name + " in the pool of " + cfg_.domain);
}

Status XenShadowPool::Resize(const std::string& name, int vcpus, int memory_mib) {
  XenDomainInfo d;
  if (Status s = Find(name, &d); !s.ok()) return s;
  if (vcpus > 0) {
    if (Status s = host_->SetVcpus(d.domid, vcpus); !s.ok()) return s;
  }
  if (memory_mib > 0) {
    if (Status s = host_->SetMemory(d.domid, memory_mib); !s.ok()) return s;
  }
  return Status::Ok();
}

}  // namespace lull::clone
