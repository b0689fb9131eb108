#include "dom0/migrate/redirect.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace lull::migrate {

lull::Status HaproxyCommand(const std::string& sock, const std::string& cmd, std::string* reply) {
  reply->clear();
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (sock.size() >= sizeof sa.sun_path)
    return lull::Status::InvalidArgument("HAProxy socket path too long: " + sock);
  std::memcpy(sa.sun_path, sock.c_str(), sock.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return lull::Status::Unavailable(std::string("socket: ") + std::strerror(errno));
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    lull::Status s = lull::Status::Unavailable("HAProxy admin socket " + sock + ": " + std::strerror(errno));
    close(fd);
    return s;
  }
  std::string line = cmd + "\n";
  bool ok = write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  char buf[4096];
  ssize_t n;
  while (ok && (n = read(fd, buf, sizeof buf)) > 0) reply->append(buf, static_cast<size_t>(n));
  close(fd);
  if (!ok) return lull::Status::IoError("HAProxy admin socket " + sock + ": write failed");
  return lull::Status::Ok();
}

lull::Status HaproxyRedirect(const std::string& sock, const std::string& server,
                             const std::string& addr, uint16_t port) {
  if (server.find('/') == std::string::npos)
    return lull::Status::InvalidArgument("redirect: server '" + server + "' is not BACKEND/SERVER");
  const std::string cmds[] = {
      "set server " + server + " addr " + addr + " port " + std::to_string(port),
      "set server " + server + " state ready",
  };
  for (const std::string& c : cmds) {
    std::string reply;
    if (auto s = HaproxyCommand(sock, c, &reply); !s.ok()) return s;
    // Success is silence or "IP changed ..." / "no need to change ..."; errors are text
    // such as "No such server." or "Require 'backend/server'.".
    bool fine = reply.find_first_not_of(" \n") == std::string::npos ||
                reply.find("changed") != std::string::npos ||
                reply.find("no need to change") != std::string::npos;
    if (!fine) {
      while (!reply.empty() && reply.back() == '\n') reply.pop_back();
      return lull::Status::InvalidArgument("HAProxy refused '" + c + "': " + reply);
    }
  }
  return lull::Status::Ok();
}

}  // namespace lull::migrate
