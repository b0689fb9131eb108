#include "dom0/clone/haproxy.h"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

namespace lull::clone {

Status Haproxy::Start(const HaproxyConfig& cfg, int primary_port, int primary_weight) {
  if (cfg.dir.empty()) return Status::InvalidArgument("haproxy: no working directory");
  if (access(cfg.haproxy_path.c_str(), X_OK) != 0) {
    return Status::NotFound("haproxy: " + cfg.haproxy_path +
                            " not found (Debian package haproxy; `make deps` installs it)");
  }
  if (cfg.slots < 1 || cfg.slots > 64) {
    return Status::InvalidArgument("haproxy: slots " + std::to_string(cfg.slots) +
                                   " out of [1, 64]");
  }
  port_ = cfg.port ? cfg.port : FreeLoopbackPort();
  sock_ = cfg.dir + "/admin.sock";
  if (sock_.size() >= sizeof(sockaddr_un::sun_path)) {
    return Status::InvalidArgument("haproxy: socket path too long: " + sock_);
  }
  unlink(sock_.c_str());
  std::ostringstream c;
  const int mc = cfg.maxconn_per_server;
  c << "global\n"
    << "  stats socket " << sock_ << " mode 600 level admin\n"
    << "  maxconn 4096\n"
    << "defaults\n"
    << "  mode http\n"
    << "  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\n"
    << "  timeout queue 20s\n  timeout http-keep-alive 30s\n"
    // A request that meets a closing keep-alive connection or a server leaving is
    // retried on another server rather than failed (all our requests are GETs).
    << "  retries 3\n  option redispatch 1\n"
    << "  retry-on conn-failure empty-response response-timeout\n"
    << "  http-reuse safe\n"
    // Small requests and answers: no Nagle/MSG_MORE coalescing, which otherwise meets
    // the peer's delayed ACK now and then (40 ms tails).
    << "  option http-no-delay\n"
    << "frontend fe\n"
    << "  bind 127.0.0.1:" << port_ << "\n"
    << "  default_backend be\n"
    << "backend be\n"
    << "  balance uri\n"
    << "  hash-type consistent\n"
    << (cfg.balance_factor ? "  hash-balance-factor " + std::to_string(cfg.balance_factor) + "\n"
                           : std::string())
    << "  server primary 127.0.0.1:" << primary_port << " weight " << primary_weight
    << " maxconn " << mc << " pool-max-conn " << mc << "\n";
  for (int i = 1; i <= cfg.slots; ++i) {
    c << "  server s" << i << " 127.0.0.1:1 weight 1 maxconn " << mc << " pool-max-conn "
      << mc << " disabled\n";
  }
  std::string path = cfg.dir + "/haproxy.cfg";
  {
    std::ofstream f(path);
    f << c.str();
    if (!f) return Status::IoError("haproxy: cannot write " + path);
  }
  Status s = proc_.Spawn({cfg.haproxy_path, "-db", "-f", path}, cfg.dir + "/haproxy.log");
  if (!s.ok()) return s;
  // Ready when the admin socket answers: at once on an idle host, seconds on a loaded
  // one, so the bound (30 s) only ends a hang.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!proc_.Alive()) {
      return Status::Unavailable("haproxy exited at start; see " + cfg.dir + "/haproxy.log");
    }
    std::string r;
    if (Command("show info", &r).ok() && r.find("Name:") != std::string::npos) {
      return Status::Ok();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  proc_.Stop(1000);
  return Status::Unavailable("haproxy: admin socket " + sock_ + " did not answer in 30 s");
}

Status Haproxy::Stop() {
  Status s = proc_.Stop(2000);
  if (!sock_.empty()) unlink(sock_.c_str());
  return s;
}

Status Haproxy::Command(const std::string& cmd, std::string* reply) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::IoError(std::string("haproxy socket: ") + strerror(errno));
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, sock_.c_str(), sizeof a.sun_path - 1);
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    int e = errno;
    close(fd);
    return Status::Unavailable("haproxy admin socket " + sock_ + ": " + strerror(e));
  }
  std::string line = cmd + "\n";
  if (write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    close(fd);
    return Status::IoError("haproxy: write of '" + cmd + "' failed");
  }
  std::string out;
  char b[4096];
  ssize_t n;
  while ((n = read(fd, b, sizeof b)) > 0) out.append(b, static_cast<size_t>(n));
  close(fd);
  if (n < 0) return Status::IoError("haproxy: reading the reply to '" + cmd + "' timed out");
  if (reply) *reply = out;
  // The runtime API answers success with an empty line (or data); errors are prose.
  for (const char* bad : {"No such", "Unknown command", "Require ", "not found", "Invalid",
                          "invalid", "cannot", "not allowed"}) {
    if (out.find(bad) != std::string::npos) {
      while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
      return Status::InvalidArgument("haproxy refused '" + cmd + "': " + out);
    }
  }
  return Status::Ok();
}

Status Haproxy::SetAddress(const std::string& server, int port) {
  return Command("set server be/" + server + " addr 127.0.0.1 port " + std::to_string(port));
}

Status Haproxy::SetWeight(const std::string& server, int weight) {
  if (weight < 0 || weight > 256) {
    return Status::InvalidArgument("haproxy weight " + std::to_string(weight) +
                                   " out of [0, 256]");
  }
  return Command("set server be/" + server + " weight " + std::to_string(weight));
}

Status Haproxy::SetState(const std::string& server, const std::string& state) {
  if (state != "ready" && state != "drain" && state != "maint") {
    return Status::InvalidArgument("haproxy state '" + state + "' (ready, drain or maint)");
  }
  return Command("set server be/" + server + " state " + state);
}

Status Haproxy::ShowStat(std::vector<ServerStat>* rows) {
  std::string csv;
  Status s = Command("show stat", &csv);
  if (!s.ok()) return s;
  return ParseShowStat(csv, rows);
}

Status ParseShowStat(const std::string& csv, std::vector<ServerStat>* rows) {
  std::istringstream in(csv);
  std::string line;
  std::map<std::string, size_t> col;
  rows->clear();
  auto split = [](const std::string& l) {
    std::vector<std::string> f;
    std::string cur;
    for (char ch : l) {
      if (ch == ',') { f.push_back(cur); cur.clear(); } else { cur += ch; }
    }
    f.push_back(cur);
    return f;
  };
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (line.rfind("# ", 0) == 0) {
      auto h = split(line.substr(2));
      for (size_t i = 0; i < h.size(); ++i) col[h[i]] = i;
      continue;
    }
    if (col.empty()) return Status::Corruption("show stat: no header line before data");
    auto f = split(line);
    auto get = [&](const char* k) -> std::string {
      auto it = col.find(k);
      return it != col.end() && it->second < f.size() ? f[it->second] : std::string();
    };
    auto num = [&](const char* k) -> uint64_t {
      std::string v = get(k);
      return v.empty() ? 0 : std::strtoull(v.c_str(), nullptr, 10);
    };
    std::string px = get("pxname");
    std::string sv = get("svname");
    if (!(px == "be" || (px == "fe" && sv == "FRONTEND"))) continue;
    ServerStat r;
    r.name = sv;
    r.status = get("status");
    r.weight = static_cast<int>(num("weight"));
    r.scur = static_cast<int>(num("scur"));
    r.qcur = static_cast<int>(num("qcur"));
    r.stot = num("stot");
    r.hrsp_2xx = num("hrsp_2xx");
    r.hrsp_5xx = num("hrsp_5xx");
    r.econ = num("econ");
    r.eresp = num("eresp");
    r.rate = static_cast<double>(num("rate"));
    rows->push_back(r);
  }
  if (col.empty()) return Status::Corruption("show stat: empty reply");
  return Status::Ok();
}

}  // namespace lull::clone
