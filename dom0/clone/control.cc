#include "dom0/clone/control.h"

#include <cerrno>
#include <cstring>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

namespace lull::clone {

namespace {
Status Address(const std::string& path, sockaddr_un* a) {
  if (path.empty() || path.size() >= sizeof(a->sun_path)) {
    return Status::InvalidArgument("control socket path '" + path + "' is empty or too long");
  }
  *a = sockaddr_un{};
  a->sun_family = AF_UNIX;
  std::strncpy(a->sun_path, path.c_str(), sizeof a->sun_path - 1);
  return Status::Ok();
}
}  // namespace

ControlServer::~ControlServer() {
  if (fd_ >= 0) {
    close(fd_);
    unlink(path_.c_str());
  }
}

Status ControlServer::Listen(const std::string& path) {
  sockaddr_un a;
  Status s = Address(path, &a);
  if (!s.ok()) return s;
  unlink(path.c_str());
  fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd_, 8) != 0) {
    return Status::IoError("control socket " + path + ": " + std::strerror(errno));
  }
  path_ = path;
  return Status::Ok();
}

void ControlServer::Poll(int timeout_ms, const std::function<std::string(const std::string&)>& fn) {
  for (int t = timeout_ms;; t = 0) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, t) <= 0) return;
    int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return;
    timeval tv{1, 0};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string req;
    char b[256];
    ssize_t n;
    while (req.find('\n') == std::string::npos && req.size() < 4096 &&
           (n = read(c, b, sizeof b)) > 0) {
      req.append(b, static_cast<size_t>(n));
    }
    req = req.substr(0, req.find('\n'));
    std::string reply = fn(req);
    if (write(c, reply.data(), reply.size()) < 0) { /* the client went away */ }
    close(c);
  }
}

Status ControlCall(const std::string& path, const std::string& request, std::string* reply) {
  sockaddr_un a;
  Status s = Address(path, &a);
  if (!s.ok()) return s;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::IoError(std::string("socket: ") + std::strerror(errno));
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    int e = errno;
    close(fd);
    return Status::Unavailable("no lull-clone server at " + path + " (" + std::strerror(e) +
                               "); start one with `lull-clone serve`");
  }
  std::string line = request + "\n";
  if (write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    close(fd);
    return Status::IoError("control socket " + path + ": write failed");
  }
  timeval tv{60, 0};  // growing a pool starts and warms processes
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  reply->clear();
  char b[4096];
  ssize_t n;
  while ((n = read(fd, b, sizeof b)) > 0) reply->append(b, static_cast<size_t>(n));
  close(fd);
  return Status::Ok();
}

}  // namespace lull::clone
