// The shadow pool with real processes: HAProxy (Debian's /usr/sbin/haproxy) in front of
// lull-clone-backend instances, all on 127.0.0.1. Every test tears its servers down in
// the fixture (and the children die with the test process: PR_SET_PDEATHSIG).
#include "dom0/clone/pool.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <signal.h>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "dom0/clone/block_cache.h"
#include "dom0/clone/control.h"
#include "dom0/clone/controller.h"
#include "tests/bench/clone/bench_env.h"

namespace lull::clone {
namespace {

char ProcState(long pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s;
  std::getline(f, s);
  size_t p = s.rfind(')');
  return p == std::string::npos || p + 2 >= s.size() ? '?' : s[p + 2];
}

class PoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access("/usr/sbin/haproxy", X_OK) != 0) {
      GTEST_SKIP() << "haproxy is not installed (Debian package haproxy; `make deps`)";
    }
    char tmpl[] = "/tmp/lull-clone-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    GoldenConfig g = bench::MakeGolden(2000, 50, 64, 16);
    g.volume_path = dir_ + "/volume.img";
    ASSERT_TRUE(EnsureVolume(g.volume_path, 4096, 256).ok());
    std::ofstream(dir_ + "/golden.toml") << g.ToToml();
    cfg_.domain = "web";
    cfg_.dir = dir_;
    cfg_.golden_path = dir_ + "/golden.toml";
    cfg_.backend_path = LULL_CLONE_BACKEND;
    cfg_.shadow_vcpus = 4;
    cfg_.max_shadows = 4;
  }
  void TearDown() override {
    pool_.Stop();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  std::string Status(const std::string& server) {
    std::vector<ServerStat> rows;
    EXPECT_TRUE(pool_.lb().ShowStat(&rows).ok());
    for (auto& r : rows) if (r.name == server) return r.status;
    return "absent";
  }
  // The configured weight (`show stat` shows the effective one, 0 in maint).
  int Weight(const std::string& server) {
    std::string r;
    EXPECT_TRUE(pool_.lb().Command("get weight be/" + server, &r).ok());
    return std::atoi(r.c_str());
  }
  std::string dir_;
  PoolConfig cfg_;
  ShadowPool pool_;
};

TEST_F(PoolTest, ShadowsWaitPausedAndWarm) {
  ASSERT_TRUE(pool_.Start(cfg_).ok());
  ASSERT_TRUE(pool_.SetSize(2).ok());
  auto list = pool_.List();
  ASSERT_EQ(list.size(), 2u);
  for (const auto& c : list) {
    EXPECT_EQ(c.state, "idle");
    EXPECT_EQ(c.vcpus, 4);  // the shadow profile, larger than the primary's 2
    EXPECT_EQ(ProcState(c.pid), 'T') << c.id << " should be stopped (paused)";
    EXPECT_EQ(Status(c.server), "MAINT");
  }
  EXPECT_NE(ProcState(pool_.primary().pid()), 'T');
}

TEST_F(PoolTest, TrafficShiftsFailNoRequest) {
  ASSERT_TRUE(pool_.Start(cfg_).ok());
  ASSERT_TRUE(pool_.SetSize(2).ok());
  const int port = pool_.lb().port();
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::mutex mu;
  std::set<std::string> seen;  // instances that answered, as they answer
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&, t] {
      httplib::Client c("127.0.0.1", port);
      c.set_read_timeout(10, 0);
      unsigned k = 12345u * (t + 1);
      while (!stop) {
        k = k * 1103515245u + 12345u;
        auto r = c.Get(("/k/" + std::to_string(k % 5000)).c_str());
        if (r && r->status == 200) {
          {
            std::lock_guard<std::mutex> l(mu);
            seen.insert(r->get_header_value("X-Instance"));
          }
          ++ok;
        } else {
          ++failed;
        }
      }
    });
  }
  // Each phase lasts until requests went through it (and, with both shadows active, until
  // both answered), not a fixed time: a loaded machine serves few requests in 250 ms. The
  // bound only ends a hang.
  int phases = 0;
  auto traffic = [&](const std::vector<std::string>& must_answer = {}) {
    ++phases;
    const int until = ok.load() + 40;
    for (int i = 0; i < 12000; ++i) {  // 120 s
      bool all = ok.load() >= until;
      {
        std::lock_guard<std::mutex> l(mu);
        for (const auto& name : must_answer) all = all && seen.count(name);
      }
      if (all) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  };
  EXPECT_TRUE(traffic({"web"}));
  for (int round = 0; round < 2; ++round) {
    double ms = 0;
    ASSERT_TRUE(pool_.Activate(&ms).ok());
    EXPECT_GT(ms, 0);
    EXPECT_TRUE(traffic());
    ASSERT_TRUE(pool_.Activate().ok());
    EXPECT_EQ(pool_.active(), 2);
    EXPECT_TRUE(traffic({"web-shadow1", "web-shadow2"})) << "round " << round;
    ASSERT_TRUE(pool_.Deactivate().ok());
    EXPECT_TRUE(traffic());
    ASSERT_TRUE(pool_.Deactivate().ok());
    EXPECT_EQ(pool_.active(), 0);
    EXPECT_TRUE(traffic());
  }
  stop = true;
  for (auto& c : clients) c.join();
  EXPECT_EQ(failed.load(), 0) << "of " << ok.load() + failed.load() << " requests";
  EXPECT_GE(ok.load(), 40 * phases);
  for (const auto& c : pool_.List()) {
    EXPECT_EQ(c.state, "idle");
    EXPECT_EQ(ProcState(c.pid), 'T');
    EXPECT_EQ(Status(c.server), "MAINT");
  }
  EXPECT_FALSE(pool_.Deactivate().ok());  // nothing left to deactivate
}

TEST_F(PoolTest, ConsistentHashKeepsAKeyOnOneInstance) {
  // Plain consistent hashing (factor 0): with the bounded-load factor HAProxy may count
  // the previous request as still being served and move the key, by design.
  cfg_.lb.balance_factor = 0;
  ASSERT_TRUE(pool_.Start(cfg_).ok());
  ASSERT_TRUE(pool_.SetSize(1).ok());
  ASSERT_TRUE(pool_.Activate().ok());
  EXPECT_NE(Status("s1"), "MAINT");
  httplib::Client c("127.0.0.1", pool_.lb().port());
  std::map<std::string, int> per_instance;
  for (int key = 0; key < 40; ++key) {
    std::string first;
    for (int rep = 0; rep < 4; ++rep) {
      auto r = c.Get(("/k/key" + std::to_string(key)).c_str());
      ASSERT_TRUE(r && r->status == 200);
      std::string inst = r->get_header_value("X-Instance");
      if (rep == 0) first = inst;
      EXPECT_EQ(inst, first) << "key " << key << " moved without load";
    }
    ++per_instance[first];
  }
  // Both instances own keys; the shadow (weight 64) about twice the primary's (32).
  EXPECT_EQ(per_instance.size(), 2u);
  EXPECT_GT(per_instance["web-shadow1"], per_instance["web"] / 2);
  // The cache in front of the volume served the repeats.
  InstanceStats st;
  ASSERT_TRUE(pool_.shadow(0).Stats(&st).ok());
  EXPECT_GT(st.cache_hits, st.volume_reads);
}

TEST_F(PoolTest, ResizeChangesVcpusAndWeight) {
  ASSERT_TRUE(pool_.Start(cfg_).ok());
  ASSERT_TRUE(pool_.SetSize(1).ok());
  EXPECT_EQ(Weight("s1"), 64);
  ASSERT_TRUE(pool_.Resize(0, 6).ok());  // while paused: resumed for the call, re-paused
  EXPECT_EQ(ProcState(pool_.List()[0].pid), 'T');
  EXPECT_EQ(Weight("s1"), 96);
  ASSERT_TRUE(pool_.Activate().ok());
  InstanceStats st;
  ASSERT_TRUE(pool_.shadow(0).Stats(&st).ok());
  EXPECT_EQ(st.vcpus, 6);
  ::lull::Status s = pool_.Resize(0, 99);
  EXPECT_EQ(s.code(), ::lull::Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("max_vcpus"), std::string::npos);
  EXPECT_FALSE(pool_.Resize(5, 2).ok());
  // The backend's admin call takes whole numbers only (atoi read "2x" as 2).
  httplib::Client c("127.0.0.1", pool_.List()[0].port);
  auto r = c.Post("/admin/vcpus?n=2x", "", "text/plain");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_NE(r->body.find("n must be in [1, "), std::string::npos) << r->body;
  r = c.Post("/admin/vcpus?n=3", "", "text/plain");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  ASSERT_TRUE(pool_.shadow(0).Stats(&st).ok());
  EXPECT_EQ(st.vcpus, 3);
}

// Bad numbers on the command lines are named before anything starts.
TEST(CloneCli, BadNumbersAreNamed) {
  auto run = [](const std::string& cmd, int* rc) {
    FILE* p = popen((cmd + " 2>&1").c_str(), "r");
    std::string out;
    char b[256];
    while (p && fgets(b, sizeof b, p)) out += b;
    *rc = p ? WEXITSTATUS(pclose(p)) : -1;
    return out;
  };
  int rc = 0;
  // A scratch --dir and a time limit: were a value accepted, serve would start there.
  char tmpl[] = "/tmp/lull-clone-cli-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  struct Cleanup {
    std::string dir;
    ~Cleanup() { std::filesystem::remove_all(dir); }
  } cleanup{tmpl};
  for (const char* bad : {"--port -1", "--port 70000", "--shadow-vcpus 129", "--policy sometimes",
                          "--step nan", "--step inf", "--step 1e-300"}) {
    std::string out = run("timeout 30 " + std::string(LULL_CLONE_CLI) + " serve --dir " +
                              cleanup.dir + " " + bad, &rc);
    EXPECT_NE(rc, 0) << bad << ": " << out;
    const std::string flag = std::string(bad).substr(0, std::string(bad).find(' '));
    EXPECT_NE(out.find(flag + ": "), std::string::npos) << bad << ": " << out;
    EXPECT_TRUE(std::filesystem::is_empty(cleanup.dir)) << bad << ": serve wrote files before refusing";
  }
  for (const char* bad : {"--port -1", "--port 80x", "--port ''", "--vcpus two"}) {
    std::string out = run(std::string(LULL_CLONE_BACKEND) + " --golden g.toml --id x " + bad, &rc);
    EXPECT_EQ(rc, 2) << bad << ": " << out;
    const std::string flag = std::string(bad).substr(0, std::string(bad).find(' '));
    EXPECT_NE(out.find(flag + " '"), std::string::npos) << bad << ": " << out;
    EXPECT_NE(out.find("must be a whole number"), std::string::npos) << bad << ": " << out;
  }
}

TEST_F(PoolTest, SetSizeShrinksIdleShadowsOnly) {
  ASSERT_TRUE(pool_.Start(cfg_).ok());
  ASSERT_TRUE(pool_.SetSize(3).ok());
  long gone = pool_.List()[2].pid;
  ASSERT_TRUE(pool_.SetSize(2).ok());
  EXPECT_EQ(pool_.size(), 2);
  EXPECT_NE(kill(static_cast<pid_t>(gone), 0), 0) << "removed shadow still running";
  ASSERT_TRUE(pool_.Activate().ok());
  ASSERT_TRUE(pool_.Activate().ok());
  ::lull::Status s = pool_.SetSize(0);
  EXPECT_EQ(s.code(), ::lull::Status::Code::kUnavailable);
  EXPECT_NE(s.message().find("active"), std::string::npos);
  EXPECT_EQ(pool_.size(), 2);
  EXPECT_EQ(pool_.SetSize(5).code(), ::lull::Status::Code::kInvalidArgument);  // 4 slots
}

TEST_F(PoolTest, BadConfigurationIsReported) {
  PoolConfig bad = cfg_;
  bad.backend_path = dir_ + "/no-such-backend";
  ::lull::Status s = pool_.Start(bad);
  EXPECT_EQ(s.code(), ::lull::Status::Code::kNotFound);
  EXPECT_NE(s.message().find("no-such-backend"), std::string::npos);
  bad = cfg_;
  bad.shadow_vcpus = 9;
  s = pool_.Start(bad);
  EXPECT_NE(s.message().find("max_vcpus"), std::string::npos);
  EXPECT_EQ(pool_.SetSize(1).code(), ::lull::Status::Code::kUnavailable);  // not started
}

// The CLI: `lull-clone serve` with its control socket, driven by `lull-clone clones` and
// `lull-clone clone-pool` (the verbs lullctl forwards).
TEST_F(PoolTest, CliServesClonesAndClonePool) {
  ChildProcess serve;
  ASSERT_TRUE(serve.Spawn({LULL_CLONE_CLI, "serve", "--dir", dir_, "--golden",
                           dir_ + "/golden.toml", "--size", "1", "--policy", "none"},
                          dir_ + "/serve.log").ok());
  std::string line;
  // Bounded only to end a hang: a loaded machine takes seconds to start the pool.
  ASSERT_TRUE(serve.ReadLine(120000, &line).ok()) << "serve did not start";
  EXPECT_NE(line.find("1 warm shadows"), std::string::npos) << line;
  auto run = [&](const std::string& args, int* rc) {
    std::string cmd = std::string(LULL_CLONE_CLI) + " --socket " + dir_ + "/control.sock " +
                      args + " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    std::string out;
    char b[256];
    while (p && fgets(b, sizeof b, p)) out += b;
    *rc = p ? WEXITSTATUS(pclose(p)) : -1;
    return out;
  };
  int rc = -1;
  std::string out = run("clones", &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("web-shadow1 s1 idle"), std::string::npos) << out;
  out = run("clone-pool web --size 2", &rc);
  EXPECT_EQ(rc, 0) << out;
  out = run("clones", &rc);
  EXPECT_NE(out.find("web-shadow2 s2 idle"), std::string::npos) << out;
  out = run("clone-pool db --size 2", &rc);
  EXPECT_EQ(rc, 1);
  EXPECT_NE(out.find("no domain 'db'"), std::string::npos) << out;
  out = run("clone-pool web --size -3", &rc);
  EXPECT_NE(rc, 0) << out;
  // A DOMAIN with a space was sent as two words: "web 0" set the pool to 0.
  out = run("clone-pool 'web 0' --size 2", &rc);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("DOMAIN 'web 0' is not a name"), std::string::npos) << out;
  // The server takes exactly "clone-pool DOMAIN N" (a client without that check).
  std::string reply;
  for (const char* bad : {"clone-pool web 0 7", "clone-pool web 0x", "clone-pool web", "clone-pool web -1"}) {
    ASSERT_TRUE(ControlCall(dir_ + "/control.sock", bad, &reply).ok()) << bad;
    EXPECT_NE(reply.find("error: expected 'clone-pool web SIZE'"), std::string::npos) << bad << ": " << reply;
  }
  out = run("clones", &rc);
  EXPECT_NE(out.find("web-shadow2 s2 idle"), std::string::npos) << "a refused request changed the pool: " << out;
  ASSERT_TRUE(ControlCall(dir_ + "/control.sock", "quit", &reply).ok());
  for (int i = 0; i < 6000 && serve.Alive(); ++i) {  // up to 60 s
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_FALSE(serve.Alive()) << "serve did not stop on quit";
  out = run("clones", &rc);
  EXPECT_EQ(rc, 1);
  EXPECT_NE(out.find("no lull-clone server"), std::string::npos) << out;
}

}  // namespace
}  // namespace lull::clone

namespace lull::clone {
namespace {

// The control loop on a real pool. Capacities are set tiny so that whether a step is
// "high" depends on request counts, not on how fast this machine runs them.
SchedulerConfig TinyCapacity(Policy p) {
  SchedulerConfig sc;
  sc.policy = p;
  sc.primary_rps = 0.5;
  sc.per_vcpu_rps = 0.5;
  sc.shadow_vcpus = 4;
  sc.max_vcpus = 8;
  sc.min_dwell_steps = 2;
  sc.calm_steps = 2;
  sc.resize = false;
  return sc;
}

TEST_F(PoolTest, ControllerReactiveActivatesOnLoadAndReturnsTheShadow) {
  ASSERT_TRUE(pool_.Start(cfg_).ok());
  ASSERT_TRUE(pool_.SetSize(1).ok());
  SchedulerConfig sc = TinyCapacity(Policy::kReactive);
  sc.initial_activation_s = 0;  // so the lead below comes from this step's measurement
  Controller ctl(&pool_, sc, 100);
  ASSERT_TRUE(ctl.Begin().ok());
  httplib::Client c("127.0.0.1", pool_.lb().port());
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(c.Get(("/k/" + std::to_string(i)).c_str()));
  StepRecord r;
  ASSERT_TRUE(ctl.Step(&r).ok());
  EXPECT_GT(r.measured_rps, 0);
  EXPECT_EQ(r.active_before, 0);
  EXPECT_EQ(r.active_after, 1);
  EXPECT_GT(r.activation_ms, 0);
  EXPECT_GT(r.decision_ms, 0);
  // The lead counts the decision as well as the activation.
  EXPECT_GE(ctl.scheduler().activation_seconds() * 1000, r.decision_ms + r.activation_ms - 1e-6);
  EXPECT_EQ(pool_.active(), 1);
  int steps_to_release = 0;
  while (pool_.active() > 0 && steps_to_release < 10) {  // no traffic now
    ASSERT_TRUE(ctl.Step(&r).ok());
    ++steps_to_release;
  }
  EXPECT_EQ(pool_.active(), 0);
  EXPECT_GE(steps_to_release, 2);  // calm_steps and dwell: not at the first quiet step
}

TEST_F(PoolTest, ControllerPredictiveActivatesBeforeALearntSpike) {
  ASSERT_TRUE(pool_.Start(cfg_).ok());
  ASSERT_TRUE(pool_.SetSize(1).ok());
  // A day of 24 steps: 0.1, except a spike to 0.9 at phases 20-22. With 1 rps per unit,
  // the spike (0.9 rps) is above 0.8 * 0.5 rps and the quiet phases (0.1) are not.
  auto u = [](int t) { int ph = t % 24; return ph >= 20 && ph <= 22 ? 0.9 : 0.1; };
  std::vector<double> hist;
  for (int t = 0; t < 24 * 12 + 12; ++t) hist.push_back(u(t));  // ends before phase 12
  Controller ctl(&pool_, TinyCapacity(Policy::kPredictive), 1);
  ASSERT_TRUE(ctl.Warm(hist).ok());
  ASSERT_TRUE(ctl.Begin().ok());
  int first_active_phase = -1;
  for (int ph = 12; ph < 20 && first_active_phase < 0; ++ph) {
    StepRecord r;
    ASSERT_TRUE(ctl.Step(&r).ok());  // observes the last step (no traffic), decides for ph
    if (pool_.active() > 0) first_active_phase = ph;
  }
  ASSERT_GE(first_active_phase, 0) << "no activation before the spike at phase 20";
  // Ahead of the spike by the lead (activation time + 1 step), not long before it.
  EXPECT_GE(first_active_phase, 20 - ctl.scheduler().lead_steps() - 1);
  // The reactive policy, fed the same history, does nothing without traffic.
  ShadowPool other;
  PoolConfig oc = cfg_;
  oc.dir = dir_ + "/other";
  std::filesystem::create_directories(oc.dir);
  ASSERT_TRUE(other.Start(oc).ok());
  ASSERT_TRUE(other.SetSize(1).ok());
  Controller reactive(&other, TinyCapacity(Policy::kReactive), 1);
  ASSERT_TRUE(reactive.Warm(hist).ok());
  ASSERT_TRUE(reactive.Begin().ok());
  for (int ph = 12; ph < 20; ++ph) {
    StepRecord r;
    ASSERT_TRUE(reactive.Step(&r).ok());
  }
  EXPECT_EQ(other.active(), 0);
}

TEST_F(PoolTest, ControllerRejectsABadHistory) {
  ASSERT_TRUE(pool_.Start(cfg_).ok());
  Controller ctl(&pool_, TinyCapacity(Policy::kPredictive), 100);
  ::lull::Status s = ctl.Warm({0.1, -3.0});
  EXPECT_EQ(s.code(), ::lull::Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("warm-up history"), std::string::npos);
}

}  // namespace
}  // namespace lull::clone
