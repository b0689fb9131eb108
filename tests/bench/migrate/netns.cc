#include "tests/bench/migrate/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace lull::migrate {

namespace {

// Runs a command quietly; its exit status, or -1.
int Run(const std::string& cmd) {
  int rc = std::system((cmd + " >/dev/null 2>&1").c_str());
  return rc == -1 ? -1 : WEXITSTATUS(rc);
}

}  // namespace

lull::Status NetnsLink::Create(const std::string& prefix, int rate_mbit) {
  Destroy();
  src_ = prefix + "-src";
  dst_ = prefix + "-dst";
  int n = static_cast<int>(getpid() % 200) + 20;
  src_addr_ = "10.231." + std::to_string(n) + ".1";
  dst_addr_ = "10.231." + std::to_string(n) + ".2";
  std::string a = "lmv" + std::to_string(getpid()) + "a", b = "lmv" + std::to_string(getpid()) + "b";
  std::string rate = std::to_string(rate_mbit) + "mbit";
  const std::string steps[] = {
      "ip netns add " + src_,
      "ip netns add " + dst_,
      "ip link add " + a + " type veth peer name " + b,
      "ip link set " + a + " netns " + src_,
      "ip link set " + b + " netns " + dst_,
      "ip -n " + src_ + " addr add " + src_addr_ + "/24 dev " + a,
      "ip -n " + dst_ + " addr add " + dst_addr_ + "/24 dev " + b,
      "ip -n " + src_ + " link set lo up",
      "ip -n " + dst_ + " link set lo up",
      "ip -n " + src_ + " link set " + a + " up",
      "ip -n " + dst_ + " link set " + b + " up",
      // tbf: the rate, a burst of a few ms at that rate, a queue of 20 ms.
      "tc -n " + src_ + " qdisc add dev " + a + " root tbf rate " + rate + " burst 256kb latency 20ms",
      "tc -n " + dst_ + " qdisc add dev " + b + " root tbf rate " + rate + " burst 256kb latency 20ms",
  };
  made_ = true;
  for (const std::string& s : steps) {
    if (Run(s) != 0) {
      Destroy();
      return lull::Status::PermissionDenied("network namespaces unavailable: '" + s + "' failed");
    }
  }
  return lull::Status::Ok();
}

void NetnsLink::Destroy() {
  if (!made_) return;
  Run("ip netns del " + src_);
  Run("ip netns del " + dst_);
  made_ = false;
}

lull::Status NetnsLink::Enter(const std::string& ns) {
  std::string path = "/var/run/netns/" + ns;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return lull::Status::NotFound(path + ": " + std::strerror(errno));
  int rc = setns(fd, CLONE_NEWNET);
  int err = errno;
  close(fd);
  if (rc != 0) return lull::Status::PermissionDenied("setns " + ns + ": " + std::strerror(err));
  return lull::Status::Ok();
}

}  // namespace lull::migrate
