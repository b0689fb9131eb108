#include "dom0/migrate/resource_control.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "dom0/migrate/clock.h"

namespace lull::migrate {

namespace {

// The leading decimal number of a cgroup file's text (after `at`); Corruption naming the
// file if there is none, where std::stoull would have thrown out of the control loop.
lull::Status LeadingNumber(const std::string& file, const std::string& text, size_t at,
                           uint64_t* out) {
  const char* b = text.data() + std::min(at, text.size());
  auto [end, ec] = std::from_chars(b, text.data() + text.size(), *out);
  if (ec != std::errc() || end == b)
    return lull::Status::Corruption(file + ": expected a number, got '" + text.substr(at, 40) + "'");
  return lull::Status::Ok();
}

lull::Status WriteFile(const std::string& path, const std::string& v) {
  std::ofstream f(path);
  if (!f) return lull::Status::Unavailable(path + ": " + std::strerror(errno));
  f << v;
  f.flush();
  if (!f) return lull::Status::Unavailable(path + ": writing '" + v + "' failed");
  return lull::Status::Ok();
}

lull::Status ReadFile(const std::string& path, std::string* v) {
  std::ifstream f(path);
  if (!f) return lull::Status::Unavailable(path + ": " + std::strerror(errno));
  std::stringstream ss;
  ss << f.rdbuf();
  *v = ss.str();
  return lull::Status::Ok();
}

bool Exists(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0;
}

lull::Status MakeDir(const std::string& d) {
  if (mkdir(d.c_str(), 0755) != 0 && errno != EEXIST)
    return lull::Status::Unavailable("cgroup " + d + ": " + std::strerror(errno));
  return lull::Status::Ok();
}

std::string Parent(const std::string& d) { return d.substr(0, d.rfind('/')); }

}  // namespace

lull::Status CgroupControl::Create(const std::string& name, pid_t pid,
                                   std::unique_ptr<CgroupControl>* out) {
  if (name.empty() || name.find('/') != std::string::npos || name[0] == '.')
    return lull::Status::InvalidArgument("cgroup name '" + name + "' must be one path component");
  std::unique_ptr<CgroupControl> c(new CgroupControl);
  const std::string root = "/sys/fs/cgroup";
  std::string ctl;
  if (ReadFile(root + "/cgroup.controllers", &ctl).ok()) {
    c->v2_ = true;
    if (ctl.find("cpu") == std::string::npos || ctl.find("memory") == std::string::npos)
      return lull::Status::Unavailable("cgroup v2 without the cpu and memory controllers");
    WriteFile(root + "/cgroup.subtree_control", "+cpu +memory");  // may already be on
    c->cpu_dir_ = c->acct_dir_ = c->mem_dir_ = root + "/" + name;
  } else if (Exists(root + "/cpu/cpu.cfs_quota_us") && Exists(root + "/memory/memory.limit_in_bytes")) {
    c->cpu_dir_ = root + "/cpu/" + name;
    c->acct_dir_ = root + "/cpuacct/" + name;
    c->mem_dir_ = root + "/memory/" + name;
    if (!Exists(root + "/cpuacct/cpuacct.usage")) c->acct_dir_ = c->cpu_dir_;
  } else {
    return lull::Status::Unavailable("no cgroup cpu/memory controllers under " + root);
  }
  for (const std::string& d : {c->cpu_dir_, c->acct_dir_, c->mem_dir_}) {
    if (auto s = MakeDir(d); !s.ok()) return s;
    if (auto s = WriteFile(d + "/cgroup.procs", std::to_string(pid)); !s.ok()) return s;
  }
  c->last_ms_ = MonoMs();
  Resources ignore;
  c->Measure(&ignore);  // sets the baseline of the CPU counter
  *out = std::move(c);
  return lull::Status::Ok();
}

CgroupControl::~CgroupControl() {
  for (const std::string& d : {cpu_dir_, acct_dir_, mem_dir_}) {
    if (d.empty() || !Exists(d)) continue;
    std::string procs;
    if (ReadFile(d + "/cgroup.procs", &procs).ok()) {
      std::istringstream in(procs);
      std::string pid;
      while (in >> pid) WriteFile(Parent(d) + "/cgroup.procs", pid);
    }
    rmdir(d.c_str());
  }
}

std::string CgroupControl::cpu_limit_file() const {
  return cpu_dir_ + (v2_ ? "/cpu.max" : "/cpu.cfs_quota_us");
}
std::string CgroupControl::memory_limit_file() const {
  return mem_dir_ + (v2_ ? "/memory.max" : "/memory.limit_in_bytes");
}

lull::Status CgroupControl::Apply(const Resources& r) {
  if (!(r.cpu > 0) || !(r.memory_mib > 0))
    return lull::Status::InvalidArgument("resources: cpu and memory must be > 0");
  const long period = 100000;
  long quota = std::max(1000L, std::lround(r.cpu * period));
  uint64_t mem = static_cast<uint64_t>(r.memory_mib * 1048576.0);
  if (v2_) {
    if (auto s = WriteFile(cpu_limit_file(), std::to_string(quota) + " " + std::to_string(period)); !s.ok())
      return s;
  } else {
    if (auto s = WriteFile(cpu_dir_ + "/cpu.cfs_period_us", std::to_string(period)); !s.ok()) return s;
    if (auto s = WriteFile(cpu_limit_file(), std::to_string(quota)); !s.ok()) return s;
  }
  return WriteFile(memory_limit_file(), std::to_string(mem));
}

lull::Status CgroupControl::Measure(Resources* used) {
  std::string v;
  uint64_t usage_ns = 0;
  if (v2_) {
    if (auto s = ReadFile(acct_dir_ + "/cpu.stat", &v); !s.ok()) return s;
    auto at = v.find("usage_usec ");
    if (at == std::string::npos) return lull::Status::Corruption(acct_dir_ + "/cpu.stat: no usage_usec");
    if (auto s = LeadingNumber(acct_dir_ + "/cpu.stat", v, at + 11, &usage_ns); !s.ok()) return s;
    usage_ns *= 1000;
  } else {
    if (auto s = ReadFile(acct_dir_ + "/cpuacct.usage", &v); !s.ok()) return s;
    if (auto s = LeadingNumber(acct_dir_ + "/cpuacct.usage", v, 0, &usage_ns); !s.ok()) return s;
  }
  const std::string mem_file = mem_dir_ + (v2_ ? "/memory.current" : "/memory.usage_in_bytes");
  uint64_t mem_bytes = 0;
  if (auto s = ReadFile(mem_file, &v); !s.ok()) return s;
  if (auto s = LeadingNumber(mem_file, v, 0, &mem_bytes); !s.ok()) return s;
  double now = MonoMs();
  double dt_ns = (now - last_ms_) * 1e6;
  used->cpu = dt_ns > 0 && usage_ns >= last_usage_ns_ ? double(usage_ns - last_usage_ns_) / dt_ns : 0;
  used->memory_mib = double(mem_bytes) / 1048576.0;
  used->io_mbps = 0;
  last_usage_ns_ = usage_ns;
  last_ms_ = now;
  return lull::Status::Ok();
}

lull::Status ProvisionStep(int step, Provisioner* plan, ResourceControl* rc, Resources* applied,
                           Resources* used) {
  *applied = plan->At(step);
  if (auto s = rc->Apply(*applied); !s.ok()) return s;
  if (auto s = rc->Measure(used); !s.ok()) return s;
  plan->Correct(step, *used);
  return lull::Status::Ok();
}

}  // namespace lull::migrate
