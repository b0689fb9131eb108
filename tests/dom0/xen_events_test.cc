// The patched Xen's events reach the engine through the ring (dom0/xen_ring.h) over a
// memfd region driven as Xen would (tests/xen/fake_xen.h):
//  - a revocation by Xen is delivered from the ring's poller thread to the daemon at
//    once: the engine ends the lease and requeues its task with no sample tick between;
//  - the forecast's busy hint goes out on the command ring as HINT_BUSY, on Xen's clock,
//    while the lender still idles under its lease.
#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "dom0/daemon.h"
#include "dom0/engine.h"
#include "dom0/sim_host.h"
#include "dom0/xen_ring.h"
#include "tests/dom0/test_util.h"
#include "tests/xen/fake_xen.h"

namespace lull::dom0 {
namespace {

constexpr int64_t kOffset = 5'000'000'000;  // dom0 mono = Xen NOW() + 5 s

TEST(XenEvents, XensRevocationEndsTheLeaseWithoutWaitingForASample) {
  LulldConfig cfg;
  cfg.guests = 3;
  cfg.days = 0.05;
  cfg.pcpus = 16;
  Daemon d(cfg);
  ASSERT_TRUE(d.Init().ok());
  for (int i = 0; i < 5; ++i) d.StepOnce();
  auto add = d.Handle({{"cmd", "task-add"}, {"kind", "scrub"}, {"cpu_s", 1e6}, {"max_cpus", 1}});
  ASSERT_TRUE(add["ok"].get<bool>()) << add.dump();
  const uint64_t task = add["id"].get<uint64_t>();
  const DomId donor = d.engine()->Guests()[0].info.domid;
  auto lend = d.Handle({{"cmd", "lend"}, {"domain", donor}, {"task", task}, {"cpus", 0.25}});
  ASSERT_TRUE(lend["ok"].get<bool>()) << lend.dump();
  const uint64_t lease = lend["lease"].get<uint64_t>();

  // lulld's ring, holding the same lease in Xen's table (as XenHost writes it).
  FakeXen x;
  std::atomic<uint64_t> mono{kOffset + 1'000'000'000};
  XenRingOptions o;
  o.clock = [&mono] { return mono.load(); };
  std::unique_ptr<XenRing> ring;
  ASSERT_TRUE(XenRing::Attach(x.mem(), x.size(), o, &ring).ok());
  x.Emit(0, LULL_TEL_RUN, 0, mono - kOffset, 0);
  ASSERT_TRUE(ring->Poll().ok());
  ASSERT_TRUE(ring->Grant(LeaseGrant{lease, donor, 0.25, 0, mono + 10'000'000'000ULL}, 0).ok());

  // The order of what happens, as seen from the poller's handler and the test.
  std::mutex mu;
  std::vector<std::string> order;
  auto note = [&](std::string e) { std::lock_guard<std::mutex> l(mu); order.push_back(std::move(e)); };
  ring->SetDemandHandler([&](const PressureEvent& ev) {
    note("delivered dom " + std::to_string(ev.domid));
    d.Deliver(ev);
    bool gone = true;
    {
      std::lock_guard<std::mutex> l(d.mu());
      for (const auto& li : d.engine()->Leases()) gone = gone && li.id != lease;
    }
    note(gone ? "lease ended" : "lease still active");
  });
  const int64_t steps = d.host()->StepIndex();
  ASSERT_TRUE(ring->StartPoller(1).ok());
  note("xen revokes");
  x.RevokeSlot(0, mono - kOffset + 1'000'000);
  // Wait for the handler (however long the machine takes; nothing asserts on time).
  for (int i = 0; i < 200000 && d.delivered() == 0; ++i) std::this_thread::sleep_for(std::chrono::microseconds(100));
  ring->StopPoller();
  ASSERT_EQ(d.delivered(), 1u) << "the poller never delivered Xen's revocation";
  {
    std::lock_guard<std::mutex> l(mu);
    ASSERT_EQ(order.size(), 3u);
    EXPECT_EQ(order[0], "xen revokes");
    EXPECT_EQ(order[1], "delivered dom " + std::to_string(donor));
    EXPECT_EQ(order[2], "lease ended") << "the engine must end the lease inside the delivery";
  }
  EXPECT_EQ(d.host()->StepIndex(), steps) << "no sample tick may be needed";
  EXPECT_EQ(d.host()->LeaseEntry(lease), nullptr) << "the host's lease is revoked too";
  EXPECT_GE(d.engine()->stats().forced_revocations, 1u);
  const Task* t = d.engine()->tasks()->Find(task);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->leases, 0) << "the task is requeued";
  bool pending = false;
  for (Task* p : d.engine()->tasks()->Pending()) pending = pending || p->id == task;
  EXPECT_TRUE(pending);
}

// A simulated host whose busy hints go to the patched Xen's command ring, as XenHost's.
class HintingHost : public SimHost {
 public:
  HintingHost(const SimHostConfig& c, const Workload* w) : SimHost(c, w) {}
  Status HintBusy(DomId d, uint64_t from_ns, double p, bool busy) override {
    Status s = ring->Hint(d, from_ns, p, busy);
    if (s.ok()) sent.push_back({d, from_ns, NowNs(), busy, Entitlement(d), LastDemand(d)});
    return s;
  }
  struct Sent {
    DomId d;
    uint64_t from_ns, at_ns;
    bool busy;
    double entitlement, demand;
  };
  XenRing* ring = nullptr;
  std::vector<Sent> sent;
};

TEST(XenEvents, BusyHintGoesToXenBeforeTheLendersLullEnds) {
  // Idle 30 min, busy 10 min, over and over; a backup that never ends wants its CPUs.
  auto w = testing::MakeWorkload(
      {{"onoff", 4, 8, PriorityClass::kStandard, [](int64_t t) { return t % 480 < 360 ? 0.2 : 3.8; }},
       {"steady", 2, 8, PriorityClass::kStandard, [](int64_t) { return 1.9; }}},
      60 * 480);
  HintingHost host({.pcpus = 8}, &w);
  FakeXen x;
  XenRingOptions o;
  o.clock = [&host] { return host.NowNs(); };  // the engine's clock is the ring's, as in lulld
  std::unique_ptr<XenRing> ring;
  ASSERT_TRUE(XenRing::Attach(x.mem(), x.size(), o, &ring).ok());
  constexpr uint64_t kXenAhead = 1'000'000'000;  // Xen's NOW() runs 1 s ahead of dom0's clock
  x.Emit(0, LULL_TEL_RUN, 0, kXenAhead, 0);
  ASSERT_TRUE(ring->Poll().ok());
  host.ring = ring.get();
  TaskQueue tasks;
  EngineConfig cfg;
  cfg.policy = Policy::kLull;
  cfg.control_period_s = 60;
  cfg.lease_period_s = 300;  // five control periods: the hint looks that far ahead
  Engine e(&host, &tasks, cfg);
  ASSERT_TRUE(e.Start().ok());
  std::vector<lull_cmd_rec> hints;
  auto step = [&] {
    host.Step();
    e.Poll();
    for (const auto& c : x.Commands())
      if (c.type == LULL_CMD_HINT_BUSY || c.type == LULL_CMD_HINT_IDLE) hints.push_back(c);
  };
  // 30 cycles of history, no task: nothing is lent, nothing hinted.
  while (host.StepIndex() < 30 * 480 + 10) step();
  EXPECT_EQ(e.stats().busy_hints, 0u);
  // 10 s into an idle phase the operator lends 1 CPU of the on/off guest (lullctl lend:
  // renewed whatever the forecast says), which knows the burst comes within the lease
  // period.
  Task t;
  t.kind = TaskKind::kBackup;
  t.target = "host";
  t.cpu_s = 1e9;
  t.max_cpus = 1;
  t.deadline_ns = ~0ULL / 2;
  uint64_t task = 0, lease = 0;
  ASSERT_TRUE(tasks.Add(t, &task).ok());
  ASSERT_TRUE(e.Lend(1, task, 1.0, 0, &lease).ok());
  int64_t hinted_at = -1, revoked_at = -1;
  const uint64_t forced = e.stats().forced_revocations;
  while (host.StepIndex() < 31 * 480 + 10) {
    step();
    if (hinted_at < 0 && e.stats().busy_hints) hinted_at = host.StepIndex();
    if (revoked_at < 0 && e.stats().forced_revocations > forced) revoked_at = host.StepIndex();
  }
  ASSERT_GT(e.stats().busy_hints, 0u) << "no busy hint for a lease the forecast says the burst ends";
  ASSERT_GE(revoked_at, 0) << "the burst revokes the lease";
  EXPECT_LT(hinted_at, revoked_at) << "the hint goes out before the lender wakes";
  EXPECT_LE(revoked_at, 31 * 480) << "revoked in the burst";
  ASSERT_EQ(host.sent.size(), hints.size()) << "every hint the engine sent is on the command ring";
  size_t busy = 0;
  for (size_t i = 0; i < hints.size(); ++i) {
    const auto& c = hints[i];
    const auto& h = host.sent[i];
    EXPECT_EQ(c.domid, h.d);
    EXPECT_GE(c.value, 500u);
    EXPECT_LE(c.value, 1000u);
    if (c.type != LULL_CMD_HINT_BUSY) continue;
    ++busy;
    EXPECT_EQ(c.domid, 1u) << "only the on/off guest's lull ends";
    EXPECT_EQ(c.until_ns, h.from_ns + kXenAhead) << "on Xen's clock";
    EXPECT_GE(h.from_ns, h.at_ns);
    // Sent while the lender still lends and idles: before the wake, not after it.
    EXPECT_LT(h.entitlement, 4.0);
    EXPECT_LT(h.demand, 1.0);
  }
  EXPECT_EQ(busy, e.stats().busy_hints);
}

}  // namespace
}  // namespace lull::dom0
