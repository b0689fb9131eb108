// Provisioning applied for real: a cgroup around a process guest, and the plan corrected
// by measured use.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>

#include "dom0/migrate/process_guest.h"
#include "dom0/migrate/resource_control.h"

namespace lull::migrate {
namespace {

std::string Slurp(const std::string& p) {
  std::ifstream f(p);
  std::string s;
  std::getline(f, s);
  return s;
}

TEST(CgroupControl, AppliesAndMeasuresAndCleansUp) {
  lull::Status probe = ProcessGuest::Probe();
  if (!probe.ok()) GTEST_SKIP() << "no process guests here: " << probe.ToString();
  WorkloadConfig w;
  w.rate = 20000;
  std::unique_ptr<ProcessGuest> g;
  ASSERT_TRUE(ProcessGuest::Spawn(8 << 20, w, FillConfig{}, &g).ok());
  std::unique_ptr<CgroupControl> cg;
  std::string name = "lull-migrate-test-" + std::to_string(getpid());
  lull::Status s = CgroupControl::Create(name, g->pid(), &cg);
  if (s.code() == lull::Status::Code::kUnavailable) GTEST_SKIP() << s.ToString();
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_TRUE(cg->Apply(Resources{0.25, 256, 0}).ok());
  EXPECT_EQ(cg->v2() ? "25000 100000" : "25000", Slurp(cg->cpu_limit_file()));
  EXPECT_EQ("268435456", Slurp(cg->memory_limit_file()));
  // Each Measure reports the use since the one before. A loaded machine may not run the
  // guest in a given window, so measure windows until one shows it ran (bounded: 60 s).
  Resources used;
  for (int window = 0; window < 200; ++window) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ASSERT_TRUE(cg->Measure(&used).ok());
    EXPECT_LE(used.cpu, 2.0) << "window " << window;  // capped at 0.25 vCPU above
    if (used.cpu > 0) break;
  }
  EXPECT_GT(used.cpu, 0.0) << "the guest's workload ran in the cgroup";
  EXPECT_FALSE(cg->Apply(Resources{0, 256, 0}).ok());
  std::string dir = cg->cpu_limit_file();
  dir = dir.substr(0, dir.rfind('/'));
  cg.reset();
  struct stat st;
  EXPECT_NE(0, stat(dir.c_str(), &st)) << dir << " should be removed";
  EXPECT_EQ(0, kill(g->pid(), 0)) << "the guest survives its cgroup";
  std::unique_ptr<CgroupControl> bad;
  EXPECT_EQ(lull::Status::Code::kInvalidArgument, CgroupControl::Create("../x", g->pid(), &bad).code());
}

// A control that records what it was given and reports a fixed use.
class FakeControl : public ResourceControl {
 public:
  Resources use, last;
  lull::Status Apply(const Resources& r) override {
    last = r;
    return lull::Status::Ok();
  }
  lull::Status Measure(Resources* u) override {
    *u = use;
    return lull::Status::Ok();
  }
};

TEST(ProvisionStep, FollowsThePlanAndRaisesItWhenUseComesClose) {
  forecast::Distribution lo;
  lo.p90 = 0.1;
  std::vector<forecast::Distribution> f(10, lo);
  Provisioner plan;
  ASSERT_TRUE(Provisioner::Plan(f, f, f, Resources{4, 4096, 100}, Resources{8, 8192, 1000},
                                ProvisionConfig{}, &plan)
                  .ok());
  FakeControl rc;
  rc.use = Resources{0.2, 100, 1};
  Resources applied, used;
  ASSERT_TRUE(ProvisionStep(0, &plan, &rc, &applied, &used).ok());
  EXPECT_NEAR(0.46, rc.last.cpu, 1e-9) << "p90 0.1 x 4 vCPUs + 15 %";
  rc.use = Resources{2.0, 100, 1};  // the guest needs far more than predicted
  ASSERT_TRUE(ProvisionStep(1, &plan, &rc, &applied, &used).ok());
  ASSERT_TRUE(ProvisionStep(2, &plan, &rc, &applied, &used).ok());
  EXPECT_NEAR(2.3, rc.last.cpu, 1e-9) << "raised to measured use + headroom";
}

}  // namespace
}  // namespace lull::migrate
