// The migration engine for real: process-backed guests, dirty tracking by the kernel,
// two endpoints over loopback TCP, and every rollback path.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "dom0/migrate/codec.h"
#include "dom0/migrate/process_guest.h"
#include "dom0/migrate/source.h"
#include "dom0/migrate/target.h"

namespace lull::migrate {
namespace {

constexpr size_t kMiB = 1 << 20;

#define REQUIRE_TRACKING()                                                         \
  do {                                                                             \
    lull::Status probe = ProcessGuest::Probe();                                    \
    if (!probe.ok()) GTEST_SKIP() << "no dirty tracking here: " << probe.ToString(); \
  } while (0)

void SleepMs(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

// Waits for something another thread or process brings about. The bound only ends a
// hang: it is far above any wait seen on a loaded machine, and a pass returns at once.
bool Eventually(const std::function<bool()>& f, int bound_ms = 60000) {
  for (int waited = 0; waited < bound_ms; waited += 10) {
    if (f()) return true;
    SleepMs(10);
  }
  return f();
}

// 'R'/'S' running or sleeping, 'T' stopped, 0 gone.
char State(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), {});
  auto rp = s.rfind(')');
  return rp == std::string::npos || rp + 2 >= s.size() ? 0 : s[rp + 2];
}

// Whether the guest writes again (it is running): polls its dirty pages until it does
// (a loaded machine may not schedule it for a while; a stopped guest never writes).
bool WritesAgain(ProcessGuest* g) {
  std::vector<uint32_t> d;
  if (!g->CollectDirty(&d).ok()) return false;
  bool failed = false;
  return Eventually([&] {
           failed = failed || !g->CollectDirty(&d).ok();
           return failed || !d.empty();
         }) &&
         !failed;
}

std::unique_ptr<ProcessGuest> Guest(size_t mib, uint64_t rate, double hot, uint32_t write = 64) {
  WorkloadConfig w;
  w.rate = rate;
  w.hot_fraction = hot;
  w.write_bytes = write;
  std::unique_ptr<ProcessGuest> g;
  lull::Status s = ProcessGuest::Spawn(mib * kMiB, w, FillConfig{}, &g);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return g;
}

struct Target {
  ProcessGuestFactory factory;
  std::unique_ptr<MigrationServer> server;
  explicit Target(ServerOptions o = {}) {
    lull::Status s = MigrationServer::Start(&factory, o, &server);
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
};

TEST(ProcessGuest, TracksWritesAndPauses) {
  REQUIRE_TRACKING();
  auto g = Guest(8, 5000, 0.05);
  ASSERT_TRUE(g);
  std::vector<uint32_t> d;
  ASSERT_TRUE(g->CollectDirty(&d).ok());
  EXPECT_EQ(g->pages(), d.size()) << "the first scan reports every page";
  d.clear();
  Eventually([&] {  // until a few writes landed
    std::vector<uint32_t> more;
    EXPECT_TRUE(g->CollectDirty(&more).ok());
    d.insert(d.end(), more.begin(), more.end());
    return d.size() > 10;
  });
  const size_t hot = static_cast<size_t>(g->pages() * 0.05);
  EXPECT_GT(d.size(), 10u);
  for (uint32_t p : d) ASSERT_LT(p, hot) << "a page outside the hot set was reported dirty";
  ASSERT_TRUE(g->Pause().ok());
  EXPECT_EQ('T', State(g->pid()));
  ASSERT_TRUE(g->CollectDirty(&d).ok());
  SleepMs(30);
  ASSERT_TRUE(g->CollectDirty(&d).ok());
  EXPECT_TRUE(d.empty()) << "a paused guest wrote " << d.size() << " pages";
  ASSERT_TRUE(g->Resume().ok());
  EXPECT_TRUE(WritesAgain(g.get()));
}

TEST(ProcessGuest, AttachFindsGuestByPid) {
  REQUIRE_TRACKING();
  auto g = Guest(4, 2000, 0.5);
  ASSERT_TRUE(g);
  std::unique_ptr<ProcessGuest> a;
  ASSERT_TRUE(ProcessGuest::Attach(g->pid(), &a).ok());
  EXPECT_EQ(g->pages(), a->pages());
  EXPECT_EQ(g->Describe(), a->Describe());
  EXPECT_EQ(0, std::memcmp(g->data() + 4096, a->data() + 4096, 4096));
  EXPECT_TRUE(WritesAgain(a.get()));
  std::unique_ptr<ProcessGuest> none;
  lull::Status s = ProcessGuest::Attach(getpid(), &none);
  EXPECT_EQ(lull::Status::Code::kNotFound, s.code()) << s.ToString();
}

TEST(Workload, ParsesAndRejects) {
  WorkloadConfig w;
  ASSERT_TRUE(WorkloadConfig::Parse("rate=5 write=128 hot=0.5 seed=9 phases=10:1/20:300", &w).ok());
  EXPECT_EQ(5u, w.rate);
  ASSERT_EQ(2u, w.phases.size());
  EXPECT_EQ(300u, w.phases[1].rate);
  WorkloadConfig back;
  ASSERT_TRUE(WorkloadConfig::Parse(w.ToString(), &back).ok());
  EXPECT_EQ(w.ToString(), back.ToString());
  lull::Status s = WorkloadConfig::Parse("rate=fast", &w);
  EXPECT_NE(std::string::npos, s.message().find("rate 'fast'")) << s.ToString();
  EXPECT_FALSE(WorkloadConfig::Parse("hot=2", &w).ok());
  EXPECT_FALSE(WorkloadConfig::Parse("phases=10", &w).ok());
  EXPECT_FALSE(WorkloadConfig::Parse("colour=blue", &w).ok());
}

// The whole path: pre-copy rounds, stop-and-copy, checksums, the guest running on the
// target and its memory equal to the source's.
TEST(Migrate, MovesARunningGuest) {
  REQUIRE_TRACKING();
  Target t;
  auto g = Guest(32, 20000, 0.1);
  ASSERT_TRUE(g);
  const pid_t src_pid = g->pid();
  MigrateOptions o;
  o.verify_memory = true;  // full-memory hash at stop-copy: checks the dirty tracking too
  o.rate_limit_bytes_per_s = 200 * kMiB;
  int progress_calls = 0;
  o.progress = [&](const Progress&) { ++progress_calls; };
  MigrateStats st;
  lull::Status s = Migrate(g.get(), "127.0.0.1", t.server->port(), o, &st);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(st.converged);
  EXPECT_GE(st.rounds, 1);
  EXPECT_GT(st.stop_copy_pages, 0u) << "pages written during pre-copy go in the stop-and-copy";
  EXPECT_GT(st.pages_by_encoding[int(PageEncoding::kXbzrle)], 0u) << st.ToString();
  EXPECT_GT(st.pages_by_encoding[int(PageEncoding::kZero)], 0u);
  EXPECT_GT(st.pages_by_encoding[int(PageEncoding::kLz4)], 0u);
  EXPECT_GT(progress_calls, 3);
  EXPECT_EQ(0, State(src_pid)) << "the source guest must be released after the commit";
  auto moved = t.factory.TakeStarted();
  ASSERT_TRUE(moved);
  EXPECT_NE(0, State(moved->pid()));
  EXPECT_EQ(g->Describe(), moved->Describe());
  // Cold pages (never written) must match the source byte for byte.
  const size_t hot = static_cast<size_t>(g->pages() * 0.1), ps = g->page_size();
  EXPECT_EQ(0, std::memcmp(g->data() + hot * ps, moved->data() + hot * ps,
                           (g->pages() - hot) * ps));
  // And the moved guest runs and is tracked on its new host.
  EXPECT_TRUE(WritesAgain(moved.get()));
  EXPECT_EQ(1u, t.server->stats().committed);
  EXPECT_EQ(0u, t.server->stats().memory_in_use);
}

// Shared check: after a failed migration the source guest still runs, nothing started on
// the target and the target holds no memory.
void ExpectRolledBack(ProcessGuest* g, Target* t) {
  EXPECT_NE('T', State(g->pid()));
  EXPECT_NE(0, State(g->pid()));
  EXPECT_FALSE(g->paused());
  EXPECT_TRUE(WritesAgain(g)) << "the source guest should be running";
  // The server may still be finishing its side.
  Eventually([&] { return t->server->stats().memory_in_use == 0; });
  EXPECT_EQ(0u, t->server->stats().memory_in_use);
  EXPECT_EQ(0u, t->factory.started());
  EXPECT_EQ(0u, t->server->stats().committed);
}

TEST(Migrate, TargetOutOfMemoryRollsBack) {
  REQUIRE_TRACKING();
  ServerOptions so;
  so.memory_limit_bytes = 16 * kMiB;
  Target t(so);
  auto g = Guest(32, 5000, 0.1);
  ASSERT_TRUE(g);
  MigrateStats st;
  lull::Status s = Migrate(g.get(), "127.0.0.1", t.server->port(), MigrateOptions{}, &st);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(std::string::npos, s.message().find("target out of memory")) << s.ToString();
  ExpectRolledBack(g.get(), &t);
}

TEST(Migrate, ChecksumMismatchRollsBack) {
  REQUIRE_TRACKING();
  ServerOptions so;
  so.fault_corrupt_page = 1000;
  Target t(so);
  auto g = Guest(16, 5000, 0.1);
  ASSERT_TRUE(g);
  MigrateStats st;
  lull::Status s = Migrate(g.get(), "127.0.0.1", t.server->port(), MigrateOptions{}, &st);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(lull::Status::Code::kCorruption, s.code()) << s.ToString();
  EXPECT_NE(std::string::npos, s.message().find("checksum mismatch")) << s.ToString();
  ExpectRolledBack(g.get(), &t);
}

TEST(Migrate, ConnectionLostRollsBack) {
  REQUIRE_TRACKING();
  ServerOptions so;
  so.fault_drop_after_bytes = 4 * kMiB;
  Target t(so);
  auto g = Guest(32, 5000, 0.1);
  ASSERT_TRUE(g);
  MigrateStats st;
  MigrateOptions o;
  o.lz4 = false;  // keep the stream larger than the drop point
  lull::Status s = Migrate(g.get(), "127.0.0.1", t.server->port(), o, &st);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(lull::Status::Code::kIoError, s.code()) << s.ToString();
  ExpectRolledBack(g.get(), &t);
  // The server survives the failure and takes the next migration.
  t.server.reset();
  Target t2;
  s = Migrate(g.get(), "127.0.0.1", t2.server->port(), MigrateOptions{}, &st);
  EXPECT_TRUE(s.ok()) << s.ToString();
}

TEST(Migrate, NoTargetIsAClearError) {
  REQUIRE_TRACKING();
  auto g = Guest(4, 100, 0.1);
  ASSERT_TRUE(g);
  // A port bound but not listening: connections are refused, and while the socket is
  // held no other process (a parallel test's server) can start listening there.
  int held = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(held, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(0, bind(held, reinterpret_cast<sockaddr*>(&sa), sizeof sa));
  socklen_t len = sizeof sa;
  ASSERT_EQ(0, getsockname(held, reinterpret_cast<sockaddr*>(&sa), &len));
  const uint16_t port = ntohs(sa.sin_port);
  MigrateStats st;
  lull::Status s = Migrate(g.get(), "127.0.0.1", port, MigrateOptions{}, &st);
  close(held);
  EXPECT_EQ(lull::Status::Code::kUnavailable, s.code());
  EXPECT_NE(std::string::npos, s.message().find("connect to 127.0.0.1")) << s.ToString();
  EXPECT_NE(0, State(g->pid()));
}

// Plain pre-copy cannot keep up with a guest dirtying faster than the link; XBZRLE's
// small deltas can. The failed attempt leaves the guest running.
TEST(Migrate, DifferentialConvergesWherePlainDoesNot) {
  REQUIRE_TRACKING();
  Target t;
  auto g = Guest(32, 30000, 0.25);
  ASSERT_TRUE(g);
  MigrateOptions o;
  o.rate_limit_bytes_per_s = 40 * kMiB;  // 30k pages/s * 4 KiB = 117 MiB/s of dirt
  o.max_rounds = 6;
  o.max_downtime_ms = 50;
  o.xbzrle = false;
  o.lz4 = false;
  // The premise is the guest's: it must really dirty faster than the link. On a machine
  // loaded by other work it may not get the CPU to. Plain pre-copy converges only after an
  // interval in which few pages were dirtied, so if it converged, compare the pages found
  // dirty over that last interval with what the guest's own rate dirties in that time
  // (distinct pages of uniform writes over the hot set): far fewer means the guest was not
  // running then, and the test says so rather than fail; as many means plain converged
  // against a guest out-dirtying the link, which fails. (The fastest round's rate, used
  // before, passed the check while the last round was starved: the 2nd of 10 loaded runs.)
  const double hot_pages = static_cast<double>(g->pages()) * 0.25, writes_per_s = 30000;
  double last_ms = -1, final_ms = 0;
  uint64_t final_dirty = 0;
  o.progress = [&](const Progress& p) {
    const std::string phase = p.phase;
    if (phase == "stop-copy" && last_ms >= 0) {
      final_ms = p.elapsed_ms - last_ms;
      final_dirty = p.dirty_pages;
    }
    if (phase == "precopy") last_ms = p.elapsed_ms;
  };
  MigrateStats plain;
  lull::Status s = Migrate(g.get(), "127.0.0.1", t.server->port(), o, &plain);
  if (s.ok()) {
    const double expected =
        hot_pages * (1 - std::exp(-writes_per_s * final_ms / 1000 / hot_pages));
    if (static_cast<double>(final_dirty) < 0.5 * expected)
      GTEST_SKIP() << "the guest dirtied " << final_dirty << " pages in the last " << final_ms
                   << " ms, where its rate dirties " << expected
                   << " (machine too loaded to test convergence): " << plain.ToString();
  }
  o.progress = nullptr;
  ASSERT_FALSE(s.ok()) << plain.ToString();
  EXPECT_NE(std::string::npos, s.message().find("did not converge")) << s.ToString();
  ExpectRolledBack(g.get(), &t);
  o.xbzrle = true;
  o.max_rounds = 30;
  MigrateStats diff;
  s = Migrate(g.get(), "127.0.0.1", t.server->port(), o, &diff);
  ASSERT_TRUE(s.ok()) << s.ToString() << " " << diff.ToString();
  EXPECT_TRUE(diff.converged);
}

TEST(Reservation, PrewarmsReleasesExpiresAndIsUsed) {
  REQUIRE_TRACKING();
  Target t;
  const uint16_t port = t.server->port();
  uint64_t id = 0;
  ASSERT_TRUE(Reserve("127.0.0.1", port, 8 * kMiB, 60000, &id).ok());
  EXPECT_EQ(8 * kMiB, t.server->stats().memory_in_use);
  ASSERT_TRUE(ReleaseReservation("127.0.0.1", port, id).ok());
  EXPECT_EQ(0u, t.server->stats().memory_in_use);
  EXPECT_EQ(lull::Status::Code::kNotFound, ReleaseReservation("127.0.0.1", port, id).code());
  // A reservation nobody uses runs out.
  ASSERT_TRUE(Reserve("127.0.0.1", port, 4 * kMiB, 50, &id).ok());
  Eventually([&] { return t.server->stats().reservations_expired != 0; });
  EXPECT_EQ(1u, t.server->stats().reservations_expired);
  EXPECT_EQ(0u, t.server->stats().memory_in_use);
  // A migration uses its reservation.
  auto g = Guest(8, 2000, 0.1);
  ASSERT_TRUE(g);
  ASSERT_TRUE(Reserve("127.0.0.1", port, 8 * kMiB, 60000, &id).ok());
  MigrateOptions o;
  o.reservation = id;
  MigrateStats st;
  lull::Status s = Migrate(g.get(), "127.0.0.1", port, o, &st);
  ASSERT_TRUE(s.ok()) << s.ToString();
  // The target's server thread settles its accounting after COMMITTED: wait for it
  // (it raced the check under ASan in CI).
  Eventually([&] { return t.server->stats().memory_in_use == 0; });
  EXPECT_EQ(0u, t.server->stats().memory_in_use);
  EXPECT_EQ(1u, t.factory.started());
  lull::Status bad = Reserve("127.0.0.1", port, 1000, 10, &id);
  EXPECT_EQ(lull::Status::Code::kInvalidArgument, bad.code()) << bad.ToString();
}

TEST(Server, RejectsGarbageAndKeepsServing) {
  Target t;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(t.server->port());
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  ASSERT_EQ(0, connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa));
  const char junk[] = "GET / HTTP/1.0\r\n\r\n";
  ASSERT_EQ(ssize_t(sizeof junk), write(fd, junk, sizeof junk));
  char c;
  EXPECT_GE(0, read(fd, &c, 1)) << "the server should hang up (EOF or reset)";
  close(fd);
  Eventually([&] { return t.server->stats().failed != 0; });
  EXPECT_NE(std::string::npos, t.server->stats().last_error.find("LM magic"))
      << t.server->stats().last_error;
  uint64_t id;
  EXPECT_TRUE(Reserve("127.0.0.1", t.server->port(), 4096, 1000, &id).ok());
}

// The provisioning plan goes from source to target in the HELLO and is applied there:
// step 0 as the guest starts, then one step per provision_step_ms, capped at the
// target's limits and corrected by measured use. The target's guests get a recording
// control (what a cgroup or Xen's cap would be given), so each step can be checked.
struct ControlLog {
  std::mutex mu;
  std::vector<Resources> applied;  // one per step, in order
  double use_cpu_from_step1 = 0;
};

class LoggingControl : public ResourceControl {
 public:
  explicit LoggingControl(ControlLog* log) : log_(log) {}
  lull::Status Apply(const Resources& r) override {
    std::lock_guard<std::mutex> l(log_->mu);
    log_->applied.push_back(r);
    return lull::Status::Ok();
  }
  lull::Status Measure(Resources* used) override {
    std::lock_guard<std::mutex> l(log_->mu);
    *used = Resources{log_->applied.size() > 1 ? log_->use_cpu_from_step1 : 0.1, 64, 1};
    return lull::Status::Ok();
  }

 private:
  ControlLog* log_;
};

// A process target whose guests report to a ControlLog instead of a cgroup.
class LoggingTarget : public TargetGuest {
 public:
  LoggingTarget(std::unique_ptr<TargetGuest> in, ControlLog* log) : in_(std::move(in)), log_(log) {}
  size_t pages() const override { return in_->pages(); }
  size_t page_size() const override { return in_->page_size(); }
  uint8_t* data() override { return in_->data(); }
  lull::Status Start(const std::string& d) override { return in_->Start(d); }
  void Commit() override { in_->Commit(); }
  void Destroy() override { in_->Destroy(); }
  lull::Status Control(std::unique_ptr<ResourceControl>* out) override {
    *out = std::make_unique<LoggingControl>(log_);
    return lull::Status::Ok();
  }

 private:
  std::unique_ptr<TargetGuest> in_;
  ControlLog* log_;
};

class LoggingFactory : public GuestFactory {
 public:
  ProcessGuestFactory inner;
  ControlLog log;
  lull::Status Create(size_t pages, size_t ps, std::unique_ptr<TargetGuest>* out) override {
    std::unique_ptr<TargetGuest> g;
    if (auto s = inner.Create(pages, ps, &g); !s.ok()) return s;
    *out = std::make_unique<LoggingTarget>(std::move(g), &log);
    return lull::Status::Ok();
  }
};

TEST(Migrate, SendsTheProvisioningPlanAndTheTargetAppliesIt) {
  REQUIRE_TRACKING();
  // The source's plan for a guest configured with 4 vCPUs and 1 GiB: quiet for 3 steps
  // (p90 10 %), then busy (p90 50 %).
  std::vector<forecast::Distribution> f;
  for (int i = 0; i < 6; ++i) {
    forecast::Distribution d;
    d.p50 = d.mean = i < 3 ? 0.08 : 0.4;
    d.p90 = d.p95 = d.p99 = i < 3 ? 0.1 : 0.5;
    f.push_back(d);
  }
  Provisioner plan;
  ASSERT_TRUE(Provisioner::Plan(f, f, f, Resources{4, 1024, 100}, Resources{16, 65536, 1000},
                                ProvisionConfig{}, &plan).ok());
  ASSERT_EQ(2u, plan.phases().size());
  ASSERT_NEAR(2.3, plan.At(3).cpu, 1e-9);

  LoggingFactory factory;
  factory.log.use_cpu_from_step1 = 0.6;  // more than the quiet phase's 0.46 allows for
  ServerOptions so;
  so.limits = Resources{2, 4096, 1000};  // the target has 2 vCPUs for this guest
  so.provision_step_ms = 50;
  std::unique_ptr<MigrationServer> server;
  ASSERT_TRUE(MigrationServer::Start(&factory, so, &server).ok());
  auto g = Guest(8, 2000, 0.1);
  ASSERT_TRUE(g);
  MigrateOptions o;
  o.plan = &plan;
  MigrateStats st;
  lull::Status s = Migrate(g.get(), "127.0.0.1", server->port(), o, &st);
  ASSERT_TRUE(s.ok()) << s.ToString();
  Eventually([&] { return server->stats().provision_step >= 4; });
  ServerStats ss = server->stats();
  EXPECT_EQ(1u, ss.provisioned);
  EXPECT_TRUE(ss.provision_error.empty()) << ss.provision_error;
  ASSERT_GE(ss.provision_step, 4);
  std::vector<Resources> a;
  {
    std::lock_guard<std::mutex> l(factory.log.mu);
    a = factory.log.applied;
  }
  ASSERT_GE(a.size(), 5u);
  EXPECT_NEAR(0.1 * 4 * 1.15, a[0].cpu, 1e-9) << "step 0: the quiet phase, as planned";
  EXPECT_NEAR(0.1 * 1024 * 1.15, a[0].memory_mib, 1e-6);
  EXPECT_NEAR(0.46, a[1].cpu, 1e-9);
  EXPECT_NEAR(0.6 * 1.15, a[2].cpu, 1e-9) << "measured 0.6 vCPUs at step 1: the plan was raised";
  EXPECT_EQ(2, a[3].cpu) << "the busy phase's 2.3 vCPUs, capped at the target's 2";
  EXPECT_NEAR(0.5 * 1024 * 1.15, a[3].memory_mib, 1e-6) << "memory follows the plan, not 1 GiB";
  EXPECT_EQ(2, a[4].cpu);
  ASSERT_TRUE(factory.inner.TakeStarted());
  server->Stop();
}

TEST(Migrate, TargetRefusesABadPlanAndTheSourceKeepsItsGuest) {
  REQUIRE_TRACKING();
  Target t;
  auto g = Guest(8, 2000, 0.1);
  ASSERT_TRUE(g);
  // A plan that gives no CPU is not a plan: the HELLO is refused, nothing moves.
  std::vector<forecast::Distribution> f(3);
  Provisioner plan;
  ASSERT_TRUE(Provisioner::Plan(f, f, f, Resources{4, 1024, 100}, Resources{16, 65536, 1000},
                                ProvisionConfig{0, 0, 0.1}, &plan).ok());
  MigrateOptions o;
  o.plan = &plan;
  MigrateStats st;
  lull::Status s = Migrate(g.get(), "127.0.0.1", t.server->port(), o, &st);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(std::string::npos, s.message().find("gives no CPU")) << s.ToString();
  ExpectRolledBack(g.get(), &t);
}

// The same through a real cgroup: a process guest moved with a plan runs in the cgroup
// its target made, under the plan's first phase capped at the target's 1 vCPU.
TEST(Migrate, ProvisionsAProcessGuestThroughItsCgroup) {
  REQUIRE_TRACKING();
  std::vector<forecast::Distribution> f(4);
  for (auto& d : f) {
    d.p50 = d.mean = 0.4;
    d.p90 = d.p95 = d.p99 = 0.5;
  }
  Provisioner plan;
  ASSERT_TRUE(Provisioner::Plan(f, f, f, Resources{4, 512, 100}, Resources{16, 65536, 1000},
                                ProvisionConfig{}, &plan).ok());
  ServerOptions so;
  so.limits = Resources{1, 4096, 1000};
  so.provision_step_ms = 100;
  Target t(so);
  auto g = Guest(8, 2000, 0.1);
  ASSERT_TRUE(g);
  MigrateOptions o;
  o.plan = &plan;
  MigrateStats st;
  lull::Status s = Migrate(g.get(), "127.0.0.1", t.server->port(), o, &st);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ServerStats ss;
  Eventually([&] {
    ss = t.server->stats();
    return ss.provision_step >= 1 || !ss.provision_error.empty();
  });
  if (ss.provision_error.find("Unavailable") != std::string::npos ||
      ss.provision_error.find("unavailable") != std::string::npos)
    GTEST_SKIP() << "no writable cgroups here: " << ss.provision_error;
  ASSERT_TRUE(ss.provision_error.empty()) << ss.provision_error;
  ASSERT_GE(ss.provision_step, 1);
  EXPECT_EQ(1u, ss.provisioned);
  EXPECT_EQ(1, ss.provision_applied.cpu) << "2.3 vCPUs planned, the target gives 1";
  EXPECT_NEAR(0.5 * 512 * 1.15, ss.provision_applied.memory_mib, 1e-6);
  auto moved = t.factory.TakeStarted();
  ASSERT_TRUE(moved);
  std::ifstream cg("/proc/" + std::to_string(moved->pid()) + "/cgroup");
  std::string groups((std::istreambuf_iterator<char>(cg)), {});
  EXPECT_NE(std::string::npos, groups.find("lull-migrate-" + std::to_string(moved->pid())))
      << groups;
  // The limit the kernel enforces: 1 vCPU (cgroup v2 "0::/path", or v1's cpu hierarchy).
  std::string file, want;
  if (groups.rfind("0::/", 0) == 0) {
    file = "/sys/fs/cgroup" + groups.substr(3, groups.find('\n') - 3) + "/cpu.max";
    want = "100000 100000";
  } else if (size_t at = groups.find(":cpu:/"); at != std::string::npos) {
    file = "/sys/fs/cgroup/cpu" + groups.substr(at + 5, groups.find('\n', at) - at - 5) +
           "/cpu.cfs_quota_us";
    want = "100000";
  }
  if (!file.empty()) {
    std::ifstream lim(file);
    std::string quota;
    std::getline(lim, quota);
    EXPECT_EQ(want, quota) << file;
  }
  t.server->Stop();  // removes the cgroup; the guest runs on
  EXPECT_NE(0, State(moved->pid()));
}

}  // namespace
}  // namespace lull::migrate
