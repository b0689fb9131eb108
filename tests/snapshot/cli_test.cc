// The lull-snapshot CLI (lullctl's snapshot/restore verbs): exit status and messages.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "dom0/snapshot/store.h"
#include "tests/snapshot/test_util.h"

namespace lull::snapshot {
namespace {

struct CliRun {
  int status;
  std::string out;
};

std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

CliRun Cli(const std::string& args) {
  const std::string cmd = std::string(LULL_SNAPSHOT_CLI) + " " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  CliRun r{-1, ""};
  if (!p) return r;
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof(buf), p)) r.out.append(buf, n);
  const int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

TEST(Cli, SnapshotAndRestoreOfADomainWithProgressAndErrors) {
  ScratchDir d;
  const std::string dom = "clitest" + std::to_string(::getpid());
  struct Cleanup {
    std::string path;
    ~Cleanup() { std::filesystem::remove(path); }
  } cleanup{"/dev/shm/lull-guest-" + dom};
  CliRun r = Cli("guest " + dom + " --mib 8");
  ASSERT_EQ(r.status, 0) << r.out;
  r = Cli("snapshot " + dom + " --dir " + d.path());
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("generation 1 (base)"), std::string::npos) << r.out;
  const std::string g1 = GenerationPath(d.path(), 1);
  // A default (prefetch) restore with no prediction yet prefetches nothing, so its faults
  // are the whole first-touch set: it records them, and the next snapshot learns.
  r = Cli("restore " + g1 + " --queries 500 --seed 3");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("trace 1 in"), std::string::npos) << r.out;
  std::filesystem::remove(d.path() + "/touch.txt");
  r = Cli("restore " + g1 + " --mode lazy --queries 500");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("guest answered 500/500 queries"), std::string::npos) << r.out;
  EXPECT_TRUE(std::filesystem::exists(d.path() + "/touch.txt"));
  // The next snapshot lays out the critical set learnt from that restore.
  r = Cli("snapshot " + dom + " --dir " + d.path() + " --base");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("critical set:"), std::string::npos) << r.out;
  // ... with its codec chosen from the disk's bandwidth, measured on generation 1.
  EXPECT_NE(r.out.find("critical region: "), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("(disk 0 MiB/s"), std::string::npos) << "bandwidth not measured: " << r.out;
  r = Cli("restore " + GenerationPath(d.path(), 2) + " --queries 500");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("prefetch"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("eta"), std::string::npos) << "progress with the time left: " << r.out;
  // Only lazy restores add to the history: a prefetch restore's faults are its misses.
  const std::string touch = d.path() + "/touch.txt";
  auto lines = [](const std::string& path) {
    std::ifstream f(path);
    int n = 0;
    for (std::string l; std::getline(f, l);) n += !l.empty();
    return n;
  };
  EXPECT_EQ(lines(touch), 1) << "the prefetch restore wrote its misses as a trace";
  EXPECT_EQ(r.out.find("first touches:"), std::string::npos) << r.out;
  r = Cli("restore " + GenerationPath(d.path(), 2) + " --mode lazy --queries 500 --seed 7");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("trace 2 in"), std::string::npos) << r.out;
  EXPECT_EQ(lines(touch), 2);
  // --to writes the restored memory as another domain's: byte for byte the snapshotted
  // guest's. A bad target name is refused before anything is restored or learnt.
  const std::string to = dom + "-to";
  Cleanup to_cleanup{"/dev/shm/lull-guest-" + to};
  r = Cli("restore " + GenerationPath(d.path(), 2) + " --queries 100 --to " + to);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("memory written to /dev/shm/lull-guest-" + to), std::string::npos) << r.out;
  EXPECT_TRUE(ReadAll("/dev/shm/lull-guest-" + to) == ReadAll("/dev/shm/lull-guest-" + dom));
  EXPECT_FALSE(std::filesystem::exists("/dev/shm/lull-guest-" + to + ".restoring"));
  const std::string before = ReadAll(touch);
  r = Cli("restore " + GenerationPath(d.path(), 2) + " --mode lazy --queries 100 --to a/b");
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("domain name 'a/b' must be non-empty, without '/'"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("restored "), std::string::npos) << "restored before checking --to: " << r.out;
  EXPECT_EQ(ReadAll(touch), before) << "a refused restore learnt";
  // Tuning options reach the restore; out of range they are usage errors naming them.
  // The restore says what it did with them: the stream's geometry, the decoders' nice
  // level (this process's own plus --decoder-nice), and when the guest started.
  const int own = ::getpriority(PRIO_PROCESS, 0);
  r = Cli("restore " + GenerationPath(d.path(), 2) +
          " --queries 500 --first 50 --serial --decoder-nice 0 --block-kib 128 --qd 4");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("guest answered 500/500 queries"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("stream: 128 KiB blocks, queue depth 4, decoders at nice " +
                       std::to_string(own) + "; guest started after the whole prefetch (--serial)"),
            std::string::npos) << r.out;
  EXPECT_NE(r.out.find("before the first work: "), std::string::npos) << r.out;
  r = Cli("restore " + GenerationPath(d.path(), 2) + " --queries 500 --decoder-nice 7");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("stream: 128 KiB blocks, queue depth 8, decoders at nice " +
                       std::to_string(std::min(own + 7, 19)) + "; guest started at once, pipelined"),
            std::string::npos) << r.out;
  r = Cli("restore " + GenerationPath(d.path(), 2) + " --block-kib 6");
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_NE(r.out.find("--block-kib must be a multiple of 4, got 6"), std::string::npos) << r.out;
  r = Cli("restore " + GenerationPath(d.path(), 2) + " --qd 0");
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_NE(r.out.find("--qd"), std::string::npos) << r.out;
  r = Cli("restore " + GenerationPath(d.path(), 2) + " --decoder-nice 40");
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_NE(r.out.find("--decoder-nice"), std::string::npos) << r.out;
  r = Cli("restore " + GenerationPath(d.path(), 2) + " --first 0");
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_NE(r.out.find("--first"), std::string::npos) << r.out;
  // A damaged history is named, kept as it is, and neither command fails for it.
  {
    std::ofstream f(touch, std::ios::app);
    f << "0.5 3 oops\n";
  }
  const std::string damaged = ReadAll(touch);
  r = Cli("restore " + GenerationPath(d.path(), 2) + " --mode lazy --queries 500");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("ignoring the first-touch history"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("line 3 token"), std::string::npos) << r.out;
  EXPECT_EQ(ReadAll(touch), damaged) << "the damaged history was rewritten";
  r = Cli("snapshot " + dom + " --dir " + d.path());
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("ignoring the first-touch history"), std::string::npos) << r.out;
  EXPECT_EQ(ReadAll(touch), damaged);
  // Bad input: a truncated file, an unknown domain, a bad mode, a bad size.
  std::filesystem::resize_file(g1, FileSize(g1) / 2);
  r = Cli("restore " + g1);
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("truncated at offset"), std::string::npos) << r.out;
  r = Cli("snapshot no-such-domain-" + dom + " --dir " + d.path());
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("domain no-such-domain-"), std::string::npos) << r.out;
  r = Cli("restore " + g1 + " --mode fast");
  EXPECT_EQ(r.status, 2) << r.out;
  // A query count out of range (a negative one included) is a usage error naming it.
  r = Cli("restore " + GenerationPath(d.path(), 2) + " --queries -1");
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_NE(r.out.find("--queries"), std::string::npos) << r.out;
  // A guest size out of range is a usage error naming the option and its range.
  r = Cli("guest bad-size-" + dom + " --mib 0");
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_NE(r.out.find("--mib: Value 0 not in range 1 to 1048576"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace lull::snapshot
