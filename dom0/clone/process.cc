#include "dom0/clone/process.h"

#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace lull::clone {

Status ChildProcess::Spawn(const std::vector<std::string>& argv, const std::string& log) {
  if (argv.empty()) return Status::InvalidArgument("spawn: empty argv");
  if (pid_ > 0) return Status::AlreadyExists("spawn: " + name_ + " already running");
  if (access(argv[0].c_str(), X_OK) != 0) {
    return Status::NotFound("spawn: " + argv[0] + " is not an executable: " +
                            std::strerror(errno));
  }
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return Status::IoError(std::string("pipe: ") + strerror(errno));
  int logfd = open(log.empty() ? "/dev/null" : log.c_str(),
                   O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (logfd < 0) {
    close(p[0]);
    close(p[1]);
    return Status::IoError("log " + log + ": " + std::strerror(errno));
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    close(p[0]); close(p[1]); close(logfd);
    return Status::IoError(std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);  // the parent died before prctl took effect
    dup2(p[1], STDOUT_FILENO);
    dup2(logfd, STDERR_FILENO);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(p[1]);
  close(logfd);
  pid_ = pid;
  out_fd_ = p[0];
  buf_.clear();
  name_ = argv[0];
  return Status::Ok();
}

Status ChildProcess::ReadLine(int timeout_ms, std::string* line) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    size_t nl = buf_.find('\n');
    if (nl != std::string::npos) {
      *line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      return Status::Ok();
    }
    if (out_fd_ < 0) return Status::Unavailable(name_ + ": not running");
    int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                    deadline - std::chrono::steady_clock::now()).count());
    if (left <= 0) {
      return Status::Unavailable(name_ + ": no output line within " +
                                 std::to_string(timeout_ms) + " ms");
    }
    pollfd pfd{out_fd_, POLLIN, 0};
    int r = poll(&pfd, 1, left);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    char b[512];
    ssize_t n = read(out_fd_, b, sizeof b);
    if (n <= 0) return Status::Unavailable(name_ + " exited before printing a line");
    buf_.append(b, static_cast<size_t>(n));
  }
}

Status ChildProcess::Signal(int sig) const {
  if (pid_ <= 0) return Status::Unavailable(name_ + ": not running");
  if (kill(pid_, sig) != 0) {
    return Status::IoError(name_ + ": kill(" + std::to_string(sig) + "): " + strerror(errno));
  }
  return Status::Ok();
}

Status ChildProcess::Pause() {
  Status s = Signal(SIGSTOP);
  if (!s.ok()) return s;
  int st = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &st, WUNTRACED);
  } while (r < 0 && errno == EINTR);
  if (r == pid_ && WIFSTOPPED(st)) return Status::Ok();
  if (r == pid_) {  // it exited instead: reaped here
    pid_ = -1;
    if (out_fd_ >= 0) close(out_fd_);
    out_fd_ = -1;
  }
  return Status::Unavailable(name_ + " exited instead of stopping");
}

bool ChildProcess::Alive() {
  if (pid_ <= 0) return false;
  int st;
  pid_t r = waitpid(pid_, &st, WNOHANG);
  if (r == pid_ || (r < 0 && errno == ECHILD)) {
    pid_ = -1;
    if (out_fd_ >= 0) close(out_fd_);
    out_fd_ = -1;
    return false;
  }
  return true;
}

Status ChildProcess::Stop(int grace_ms) {
  if (pid_ <= 0) return Status::Ok();
  kill(pid_, SIGCONT);  // a paused (SIGSTOPped) instance cannot act on SIGTERM
  kill(pid_, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(grace_ms);
  while (Alive()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      kill(pid_, SIGKILL);
      int st;
      waitpid(pid_, &st, 0);
      pid_ = -1;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if (out_fd_ >= 0) close(out_fd_);
  out_fd_ = -1;
  return Status::Ok();
}

int FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  close(fd);
  return port;
}

}  // namespace lull::clone
