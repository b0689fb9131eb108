// Two network namespaces joined by a veth pair shaped by tc, for the migration benchmark
// (and anything else that wants a real, bandwidth-limited link between two endpoints).
//
// Create() makes namespaces "<prefix>-src" and "<prefix>-dst" holding the two ends of a
// veth pair, 10.231.<n>.1 and .2/24, each end's egress shaped by a tbf qdisc at
// `rate_mbit`. The link is private to this machine: nothing outside the namespaces can
// reach it. Destroy() (and the destructor) delete both namespaces, which also deletes the
// veth pair; it is safe to call twice. Needs root (CAP_NET_ADMIN) and iproute2; without
// them Create() fails and says why, and the caller falls back to loopback.
#pragma once

#include <string>

#include "forecast/status.h"

namespace lull::migrate {

class NetnsLink {
 public:
  ~NetnsLink() { Destroy(); }
  lull::Status Create(const std::string& prefix, int rate_mbit);
  void Destroy();
  // Moves the calling thread into the source / target namespace.
  lull::Status EnterSource() const { return Enter(src_); }
  lull::Status EnterTarget() const { return Enter(dst_); }
  const std::string& source_addr() const { return src_addr_; }
  const std::string& target_addr() const { return dst_addr_; }

 private:
  static lull::Status Enter(const std::string& ns);
  std::string src_, dst_, src_addr_, dst_addr_;
  bool made_ = false;
};

}  // namespace lull::migrate
