// The undo journal and lull-guard (dom0/xen_guard.h) on the host, with an applier that
// writes what it restores to a file (the guard restores in another process), and
// lulld's --host flag / host.backend key. The libxenctrl calls themselves run in QEMU
// (tests/xen/dom0-stock-lulld.sh).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "dom0/config.h"
#include "dom0/xen_guard.h"

namespace lull::dom0 {
namespace {

namespace fs = std::filesystem;

std::string Slurp(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct TempDir {
  fs::path dir;
  TempDir() {
    dir = fs::temp_directory_path() / ("lull_guard_" + std::to_string(getpid()) + "_" +
                                       ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~TempDir() { fs::remove_all(dir); }
  std::string operator/(const char* f) const { return (dir / f).string(); }
};

UndoEntry Entry(DomId d, uint32_t weight, uint32_t cap) {
  UndoEntry e;
  e.domid = d;
  e.uuid = "00000000-0000-0000-0000-00000000000" + std::to_string(d % 10);
  e.name = "g" + std::to_string(d);
  e.has_sched = true;
  e.weight = weight;
  e.cap = cap;
  return e;
}

// Appends "domid weight cap target" for each restore; gone domains answer NotFound.
class FileApplier : public UndoApplier {
 public:
  explicit FileApplier(std::string path, std::vector<DomId> gone = {}, std::vector<DomId> broken = {})
      : path_(std::move(path)), gone_(std::move(gone)), broken_(std::move(broken)) {}
  Status Restore(const UndoEntry& e) override {
    for (DomId d : gone_) if (d == e.domid) return Status::NotFound("domain gone");
    for (DomId d : broken_) if (d == e.domid) return Status::IoError("hypercall failed");
    std::ofstream(path_, std::ios::app) << e.domid << " " << e.weight << " " << e.cap << " " << e.target_kib << "\n";
    return Status::Ok();
  }

 private:
  std::string path_;
  std::vector<DomId> gone_, broken_;
};

// Waits for a condition another process brings about; never asserts on time. The bound
// (60 s) only ends a hang: a loaded machine can take seconds to run the guard.
bool WaitFor(const std::function<bool()>& f) {
  for (int i = 0; i < 6000; ++i) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return f();
}

TEST(UndoJournal, FormatParseRoundTrip) {
  UndoEntry a = Entry(3, 256, 0);
  a.deadline_ns = 123456789;
  a.has_target = true;
  a.target_kib = 131072;
  a.has_maxmem = true;
  a.maxmem_kib = 132096;
  a.affinity = {{0, 0x3}, {1, 0x2}};
  UndoEntry b = Entry(7, 512, 40);
  std::vector<UndoEntry> out;
  ASSERT_TRUE(ParseJournal(FormatJournal({a, b}), "j", &out).ok());
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].domid, 3u);
  EXPECT_EQ(out[0].uuid, a.uuid);
  EXPECT_EQ(out[0].deadline_ns, 123456789u);
  EXPECT_EQ(out[0].weight, 256u);
  EXPECT_TRUE(out[0].has_target);
  EXPECT_EQ(out[0].target_kib, 131072u);
  EXPECT_EQ(out[0].maxmem_kib, 132096u);
  ASSERT_EQ(out[0].affinity.size(), 2u);
  EXPECT_EQ(out[0].affinity[1].second, 0x2u);
  EXPECT_EQ(out[1].cap, 40u);
  EXPECT_FALSE(out[1].has_target);
}

TEST(UndoJournal, CorruptJournalIsAClearErrorAndIsLeftAlone) {
  TempDir t;
  const std::string j = t / "undo.journal";
  ASSERT_TRUE(WriteJournal(j, {Entry(3, 256, 0), Entry(4, 256, 50)}).ok());
  std::string text = Slurp(j);
  std::string bad = text;
  bad.replace(bad.find("cap=50"), 6, "cap=10");  // one value changed: the checksum catches it
  std::ofstream(j, std::ios::binary | std::ios::trunc) << bad;
  std::vector<UndoEntry> es;
  Status s = ReadJournal(j, &es);
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_NE(s.message().find(j + ":4: checksum mismatch"), std::string::npos) << s.message();
  // Replay refuses, restores nothing and keeps the file byte for byte.
  FileApplier a(t / "restored");
  size_t n = 9;
  EXPECT_EQ(ReplayJournal(j, &a, true, 0, &n).code(), Status::Code::kCorruption);
  EXPECT_EQ(n, 0u);
  EXPECT_FALSE(fs::exists(t / "restored"));
  EXPECT_EQ(Slurp(j), bad);
  // Recording into it is refused too (it would overwrite what an operator needs).
  UndoJournal uj(j);
  EXPECT_EQ(uj.Record(Entry(5, 256, 0), 0).code(), Status::Code::kCorruption);
  EXPECT_EQ(Slurp(j), bad);
}

TEST(UndoJournal, MalformedLinesNameTheLine) {
  struct Case { const char* text; const char* want; } cases[] = {
      {"", "empty journal"},
      {"lull-undo 1\ndom 3 uuid=u name=g deadline_ns=0 weight=256 cap=0\n", "torn journal (no end line after line 2)"},
      {"lull-undo 1\ndom 3 uuid=u name=g deadline_ns=0 weight=25", "j:2: torn journal (last line has no newline)"},
      {"lull-undo 2\nend 0 0\n", "j:1: not an undo journal"},
      {"lull-undo 1\ndom x uuid=u\nend 1 0\n", "j:2: domain id 'x'"},
      {"lull-undo 1\ndom 3 uuid=u weight=70000 cap=0\nend 1 0\n", "j:2: weight = '70000' is out of range"},
      {"lull-undo 1\ndom 3 uuid=u weight=7\nend 1 0\n", "j:2: weight and cap must be recorded together"},
      {"lull-undo 1\ndom 3 uuid=u colour=red\nend 1 0\n", "j:2: unknown field 'colour'"},
      {"lull-undo 1\nend 2 0\n", "j:2: end line says 2 domains, the journal has 0"},
  };
  for (const auto& c : cases) {
    std::vector<UndoEntry> es;
    Status s = ParseJournal(c.text, "j", &es);
    EXPECT_EQ(s.code(), Status::Code::kCorruption) << c.text;
    EXPECT_NE(s.message().find(c.want), std::string::npos) << "got: " << s.message() << "\nwant: " << c.want;
    EXPECT_TRUE(es.empty());
  }
}

TEST(UndoJournal, ATornRewriteLosesNothing) {
  TempDir t;
  const std::string j = t / "undo.journal";
  ASSERT_TRUE(WriteJournal(j, {Entry(3, 256, 0)}).ok());
  // A crash in the middle of the next rewrite leaves a torn .tmp; the journal is intact.
  std::string next = FormatJournal({Entry(3, 256, 0), Entry(4, 512, 20)});
  std::ofstream(j + ".tmp", std::ios::binary) << next.substr(0, next.size() / 2);
  std::vector<UndoEntry> es;
  ASSERT_TRUE(ReadJournal(j, &es).ok());
  ASSERT_EQ(es.size(), 1u);
  EXPECT_EQ(es[0].domid, 3u);
  // The next save replaces the leftover.
  UndoJournal uj(j);
  ASSERT_TRUE(uj.Record(Entry(4, 512, 20), 0).ok());
  ASSERT_TRUE(ReadJournal(j, &es).ok());
  EXPECT_EQ(es.size(), 2u);
  EXPECT_FALSE(fs::exists(j + ".tmp"));
}

TEST(UndoJournal, TheFirstOriginalWinsAndDeadlinesOnlyGrow) {
  TempDir t;
  UndoJournal uj(t / "undo.journal");
  ASSERT_TRUE(uj.Record(Entry(3, 256, 0), 1000).ok());
  // lulld's own later value must never replace the original.
  ASSERT_TRUE(uj.Record(Entry(3, 100, 10), 500).ok());
  UndoEntry t2 = Entry(3, 0, 0);
  t2.has_sched = false;
  t2.has_target = true;
  t2.target_kib = 65536;
  ASSERT_TRUE(uj.Record(t2, 3000).ok());
  UndoEntry e;
  ASSERT_TRUE(uj.Get(3, &e).ok());
  EXPECT_EQ(e.weight, 256u);
  EXPECT_EQ(e.cap, 0u);
  EXPECT_TRUE(e.has_target);
  EXPECT_EQ(e.target_kib, 65536u);
  EXPECT_EQ(e.deadline_ns, 3000u);
  ASSERT_TRUE(uj.SetDeadline(3, 200).ok());  // leases renewed shorter / ended
  ASSERT_TRUE(uj.Get(3, &e).ok());
  EXPECT_EQ(e.deadline_ns, 200u);
  EXPECT_EQ(uj.SetDeadline(9, 1).code(), Status::Code::kNotFound);
  // Another domain under the same domid is not silently merged.
  UndoEntry other = Entry(3, 256, 0);
  other.uuid = "ffffffff-0000-0000-0000-000000000000";
  EXPECT_EQ(uj.Record(other, 0).code(), Status::Code::kAlreadyExists);
}

TEST(UndoJournal, ReplayRestoresExactlyAndKeepsWhatFailed) {
  TempDir t;
  const std::string j = t / "undo.journal";
  UndoEntry a = Entry(3, 256, 0);
  a.has_target = true;
  a.target_kib = 131072;
  ASSERT_TRUE(WriteJournal(j, {a, Entry(4, 512, 20), Entry(5, 256, 0), Entry(6, 300, 0)}).ok());
  FileApplier ap(t / "restored", /*gone=*/{5}, /*broken=*/{6});
  size_t n = 0;
  Status s = ReplayJournal(j, &ap, true, 0, &n);
  EXPECT_EQ(s.code(), Status::Code::kIoError);  // domain 6's restore failed
  EXPECT_EQ(n, 2u);
  EXPECT_EQ(Slurp(t / "restored"), "3 256 0 131072\n4 512 20 0\n");
  std::vector<UndoEntry> left;
  ASSERT_TRUE(ReadJournal(j, &left).ok());
  ASSERT_EQ(left.size(), 1u);  // 5 is gone (dropped), 6 is kept for the next attempt
  EXPECT_EQ(left[0].domid, 6u);
}

TEST(UndoJournal, ReplayOfExpiredOnlyLeavesTheRest) {
  TempDir t;
  const std::string j = t / "undo.journal";
  UndoEntry past = Entry(3, 256, 0), future = Entry(4, 256, 0), none = Entry(5, 256, 0);
  past.deadline_ns = 100;
  future.deadline_ns = 10000;
  ASSERT_TRUE(WriteJournal(j, {past, future, none}).ok());
  FileApplier ap(t / "restored");
  size_t n = 0;
  ASSERT_TRUE(ReplayJournal(j, &ap, false, 5000, &n).ok());
  EXPECT_EQ(n, 1u);
  EXPECT_EQ(Slurp(t / "restored"), "3 256 0 0\n");
  ASSERT_TRUE(ReplayJournal(j, &ap, true, 5000, &n).ok());
  EXPECT_EQ(n, 2u);
  EXPECT_FALSE(fs::exists(j));  // empty journal: removed
}

TEST(UndoJournal, UndoRestoresOneDomain) {
  TempDir t;
  UndoJournal uj(t / "undo.journal");
  ASSERT_TRUE(uj.Record(Entry(3, 256, 0), 0).ok());
  ASSERT_TRUE(uj.Record(Entry(4, 128, 30), 0).ok());
  FileApplier ap(t / "restored");
  ASSERT_TRUE(uj.Undo(4, &ap).ok());
  EXPECT_EQ(Slurp(t / "restored"), "4 128 30 0\n");
  ASSERT_TRUE(uj.Undo(4, &ap).ok());  // already restored (by the guard): nothing to do
  EXPECT_EQ(Slurp(t / "restored"), "4 128 30 0\n");
  std::vector<UndoEntry> es;
  ASSERT_TRUE(uj.Entries(&es).ok());
  ASSERT_EQ(es.size(), 1u);
  EXPECT_EQ(es[0].domid, 3u);
}

// lull-guard, forked by a stand-in for lulld: SIGKILL of that process makes the guard
// restore everything it journaled.
TEST(LullGuard, SigkillOfTheParentRestoresEveryDomain) {
  TempDir t;
  const std::string j = t / "undo.journal", restored = t / "restored";
  pid_t lulld = fork();
  ASSERT_GE(lulld, 0);
  if (lulld == 0) {
    Guard g;
    Status s = g.Start(j, [&]() -> std::unique_ptr<UndoApplier> { return std::make_unique<FileApplier>(restored); });
    if (!s.ok()) _exit(2);
    UndoJournal uj(j);
    if (!uj.Record(Entry(3, 256, 0), MonotonicNs() + 3600ull * 1000000000ull).ok()) _exit(3);
    if (!uj.Record(Entry(4, 512, 25), 0).ok()) _exit(4);
    std::ofstream(t / "ready") << "1";
    for (;;) pause();
  }
  ASSERT_TRUE(WaitFor([&] { return fs::exists(t / "ready"); }));
  // Nothing is undone while lulld lives and the deadlines are ahead.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(fs::exists(restored));
  ASSERT_EQ(kill(lulld, SIGKILL), 0);
  int st;
  ASSERT_EQ(waitpid(lulld, &st, 0), lulld);
  ASSERT_TRUE(WaitFor([&] { return !fs::exists(j); })) << "the guard did not replay the journal";
  std::string r = Slurp(restored);
  EXPECT_NE(r.find("3 256 0 0\n"), std::string::npos) << r;
  EXPECT_NE(r.find("4 512 25 0\n"), std::string::npos) << r;
}

// A hung lulld stops renewing: the guard undoes each domain at its deadline while lulld
// still lives.
TEST(LullGuard, ExpiredDeadlinesAreUndoneWhileTheParentLives) {
  TempDir t;
  const std::string j = t / "undo.journal", restored = t / "restored";
  Guard g;
  const std::string rpath = restored;
  ASSERT_TRUE(g.Start(j, [rpath]() -> std::unique_ptr<UndoApplier> { return std::make_unique<FileApplier>(rpath); }, 20).ok());
  UndoJournal uj(j);
  ASSERT_TRUE(uj.Record(Entry(3, 256, 0), MonotonicNs() + 200ull * 1000000ull).ok());
  ASSERT_TRUE(uj.Record(Entry(4, 512, 25), 0).ok());  // no deadline: stays while we live
  UndoEntry e;
  // The guard restores, then drops the entry from the journal.
  ASSERT_TRUE(WaitFor([&] { return uj.Get(3, &e).code() == Status::Code::kNotFound; }));
  EXPECT_NE(Slurp(restored).find("3 256 0 0\n"), std::string::npos);
  ASSERT_TRUE(uj.Get(4, &e).ok());
  EXPECT_EQ(Slurp(restored).find("4 512"), std::string::npos);
  g.Stop();  // lulld exits: the rest is restored and the guard is reaped
  EXPECT_NE(Slurp(restored).find("4 512 25 0\n"), std::string::npos);
  EXPECT_FALSE(fs::exists(j));
}

TEST(XenConfig, HostBackendKeyAndItsRules) {
  LulldConfig c;
  ASSERT_TRUE(ParseConfig("[host]\nbackend = \"xen\"\ntask_domain = \"g3\"\nstep_s = 0.1\nwarmup_s = 30\n"
                          "undo_journal = \"/tmp/j\"\nhost_pressure_samples = 0\n[engine]\ncontrol_period_s = 0.25\nlease_period_s = 2\n",
                          "lulld.toml", &c).ok());
  EXPECT_EQ(c.backend, "xen");
  EXPECT_EQ(c.task_domain, "g3");
  EXPECT_EQ(c.undo_journal, "/tmp/j");
  EXPECT_DOUBLE_EQ(c.warmup_s, 30);
  EXPECT_EQ(c.host_pressure_samples, 0);
  EXPECT_EQ(LulldConfig{}.host_pressure_samples, 3);
  EXPECT_DOUBLE_EQ(c.engine.control_period_s, 0.25);
  // Round trip through lullctl config's TOML.
  LulldConfig back;
  ASSERT_TRUE(ParseConfig(ConfigToToml(c), "config", &back).ok());
  EXPECT_EQ(back.task_domain, "g3");
  EXPECT_DOUBLE_EQ(back.warmup_s, 30);
  EXPECT_EQ(back.host_pressure_samples, 0);

  LulldConfig d;
  Status s = ParseConfig("[host]\nbackend = \"xen\"\n", "lulld.toml", &d);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("host.task_domain must name the management-task domain"), std::string::npos) << s.message();
  s = ParseConfig("[host]\nbackend = \"xen\"\ntask_domain = \"g3\"\n[engine]\npolicy = \"oracle\"\n", "lulld.toml", &d);
  EXPECT_NE(s.message().find("simulated host only"), std::string::npos) << s.message();
  s = ParseConfig("[host]\nwarmup_s = -1\n", "lulld.toml", &d);
  EXPECT_NE(s.message().find("lulld.toml:2: host.warmup_s = -1"), std::string::npos) << s.message();
  s = ParseConfig("[host]\nhost_pressure_samples = -2\n", "lulld.toml", &d);
  EXPECT_NE(s.message().find("host.host_pressure_samples = -2"), std::string::npos) << s.message();
}

// lulld's --host flag, through the real binary.
// Bounded (only to end a hang): a flag wrongly accepted would leave lulld running.
std::string RunLulld(const std::string& args, int* rc) {
  FILE* p = popen(("timeout -s KILL 120 " + std::string(LULLD_PATH) + " " + args + " 2>&1").c_str(), "r");
  std::string out;
  char buf[512];
  while (p && fgets(buf, sizeof buf, p)) out += buf;
  int st = p ? pclose(p) : -1;
  *rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

TEST(LulldHostFlag, UnknownHostAndMissingTaskDomainAreNamed) {
  int rc;
  std::string out = RunLulld("--host kvm", &rc);
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("host.backend = \"kvm\": must be \"sim\" or \"xen\""), std::string::npos) << out;
  out = RunLulld("--host xen", &rc);
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("host.task_domain must name"), std::string::npos) << out;
  out = RunLulld("--host xen --compare --task-domain g3", &rc);
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("--compare runs on the simulated host only"), std::string::npos) << out;
  // Flags keep the config file's ranges.
  out = RunLulld("--host-pressure-samples -1", &rc);
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("--host-pressure-samples"), std::string::npos) << out;
  out = RunLulld("--warmup -5", &rc);
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("--warmup"), std::string::npos) << out;
  // Every ranged flag: a value outside its key's range is refused before anything starts,
  // naming the flag (these were accepted before: --speed -5 ran, --step 0 never stepped).
  for (const char* bad : {"--speed -5", "--step 0", "--step 61", "--control-period 0.01",
                          "--lease-period 0", "--cpus -1", "--cpus 5000", "--socket-uid -1",
                          "--guests 0", "--days 0", "--seed -1", "--speed nan", "--speed inf",
                          "--step nan"}) {
    out = RunLulld(std::string(bad) + " --exit-at-end --no-progress", &rc);
    EXPECT_NE(rc, 0) << bad << ": " << out;
    const std::string flag = std::string(bad).substr(0, std::string(bad).find(' '));
    EXPECT_NE(out.find(flag + ": '"), std::string::npos) << bad << ": " << out;
    EXPECT_NE(out.find("' is not a finite number in ["), std::string::npos) << bad << ": " << out;
  }
  // A port with junk after it was read as the number before the junk.
  out = RunLulld("--metrics 127.0.0.1:9477x --exit-at-end --no-progress", &rc);
  EXPECT_NE(rc, 0) << out;
  EXPECT_NE(out.find("daemon.metrics_listen = \"127.0.0.1:9477x\": port '9477x' is not a number"),
            std::string::npos) << out;
}

TEST(LulldHostFlag, XenOnAHostWithoutXenFailsClearlyAndTouchesNothing) {
  if (fs::exists("/proc/xen/privcmd") || fs::exists("/dev/xen/privcmd")) GTEST_SKIP() << "this is a Xen dom0";
  TempDir t;
  int rc;
  std::string out = RunLulld("--host xen --task-domain g3 --undo-journal " + (t / "j/undo.journal") +
                            " --socket " + (t / "s.sock") + " --metrics ''",
                        &rc);
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("xc_interface_open"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(t / "j/undo.journal"));
}

}  // namespace
}  // namespace lull::dom0
