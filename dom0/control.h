// lull::dom0::ControlServer - lulld's control socket: JSON lines over a Unix socket.
//
// One request per line, one JSON object back per line. The socket file is created with
// mode 0600 (root-only by file permission) and every connection's peer credentials
// (SO_PEERCRED) are checked: uid 0, or the one uid configured as daemon.socket_uid, else
// the server answers {"ok":false,"error":"permission denied: peer uid N ..."} and closes.
// Requests are {"cmd": "...", ...}; the handler (lulld's) answers them under the
// daemon's lock; an exception out of the handler becomes that request's error reply.
// Start() removes a socket a dead lulld left at the path, but refuses (kAlreadyExists)
// when a live server still accepts on it or the path is not a socket. The server runs
// its own accept thread; Stop() joins it and removes the socket file. ControlRequest is
// the client side that lullctl and the tests use.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "forecast/status.h"

namespace lull::dom0 {

class ControlServer {
 public:
  using Handler = std::function<nlohmann::json(const nlohmann::json& request)>;
  ControlServer(std::string path, Handler handler, uid_t allowed_uid = 0);
  ~ControlServer();
  Status Start();
  void Stop();
  const std::string& path() const { return path_; }
  uint64_t rejected() const { return rejected_.load(); }

 private:
  void Loop();
  void Serve(int fd);
  std::string path_;
  Handler handler_;
  uid_t allowed_uid_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};   // Stop() writes here to end the accept loop
  std::thread thread_;
  std::atomic<uint64_t> rejected_{0};
};

// Bounds of the requests' fields: lulld refuses a field outside them by name, and lullctl
// refuses the flag before sending. Seconds up to 1e9 (31 years) keep now + seconds within
// the uint64 nanosecond clock (2^64 ns is 584 years); memory and CPUs beyond any host.
inline constexpr double kMaxRequestSeconds = 1e9;
inline constexpr double kMaxRequestGiB = 1e6;
inline constexpr int kMaxRequestCpus = 4096;

// Sends one request, reads one reply line.
Status ControlRequest(const std::string& path, const nlohmann::json& request, nlohmann::json* reply);

}  // namespace lull::dom0
