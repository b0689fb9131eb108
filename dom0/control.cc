#include "dom0/control.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>

namespace lull::dom0 {

namespace {

Status Errno(const std::string& what) { return Status::IoError(what + ": " + std::strerror(errno)); }

bool FillAddr(const std::string& path, sockaddr_un* a) {
  std::memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  if (path.size() >= sizeof a->sun_path) return false;
  std::memcpy(a->sun_path, path.c_str(), path.size() + 1);
  return true;
}

bool WriteAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// Reads up to a newline (or EOF); false on error or an over-long line.
bool ReadLine(int fd, std::string* line, int timeout_ms) {
  line->clear();
  char c;
  while (true) {
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, timeout_ms);
    if (r <= 0) return false;
    ssize_t n = ::recv(fd, &c, 1, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return !line->empty();
    if (c == '\n') return true;
    line->push_back(c);
    if (line->size() > (1 << 20)) return false;
  }
}

// Removes the socket a dead lulld left at `path`, and nothing else: a socket someone
// still accepts on belongs to a live lulld (binding over it would cut its clients off),
// and a file that is no socket was put there by someone else (a mistyped --socket).
Status ClearStale(const std::string& path, const sockaddr_un& a) {
  struct stat st;
  if (::lstat(path.c_str(), &st) < 0) return errno == ENOENT ? Status::Ok() : Errno("stat " + path);
  if (!S_ISSOCK(st.st_mode))
    return Status::AlreadyExists(path + " exists and is not a socket; not removing it (choose another --socket)");
  // Non-blocking: a connect to a listener whose backlog is full would otherwise wait.
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Errno("socket");
  const int r = ::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a);
  const int e = errno;
  ::close(fd);
  // EAGAIN: the listener's backlog is full, so it is alive too.
  if (r == 0 || e == EAGAIN)
    return Status::AlreadyExists("another lulld is serving " + path + " (stop it first, or choose another --socket)");
  if (e != ECONNREFUSED) { errno = e; return Errno("probe " + path); }
  if (::unlink(path.c_str()) < 0 && errno != ENOENT) return Errno("remove stale socket " + path);
  return Status::Ok();
}

}  // namespace

ControlServer::ControlServer(std::string path, Handler handler, uid_t allowed_uid)
    : path_(std::move(path)), handler_(std::move(handler)), allowed_uid_(allowed_uid) {}

ControlServer::~ControlServer() { Stop(); }

Status ControlServer::Start() {
  sockaddr_un a;
  if (!FillAddr(path_, &a)) return Status::InvalidArgument("socket path too long: " + path_);
  if (Status s = ClearStale(path_, a); !s.ok()) return s;
  listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return Errno("socket");
  // Created 0600 from the start: no window in which others could connect.
  mode_t old = ::umask(0177);
  int r = ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::umask(old);
  if (r < 0) { Status s = Errno("bind " + path_); ::close(listen_fd_); listen_fd_ = -1; return s; }
  if (::listen(listen_fd_, 16) < 0) return Errno("listen " + path_);
  if (::pipe2(wake_, O_CLOEXEC) < 0) return Errno("pipe");
  thread_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

void ControlServer::Stop() {
  if (!thread_.joinable()) return;
  char b = 1;
  (void)!::write(wake_[1], &b, 1);
  thread_.join();
  ::close(listen_fd_);
  ::close(wake_[0]);
  ::close(wake_[1]);
  listen_fd_ = wake_[0] = wake_[1] = -1;
  ::unlink(path_.c_str());
}

void ControlServer::Loop() {
  while (true) {
    pollfd p[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    int r = ::poll(p, 2, -1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 || (p[1].revents & POLLIN)) return;
    if (!(p[0].revents & POLLIN)) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    Serve(fd);
    ::close(fd);
  }
}

void ControlServer::Serve(int fd) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
      (cred.uid != 0 && cred.uid != allowed_uid_)) {
    ++rejected_;
    // Take the request off the wire first, so the client is not cut off mid-send and
    // reads the reason instead of a broken pipe.
    std::string ignored;
    (void)ReadLine(fd, &ignored, 1000);
    nlohmann::json e = {{"ok", false},
                        {"error", "permission denied: peer uid " + std::to_string(cred.uid) +
                                      " is not allowed on the lulld control socket (root only)"}};
    WriteAll(fd, e.dump() + "\n");
    return;
  }
  std::string line;
  // Requests on one connection until the client closes it (lullctl sends one).
  while (ReadLine(fd, &line, 5000)) {
    nlohmann::json reply;
    auto req = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (req.is_discarded() || !req.is_object() || !req.contains("cmd") || !req["cmd"].is_string()) {
      reply = {{"ok", false}, {"error", "bad request: expected a JSON object with a string \"cmd\""}};
    } else {
      // A request the handler did not foresee costs that request, not the daemon: this
      // thread has no caller to take an exception, and lulld would die with it.
      try {
        reply = handler_(req);
      } catch (const std::exception& e) {
        reply = {{"ok", false}, {"error", "request '" + req["cmd"].get<std::string>() + "' failed: " + e.what()}};
      }
    }
    // Names come from guests and xenstore: invalid UTF-8 is replaced, not thrown on.
    if (!WriteAll(fd, reply.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n")) return;
  }
}

Status ControlRequest(const std::string& path, const nlohmann::json& request, nlohmann::json* reply) {
  sockaddr_un a;
  if (!FillAddr(path, &a)) return Status::InvalidArgument("socket path too long: " + path);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket");
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) {
    int e = errno;
    ::close(fd);
    if (e == EACCES) return Status::PermissionDenied("cannot connect to " + path + ": permission denied (lullctl must run as root)");
    errno = e;
    return Errno("cannot connect to lulld at " + path);
  }
  Status st;
  std::string line;
  // A refused peer may find the connection closed while sending: read the reason anyway.
  bool sent = WriteAll(fd, request.dump() + "\n");
  if (!ReadLine(fd, &line, 10000)) st = sent ? Status::IoError("no reply from lulld at " + path) : Errno("send");
  else {
    *reply = nlohmann::json::parse(line, nullptr, false);
    if (reply->is_discarded()) st = Status::Corruption("lulld sent a reply that is not JSON: " + line);
  }
  ::close(fd);
  return st;
}

}  // namespace lull::dom0
