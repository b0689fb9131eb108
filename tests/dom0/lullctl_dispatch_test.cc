// lullctl hands the companion modules' verbs to their own tools, arguments unchanged,
// and passes their output and exit status through.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <string>
#include <utility>

namespace {

struct Result {
  int status;
  std::string out;
};

Result Lullctl(const std::string& args) {
  std::string cmd = std::string(LULLCTL_PATH) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  Result r{-1, ""};
  if (!p) return r;
  char buf[512];
  while (fgets(buf, sizeof buf, p)) r.out += buf;
  int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

TEST(LullctlDispatch, MigrateRunsLullMigrateWithTheSameArguments) {
  Result r = Lullctl("migrate");
  EXPECT_EQ(r.status, 2) << r.out;  // lull-migrate's usage error
  EXPECT_NE(r.out.find("lull-migrate: migrate: DOMAIN and HOST[:PORT] are required"),
            std::string::npos) << r.out;
}

TEST(LullctlDispatch, RestoreRunsLullSnapshot) {
  Result r = Lullctl("restore /nonexistent/snap");
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("lull-snapshot:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("/nonexistent/snap"), std::string::npos) << r.out;
}

TEST(LullctlDispatch, OwnVerbsStayWithLullctl) {
  Result r = Lullctl("no-such-verb");
  EXPECT_NE(r.status, 0);
  EXPECT_EQ(r.out.find("lull-"), std::string::npos) << r.out;
}

// lullctl's own numbers are checked where they are typed: "inf" would reach lulld as JSON
// null and "-1" as 2^64-1. The socket does not exist, so a flag that got through would
// fail at connect instead.
TEST(LullctlFlags, NonFiniteAndNegativeNumbersAreRefusedBeforeSending) {
  const std::pair<const char*, const char*> cases[] = {
      {"task-add backup --cpu-s 1 --deadline inf", "--deadline: 'inf' is not a finite number in [0, 1e+09]"},
      {"task-add backup --cpu-s nan", "--cpu-s: 'nan' is not a finite number"},
      {"task-add backup --cpu-s 1 --mem -inf", "--mem: '-inf' is not a finite number"},
      {"task-add backup --cpu-s 1 --max-cpus 0", "--max-cpus"},
      {"lend g1 3 --cpus inf", "--cpus: 'inf' is not a finite number in [0, 4096]"},
      {"lend g1 -1 --cpus 1", "task: '-1' is not a whole number"},
      {"revoke -- -7", "lease: '-7' is not a whole number"},
      {"top -n -1", "--iterations"},
      {"top -d nan", "--delay: 'nan' is not a finite number"},
  };
  for (const auto& [args, want] : cases) {
    Result r = Lullctl(std::string("-s /nonexistent/lulld.sock ") + args);
    EXPECT_NE(r.status, 0) << args;
    EXPECT_NE(r.out.find(want), std::string::npos) << args << ":\n" << r.out;
    EXPECT_EQ(r.out.find("cannot connect"), std::string::npos) << args << ":\n" << r.out;
  }
  // The same flags in range get as far as the socket.
  Result ok = Lullctl("-s /nonexistent/lulld.sock task-add backup --cpu-s 1 --deadline 60 --mem 0.5");
  EXPECT_NE(ok.out.find("cannot connect to lulld at /nonexistent/lulld.sock"), std::string::npos) << ok.out;
}

}  // namespace
