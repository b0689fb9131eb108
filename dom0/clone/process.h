// lull::clone::ChildProcess - a server process this module starts and must clean up.
//
// Spawn() forks and execs argv with stdout on a pipe (for the "READY <port>" handshake)
// and stderr appended to a log file. The child gets PR_SET_PDEATHSIG(SIGKILL), so a test
// or daemon that dies (even by SIGKILL) does not leave servers behind; note Linux ties
// this to the *thread* that forked, so spawn from a long-lived thread. The destructor
// stops the child (SIGCONT first, in case it is paused, then SIGTERM, then SIGKILL).
#pragma once

#include <string>
#include <sys/types.h>
#include <vector>

#include "forecast/status.h"

namespace lull::clone {

class ChildProcess {
 public:
  ChildProcess() = default;
  ~ChildProcess() { Stop(2000); }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  Status Spawn(const std::vector<std::string>& argv, const std::string& stderr_log);
  // One line from the child's stdout (without '\n'), waiting at most timeout_ms.
  Status ReadLine(int timeout_ms, std::string* line);
  Status Signal(int sig) const;
  // SIGSTOP, then waits (waitpid WUNTRACED) until the child is really stopped: kill()
  // returns before the signal is delivered, and "paused" must mean "uses no CPU".
  Status Pause();
  // True while the child has not exited (reaps it if it has).
  bool Alive();
  // SIGCONT + SIGTERM, wait up to grace_ms, then SIGKILL; reaps. OK if not running.
  Status Stop(int grace_ms);
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string buf_;
  std::string name_;
};

// A free TCP port on 127.0.0.1 (bound then released: a short race is accepted).
int FreeLoopbackPort();

}  // namespace lull::clone
