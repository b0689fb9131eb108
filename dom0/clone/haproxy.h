// lull::clone::Haproxy - the real load balancer in front of the primary and its shadows.
//
// Start() writes a configuration into cfg.dir and runs /usr/sbin/haproxy in the
// foreground (-db) as a ChildProcess. The configuration:
//   - one frontend on 127.0.0.1:<port> (loopback only), one backend `be`;
//   - `balance uri` + `hash-type consistent` + `hash-balance-factor`: bounded-load
//     consistent hashing (Mirrokni et al.), so a key keeps going to the same instance (its
//     cache stays hot) unless that instance carries more than factor/100 of the average
//     load, when the key moves on along the ring to a less loaded one;
//   - the server `primary` and `slots` shadow slots s1..sN, declared `disabled` with a
//     placeholder address, given their real port at run time (`set server ... addr`);
//   - retries with redispatch and retry-on for idempotent failures, so that traffic
//     shifts (drain, maint) fail no request.
// Everything else is done over the runtime API on the admin Unix socket: Command() sends
// one command and returns the reply. Not thread-safe: one caller at a time.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dom0/clone/process.h"
#include "forecast/status.h"

namespace lull::clone {

struct HaproxyConfig {
  std::string dir;                 // holds haproxy.cfg, admin.sock, haproxy.log
  int port = 0;                    // frontend port; 0 picks a free one
  int slots = 8;                   // shadow slots s1..s<slots>
  int maxconn_per_server = 48;     // below the backend's 64 keep-alive threads
  int balance_factor = 125;        // hash-balance-factor (percent of the average load);
                                   // 0 = plain consistent hashing
  std::string haproxy_path = "/usr/sbin/haproxy";
};

struct ServerStat {
  std::string name, status;  // status: UP, MAINT, DRAIN, "no check", ...
  int weight = 0, scur = 0, qcur = 0;
  uint64_t stot = 0, hrsp_2xx = 0, hrsp_5xx = 0, econ = 0, eresp = 0;
  double rate = 0;           // sessions per second over the last second
};

class Haproxy {
 public:
  ~Haproxy() { Stop(); }
  Status Start(const HaproxyConfig& cfg, int primary_port, int primary_weight);
  Status Stop();
  bool running() { return proc_.Alive(); }
  int port() const { return port_; }
  const std::string& socket_path() const { return sock_; }

  // One runtime API command (no trailing newline); *reply gets HAProxy's answer.
  // HAProxy answers errors in text; those that it marks are returned as InvalidArgument.
  Status Command(const std::string& cmd, std::string* reply = nullptr);
  Status SetAddress(const std::string& server, int port);
  Status SetWeight(const std::string& server, int weight);
  // state: "ready", "drain" or "maint".
  Status SetState(const std::string& server, const std::string& state);
  // The rows of backend `be` (servers, then "BACKEND") and the "FRONTEND" row of fe.
  Status ShowStat(std::vector<ServerStat>* rows);

 private:
  ChildProcess proc_;
  std::string sock_;
  int port_ = 0;
};

// Parses `show stat` CSV (header line "# pxname,svname,...") into rows; pxname filter.
Status ParseShowStat(const std::string& csv, std::vector<ServerStat>* rows);

}  // namespace lull::clone
