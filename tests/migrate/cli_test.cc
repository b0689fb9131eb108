// lull-migrate end to end, as lullctl will run it: a target server, a guest, a migration
// by pid, in three processes.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "dom0/migrate/process_guest.h"

namespace lull::migrate {
namespace {

// A child running `args`, its stdout readable line by line; killed when destroyed.
class Child {
 public:
  explicit Child(std::vector<std::string> args) {
    int p[2];
    if (pipe(p) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(p[1], 1);
      close(p[0]);
      close(p[1]);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(p[1]);
    out_ = fdopen(p[0], "r");
  }
  ~Child() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (out_) fclose(out_);
  }
  std::string Line() {
    char buf[1024];
    return out_ && fgets(buf, sizeof buf, out_) ? std::string(buf) : std::string();
  }
  std::string Rest() {
    std::string all, l;
    while (!(l = Line()).empty()) all += l;
    return all;
  }
  int Wait() {
    int st = 0;
    waitpid(pid_, &st, 0);
    pid_ = -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }

 private:
  pid_t pid_ = -1;
  FILE* out_ = nullptr;
};

// Numbers are checked where they are typed, before a server, a guest or a connection is
// started (each bad value below was taken before: a 0.1 ms timeout became "no timeout",
// 0.5 MiB became 0, 1e30 MiB shifted to 0, a ttl of 5e6 s wrapped its uint32 ms, 0x10
// was port 16, 7499.9 port 7499 and release 1.9 released reservation 1).
TEST(Cli, BadNumbersAreNamedBeforeAnythingStarts) {
  const std::pair<const char*, const char*> cases[] = {
      {"serve --io-timeout 0.0001", "--io-timeout (seconds) '0.0001' is not a number in [0.001, 86400]"},
      {"serve --io-timeout nan", "--io-timeout (seconds) 'nan'"},
      {"serve --port 0x10", "--port (0: any free port) '0x10' is not a whole number in [0, 65535]"},
      {"serve --port 7499.9", "--port (0: any free port) '7499.9' is not a whole number"},
      {"serve --mem-limit 0.5", "--mem-limit (MiB) '0.5' is not a whole number in [1, 16777216]"},
      {"serve --mem-limit 1e30", "--mem-limit (MiB) '1e30'"},
      {"guest --mib 0.5", "--mib '0.5' is not a whole number"},
      {"reserve 127.0.0.1:1 5 --ttl 5000000", "--ttl (seconds) '5000000' is not a number in [0, 4294967.295]"},
      {"reserve 127.0.0.1:1 5.5", "MIB '5.5' is not a whole number"},
      {"release 127.0.0.1:1 1.9", "ID '1.9' is not a whole number"},
      {"migrate 1 127.0.0.1:1 --max-seconds inf", "--max-seconds 'inf' is not a number in [0, 10000000]"},
      {"migrate 1 127.0.0.1:1 --rate-limit -1", "--rate-limit (Mbit/s) '-1'"},
  };
  for (const auto& [args, want] : cases) {
    // Bounded only to end a hang: a value wrongly taken would start a server.
    FILE* p = popen(("timeout -s KILL 60 " LULL_MIGRATE_BIN " " + std::string(args) + " 2>&1").c_str(), "r");
    ASSERT_NE(p, nullptr);
    std::string out;
    char buf[512];
    while (fgets(buf, sizeof buf, p)) out += buf;
    const int st = pclose(p);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 2) << args << ": " << out;
    EXPECT_NE(out.find("lull-migrate: " + std::string(want)), std::string::npos) << args << ": " << out;
  }
}

TEST(Cli, ServeGuestMigrate) {
  lull::Status probe = ProcessGuest::Probe();
  if (!probe.ok()) GTEST_SKIP() << "no dirty tracking here: " << probe.ToString();
  Child serve({LULL_MIGRATE_BIN, "serve", "--bind", "127.0.0.1", "--port", "0"});
  std::string banner = serve.Line();
  auto colon = banner.find("127.0.0.1:");
  ASSERT_NE(std::string::npos, colon) << banner;
  std::string port = std::to_string(std::stoi(banner.substr(colon + 10)));
  Child guest({LULL_MIGRATE_BIN, "guest", "--mib", "16", "--workload", "rate=3000 hot=0.1"});
  std::string pid = guest.Line();
  ASSERT_FALSE(pid.empty());
  pid.pop_back();
  Child mig({LULL_MIGRATE_BIN, "migrate", pid, "127.0.0.1:" + port});
  std::string out = mig.Rest();
  EXPECT_EQ(0, mig.Wait()) << out;
  EXPECT_NE(std::string::npos, out.find("precopy   round  0")) << out;
  EXPECT_NE(std::string::npos, out.find("committed")) << out;
  EXPECT_NE(std::string::npos, out.find("migrated: guest " + pid)) << out;
  EXPECT_EQ(0, guest.Wait()) << "the guest command ends when its guest moved away";
  EXPECT_NE(std::string::npos, serve.Line().find("guest arrived")) << "target saw no guest";

  // Bad usage and bad targets are named.
  Child bad({LULL_MIGRATE_BIN, "migrate", "notapid", "127.0.0.1"});
  EXPECT_EQ(2, bad.Wait());
  Child nohost({LULL_MIGRATE_BIN, "migrate", "1", "127.0.0.1:99999"});
  EXPECT_EQ(1, nohost.Wait());
}

}  // namespace
}  // namespace lull::migrate
