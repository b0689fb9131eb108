#include "dom0/clone/instance.h"

#include <httplib.h>

#include <charconv>
#include <csignal>
#include <cstdlib>

namespace lull::clone {

Status ProcessInstance::Start(int vcpus, int timeout_ms) {
  Status s = proc_.Spawn({backend_, "--golden", golden_path_, "--id", id_, "--vcpus",
                          std::to_string(vcpus)},
                         log_dir_ + "/" + id_ + ".log");
  if (!s.ok()) return s;
  std::string line;
  s = proc_.ReadLine(timeout_ms, &line);
  if (!s.ok() || line.rfind("READY ", 0) != 0) {
    proc_.Stop(500);
    return Status::Unavailable("instance " + id_ + " did not become ready (" +
                               (s.ok() ? "said '" + line + "'" : s.message()) + "); see " +
                               log_dir_ + "/" + id_ + ".log");
  }
  int port = 0;
  const char* p = line.c_str() + 6;
  auto [end, ec] = std::from_chars(p, line.c_str() + line.size(), port);
  if (ec != std::errc() || end != line.c_str() + line.size() || port < 1 || port > 65535) {
    proc_.Stop(500);
    return Status::Corruption("instance " + id_ + " said '" + line + "': not READY and a port 1..65535");
  }
  port_ = port;
  vcpus_ = vcpus;
  paused_ = false;
  return Status::Ok();
}

Status ProcessInstance::Pause() {
  Status s = proc_.Pause();
  if (s.ok()) paused_ = true;
  return s;
}

Status ProcessInstance::Resume() {
  Status s = proc_.Signal(SIGCONT);
  if (s.ok()) paused_ = false;
  return s;
}

Status ProcessInstance::Probe(int timeout_ms) const {
  if (port_ <= 0) return Status::Unavailable("instance " + id_ + " is not started");
  httplib::Client c("127.0.0.1", port_);
  c.set_connection_timeout(0, timeout_ms * 1000);
  c.set_read_timeout(0, timeout_ms * 1000);
  auto r = c.Get("/health");
  if (!r || r->status != 200) {
    return Status::Unavailable("instance " + id_ + " health probe failed" +
                               (r ? " with HTTP " + std::to_string(r->status) : ""));
  }
  return Status::Ok();
}

Status ProcessInstance::SetVcpus(int n) {
  httplib::Client c("127.0.0.1", port_);
  c.set_connection_timeout(1, 0);
  auto r = c.Post(("/admin/vcpus?n=" + std::to_string(n)).c_str());
  if (!r) return Status::Unavailable("instance " + id_ + ": resize request failed");
  if (r->status != 200) {
    return Status::InvalidArgument("instance " + id_ + " refused " + std::to_string(n) +
                                   " vCPUs: " + r->body);
  }
  vcpus_ = n;
  return Status::Ok();
}

Status ProcessInstance::Stats(InstanceStats* out) const {
  httplib::Client c("127.0.0.1", port_);
  c.set_connection_timeout(1, 0);
  auto r = c.Get("/stats");
  if (!r || r->status != 200) return Status::Unavailable("instance " + id_ + ": no stats");
  auto num = [&](const char* key) -> unsigned long long {
    std::string k = std::string("\"") + key + "\":";
    size_t p = r->body.find(k);
    return p == std::string::npos ? 0 : std::strtoull(r->body.c_str() + p + k.size(), nullptr, 10);
  };
  out->vcpus = static_cast<int>(num("vcpus"));
  out->inflight = static_cast<int>(num("inflight"));
  out->served = num("served");
  out->cache_hits = num("cache_hits");
  out->volume_reads = num("volume_reads");
  return Status::Ok();
}

}  // namespace lull::clone
