// Switch-over through a real HAProxy: the backend server follows the guest.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

#include "dom0/migrate/redirect.h"

namespace lull::migrate {
namespace {

const char* kHaproxy = "/usr/sbin/haproxy";

// HAProxy in the foreground with an admin socket, in a temporary directory; stopped and
// the directory removed when the test ends, pass or fail.
class Haproxy {
 public:
  Haproxy() {
    char tmpl[] = "/tmp/lull-migrate-haproxy-XXXXXX";
    if (!mkdtemp(tmpl)) return;
    dir_ = tmpl;
    sock_ = dir_ + "/admin.sock";
    std::ofstream cfg(dir_ + "/haproxy.cfg");
    cfg << "global\n  stats socket " << sock_ << " mode 600 level admin\n"
        << "defaults\n  mode tcp\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n"
        << "backend be\n  server primary 127.0.0.1:9\n";
    cfg.close();
    pid_ = fork();
    if (pid_ == 0) {
      execl(kHaproxy, kHaproxy, "-db", "-q", "-f", (dir_ + "/haproxy.cfg").c_str(), nullptr);
      _exit(127);
    }
    // Wait for its admin socket while it lives (bounded at 60 s: only a hang ends there;
    // a loaded machine can take seconds to start it).
    struct stat st;
    for (int i = 0; i < 6000 && stat(sock_.c_str(), &st) != 0; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  ~Haproxy() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (!dir_.empty()) std::system(("rm -rf " + dir_).c_str());
  }
  const std::string& sock() const { return sock_; }

 private:
  std::string dir_, sock_;
  pid_t pid_ = -1;
};

TEST(Redirect, PointsTheBackendServerAtTheNewHost) {
  if (access(kHaproxy, X_OK) != 0) GTEST_SKIP() << kHaproxy << " is not installed (apt-get install haproxy)";
  Haproxy h;
  std::string reply;
  ASSERT_TRUE(HaproxyCommand(h.sock(), "show servers state be", &reply).ok()) << h.sock();
  ASSERT_NE(std::string::npos, reply.find("primary")) << reply;
  ASSERT_TRUE(HaproxyRedirect(h.sock(), "be/primary", "127.0.0.1", 4242).ok());
  ASSERT_TRUE(HaproxyCommand(h.sock(), "show servers state be", &reply).ok());
  EXPECT_NE(std::string::npos, reply.find(" 4242 ")) << reply;
  lull::Status s = HaproxyRedirect(h.sock(), "be/nosuch", "127.0.0.1", 4243);
  EXPECT_EQ(lull::Status::Code::kInvalidArgument, s.code()) << s.ToString();
  EXPECT_NE(std::string::npos, s.message().find("be/nosuch")) << s.ToString();
  EXPECT_FALSE(HaproxyRedirect(h.sock(), "primary", "127.0.0.1", 1).ok());
  EXPECT_EQ(lull::Status::Code::kUnavailable,
            HaproxyRedirect("/nonexistent/admin.sock", "be/primary", "127.0.0.1", 1).code());
}

}  // namespace
}  // namespace lull::migrate
