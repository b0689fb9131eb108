// lull::dom0::MetricsServer - Prometheus metrics over HTTP (cpp-httplib).
//
// GET /metrics answers the text exposition format (version 0.0.4) rendered by the
// `render` callback, which lulld implements under its lock from the engine and host
// state (RenderMetrics below). Listens on host:port; port 0 picks a free port (see
// port()). Its own thread; Stop() joins it.
#pragma once

#include <memory>
#include <string>
#include <thread>
#include <functional>

#include "dom0/engine.h"
#include "dom0/sim_host.h"
#include "forecast/status.h"

namespace httplib { class Server; }

namespace lull::dom0 {

class MetricsServer {
 public:
  explicit MetricsServer(std::function<std::string()> render);
  ~MetricsServer();
  // "127.0.0.1:9477"; errors name the address.
  Status Start(const std::string& listen);
  void Stop();
  int port() const { return port_; }

 private:
  std::function<std::string()> render_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

// The exposition text for one engine on one simulated host.
std::string RenderMetrics(const Engine& engine, const SimHost* host);

}  // namespace lull::dom0
