// lullctl hands the companion modules' verbs to their own tools, arguments unchanged,
// and passes their output and exit status through.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <string>

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

}  // namespace
