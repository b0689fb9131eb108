// dom0/xen_ring.h over a memfd region the test formats and drives as the patched Xen
// would: telemetry pushed into per-pCPU rings, revocations written into the lease
// table's Xen half plus a LEASE_REVOKED record, the command ring consumed.
#include "dom0/xen_ring.h"

#include <sys/mman.h>

#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "tests/xen/fake_xen.h"

namespace lull::dom0 {
namespace {

constexpr int64_t kOffset = 5'000'000'000;  // dom0 mono = Xen NOW() + 5 s

struct Clock {
  std::atomic<uint64_t> now{kOffset + 1'000'000'000};
  uint64_t xen() const { return now.load() - kOffset; }
};

XenRingOptions Opts(Clock* c) {
  XenRingOptions o;
  o.clock = [c] { return c->now.load(); };
  return o;
}

// Attached to x; with `primed`, one telemetry record has taught it Xen's clock.
std::unique_ptr<XenRing> Ready(FakeXen& x, Clock& c, bool primed = true) {
  std::unique_ptr<XenRing> r;
  Status s = XenRing::Attach(x.mem(), x.size(), Opts(&c), &r);
  EXPECT_TRUE(s.ok()) << s.ToString();
  if (r && primed) {
    x.Emit(0, LULL_TEL_RUN, 0, c.xen(), 0);
    EXPECT_TRUE(r->Poll().ok());
  }
  return r;
}

TEST(XenRing, RejectsARegionThatFailsValidation) {
  FakeXen x;
  std::unique_ptr<XenRing> r;
  static_cast<lull_shm_hdr*>(x.mem())->version = 99;
  Status s = XenRing::Attach(x.mem(), x.size(), XenRingOptions{}, &r);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("fails validation"), std::string::npos) << s.ToString();
  EXPECT_FALSE(XenRing::Attach(x.mem(), x.size() - 64, XenRingOptions{}, &r).ok());
}

TEST(XenRing, TelemetryBecomesPerDomainState) {
  FakeXen x;
  Clock c;
  std::unique_ptr<XenRing> r = Ready(x, c, false);
  ASSERT_TRUE(r);
  const uint64_t t = c.xen();
  x.Emit(0, LULL_TEL_WAKE, 3, t - 900, 7'000'000);
  x.Emit(0, LULL_TEL_RUN, 3, t - 800, 100);
  x.Emit(1, LULL_TEL_RUN, 4, t - 700, 50, 1);
  x.Emit(0, LULL_TEL_BLOCK, 3, t - 100, 2'000'000);
  ASSERT_TRUE(r->Poll().ok());
  XenDomTel d3, d4;
  ASSERT_TRUE(r->DomTelemetry(3, &d3));
  ASSERT_TRUE(r->DomTelemetry(4, &d4));
  EXPECT_EQ(d3.wakes, 1u);
  EXPECT_EQ(d3.runs, 1u);
  EXPECT_EQ(d3.blocks, 1u);
  EXPECT_EQ(d3.ran_ns, 2'000'000u);
  EXPECT_EQ(d3.blocked_ns, 7'000'000u);
  EXPECT_EQ(d3.waited_ns, 100u);
  EXPECT_EQ(d3.blocked, 1u);
  EXPECT_EQ(d3.running, 0u);
  EXPECT_EQ(d4.running, 1u);
  XenRingStats st = r->stats();
  EXPECT_EQ(st.records, 4u);
  EXPECT_EQ(st.invalid, 0u);
  EXPECT_EQ(st.dropped, 0u);
  ASSERT_TRUE(st.clock_known);
  // The newest record is 100 ns old at the poll: the offset is learnt within that.
  EXPECT_EQ(st.clock_offset_ns, kOffset + 100);
}

TEST(XenRing, DropsAreCountedFromAttachOn) {
  FakeXen x(1, 16, 8);
  Clock c;
  for (int i = 0; i < 20; i++) x.Emit(0, LULL_TEL_RUN, 3, c.xen(), 0);  // 4 dropped, nobody drains
  std::unique_ptr<XenRing> r = Ready(x, c, false);
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->Poll().ok());
  EXPECT_EQ(r->stats().dropped, 0u);
  EXPECT_EQ(r->stats().records, 16u);
  for (int i = 0; i < 19; i++) x.Emit(0, LULL_TEL_RUN, 3, c.xen(), 0);  // 3 more dropped
  ASSERT_TRUE(r->Poll().ok());
  EXPECT_EQ(r->stats().dropped, 3u);
}

TEST(XenRing, BadRecordsAreCountedNeverSummed) {
  FakeXen x;
  Clock c;
  std::unique_ptr<XenRing> r = Ready(x, c, false);
  ASSERT_TRUE(r);
  const uint64_t t = c.xen();
  x.Emit(0, 42, 3, t, 1);                           // unknown type
  x.Emit(0, LULL_TEL_BLOCK, 0x7FF5, t, 1);          // reserved domid
  x.Emit(1, LULL_TEL_BLOCK, 3, t, 1ull << 62);      // a run of 146 years
  x.Emit(1, LULL_TEL_BLOCK, 3, t - 10, 5);          // fine, but older than the last
  ASSERT_TRUE(r->Poll().ok());
  XenRingStats st = r->stats();
  EXPECT_EQ(st.invalid, 3u);
  EXPECT_EQ(st.out_of_order, 1u);
  XenDomTel d;
  ASSERT_TRUE(r->DomTelemetry(3, &d));
  EXPECT_EQ(d.ran_ns, 5u);
  // A producer index far ahead: an error, no out-of-bounds read, the ring resumes.
  auto* ring = static_cast<lull_ring_hdr*>(lull_shm_tel_ring(&x.view(), 0));
  ring->prod += 1000;
  EXPECT_FALSE(r->Poll().ok());
  EXPECT_GT(r->stats().errors, 0u);
}

TEST(XenRing, NoGrantBeforeXensClockIsKnown) {
  FakeXen x;
  Clock c;
  std::unique_ptr<XenRing> r = Ready(x, c, false);
  ASSERT_TRUE(r);
  LeaseGrant g{1, 3, 0.5, 0, c.now + 1'000'000'000};
  Status s = r->Grant(g, 9);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("clock"), std::string::npos) << s.ToString();
}

TEST(XenRing, GrantRenewRevokeWriteTheTableAndTellXen) {
  FakeXen x;
  Clock c;
  std::unique_ptr<XenRing> r = Ready(x, c);
  ASSERT_TRUE(r);
  LeaseGrant g{77, 3, 0.5, 0, c.now + 2'000'000'000};
  ASSERT_TRUE(r->Grant(g, 9).ok());
  lull_lease_val v = x.Read(0);
  EXPECT_EQ(v.state, static_cast<uint32_t>(LULL_LEASE_ACTIVE));
  EXPECT_EQ(v.id, 77u);
  EXPECT_EQ(v.lender, 3);
  EXPECT_EQ(v.borrower, 9);
  EXPECT_EQ(v.credit, 150u);  // half a pCPU: 150 of its 300 credits a period
  EXPECT_EQ(v.expires_ns, c.xen() + 2'000'000'000);
  auto cmds = x.Commands();
  ASSERT_EQ(cmds.size(), 1u);
  EXPECT_EQ(cmds[0].type, LULL_CMD_LEASE_CHANGED);
  EXPECT_EQ(cmds[0].slot, 0);

  EXPECT_FALSE(r->Grant(g, 9).ok());                       // same id twice
  EXPECT_FALSE(r->Grant(LeaseGrant{78, 3, 0.5, 0, c.now + 1}, 3).ok());  // to itself
  EXPECT_FALSE(r->Grant(LeaseGrant{79, 3, 0, 0, c.now + 1}, 9).ok());    // no CPU
  EXPECT_FALSE(r->Grant(LeaseGrant{80, 3, 0.5, 0, c.now - 1}, 9).ok());  // past

  ASSERT_TRUE(r->Renew(77, c.now + 3'000'000'000).ok());
  EXPECT_EQ(x.Read(0).expires_ns, c.xen() + 3'000'000'000);
  ASSERT_TRUE(r->Grant(LeaseGrant{81, 4, 1.0, 0, c.now + 1'000'000'000}, 9).ok());
  EXPECT_EQ(x.Read(1).id, 81u);
  ASSERT_TRUE(r->Revoke(77).ok());
  EXPECT_EQ(x.Read(0).state, static_cast<uint32_t>(LULL_LEASE_FREE));
  EXPECT_FALSE(r->Revoke(77).ok());
  EXPECT_EQ(x.Commands().size(), 3u);  // renew, grant, revoke
  XenRingStats st = r->stats();
  EXPECT_EQ(st.grants, 2u);
  EXPECT_EQ(st.renewals, 1u);
  EXPECT_EQ(st.dom0_revokes, 1u);
}

TEST(XenRing, TableFullIsAClearError) {
  FakeXen x(1, 64, 2);
  Clock c;
  std::unique_ptr<XenRing> r = Ready(x, c);
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->Grant(LeaseGrant{1, 3, 0.1, 0, c.now + 1'000'000'000}, 9).ok());
  ASSERT_TRUE(r->Grant(LeaseGrant{2, 4, 0.1, 0, c.now + 1'000'000'000}, 9).ok());
  Status s = r->Grant(LeaseGrant{3, 5, 0.1, 0, c.now + 1'000'000'000}, 9);
  EXPECT_NE(s.message().find("table full"), std::string::npos) << s.ToString();
}

TEST(XenRing, XensRevocationIsTakenWithItsLatencyAndReportedAsDemand) {
  FakeXen x;
  Clock c;
  std::unique_ptr<XenRing> r = Ready(x, c, false);
  ASSERT_TRUE(r);
  std::vector<PressureEvent> seen;
  r->SetDemandHandler([&seen](const PressureEvent& e) { seen.push_back(e); });
  x.Emit(0, LULL_TEL_RUN, 0, c.xen(), 0);
  ASSERT_TRUE(r->Poll().ok());
  const int64_t off = r->stats().clock_offset_ns;
  ASSERT_TRUE(r->Grant(LeaseGrant{5, 3, 0.5, 0, c.now + 4'000'000'000}, 9).ok());
  x.Commands();
  // The lender wakes (its demand is back), runs; Xen revokes 12 ms later.
  const uint64_t wake = c.xen() + 1'000'000;
  x.Emit(1, LULL_TEL_WAKE, 3, wake, 3'000'000'000);
  x.Emit(1, LULL_TEL_RUN, 3, wake + 100'000, 100'000);
  x.RevokeSlot(0, wake + 12'000'000);
  c.now += 20'000'000;
  ASSERT_TRUE(r->Poll().ok());
  std::vector<std::pair<uint64_t, uint64_t>> rv;
  r->TakeRevoked(&rv);
  ASSERT_EQ(rv.size(), 1u);
  EXPECT_EQ(rv[0].first, 5u);
  EXPECT_EQ(rv[0].second, static_cast<uint64_t>(static_cast<int64_t>(wake + 12'000'000) + off));
  auto hist = r->revocations();
  ASSERT_EQ(hist.size(), 1u);
  EXPECT_DOUBLE_EQ(hist[0].wake_to_revoke_us, 12'000.0);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].domid, 3u);
  EXPECT_DOUBLE_EQ(seen[0].shortfall, 0.5);
  // dom0 freed the entry and told Xen; the lease is gone from our side too.
  EXPECT_EQ(x.Read(0).state, static_cast<uint32_t>(LULL_LEASE_FREE));
  EXPECT_EQ(x.Commands().size(), 1u);
  EXPECT_FALSE(r->Renew(5, c.now + 1'000'000'000).ok());
  r->TakeRevoked(&rv);
  EXPECT_EQ(rv.size(), 1u);  // taken once
  EXPECT_EQ(r->stats().xen_revokes, 1u);
}

TEST(XenRing, RevocationSeenInTheTableWhenTheRecordWasLost) {
  FakeXen x;
  Clock c;
  std::unique_ptr<XenRing> r = Ready(x, c);
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->Grant(LeaseGrant{6, 3, 0.5, 0, c.now + 4'000'000'000}, 9).ok());
  lull_lease* l = lull_shm_lease(&x.view(), 0);
  lull_lease_revoke(l, 6, c.xen() + 5);  // Xen half only
  ASSERT_TRUE(r->Poll().ok());
  std::vector<std::pair<uint64_t, uint64_t>> rv;
  r->TakeRevoked(&rv);
  ASSERT_EQ(rv.size(), 1u);
  EXPECT_EQ(rv[0].first, 6u);
  // A LEASE_REVOKED record for a lease that is not ours, or whose table entry does not
  // say so, is ignored.
  ASSERT_TRUE(r->Grant(LeaseGrant{7, 3, 0.5, 0, c.now + 4'000'000'000}, 9).ok());
  lull_tel_rec bogus{};
  x.Emit(0, LULL_TEL_LEASE_REVOKED, 3, c.xen() + 6, 7);  // slot 0, id 7, table unrevoked
  ASSERT_TRUE(r->Poll().ok());
  (void)bogus;
  rv.clear();
  r->TakeRevoked(&rv);
  EXPECT_TRUE(rv.empty());
  EXPECT_EQ(r->stats().xen_half_errors, 1u);
}

TEST(XenRing, GraceRuleIgnoresTimerWakesButNotReturningDemand) {
  FakeXen x;
  Clock c;
  std::unique_ptr<XenRing> r = Ready(x, c, false);
  ASSERT_TRUE(r);
  int demand = 0;
  r->SetDemandHandler([&demand](const PressureEvent&) { demand++; });
  x.Emit(0, LULL_TEL_RUN, 0, c.xen(), 0);
  ASSERT_TRUE(r->Poll().ok());
  ASSERT_TRUE(r->Grant(LeaseGrant{8, 3, 0.5, 0, c.now + 10'000'000'000}, 9).ok());
  // An idle guest: a wake every 20 ms, running 300 us each time, for a second.
  uint64_t t = c.xen();
  for (int i = 0; i < 50; i++) {
    t += 20'000'000;
    x.Emit(0, LULL_TEL_WAKE, 3, t, 20'000'000);
    x.Emit(0, LULL_TEL_BLOCK, 3, t + 300'000, 300'000);
    if (i % 10 == 9) {
      ASSERT_TRUE(r->Poll().ok());
    }
  }
  EXPECT_EQ(demand, 0);
  // Its load returns: it runs 30 ms in 10 ms slices.
  x.Emit(0, LULL_TEL_WAKE, 3, t + 20'000'000, 20'000'000);
  for (int i = 1; i <= 3; i++) x.Emit(0, LULL_TEL_DESCHED, 3, t + 20'000'000 + i * 10'000'000ull, 10'000'000);
  ASSERT_TRUE(r->Poll().ok());
  EXPECT_EQ(demand, 1);  // once per window
  EXPECT_EQ(r->stats().demand_events, 1u);
}

TEST(XenRing, LeftoverLeasesOfADeadDaemonAreFreedAtAttach) {
  FakeXen x;
  lull_lease_val old{};
  old.id = 99;
  old.state = LULL_LEASE_ACTIVE;
  old.lender = 3;
  old.borrower = 9;
  old.credit = 100;
  old.expires_ns = ~0ull;
  lull_lease_write(lull_shm_lease(&x.view(), 4), &old);
  Clock c;
  std::unique_ptr<XenRing> r = Ready(x, c, false);
  ASSERT_TRUE(r);
  EXPECT_EQ(x.Read(4).state, static_cast<uint32_t>(LULL_LEASE_FREE));
  auto cmds = x.Commands();
  ASSERT_EQ(cmds.size(), 1u);
  EXPECT_EQ(cmds[0].slot, 4);
}

// The poller thread and the lease calls share the state: run under TSan (label
// `concurrent`).
TEST(XenRing, PollerAndLeaseCallsRunConcurrently) {
  FakeXen x(1, 1024, 8);
  Clock c;
  std::unique_ptr<XenRing> r = Ready(x, c);
  ASSERT_TRUE(r);
  std::atomic<int> demand{0};
  r->SetDemandHandler([&demand](const PressureEvent&) { demand++; });
  ASSERT_TRUE(r->StartPoller(1).ok());
  EXPECT_FALSE(r->StartPoller(1).ok());
  for (uint64_t id = 1; id <= 200; id++) {
    ASSERT_TRUE(r->Grant(LeaseGrant{id, 3, 0.2, 0, c.now + 1'000'000'000}, 9).ok());
    if (id % 2) {
      ASSERT_TRUE(r->Revoke(id).ok());
    } else {
      // Xen revokes this one; the poller must notice and free it.
      uint32_t slot = 0;
      for (; slot < 8; slot++)
        if (x.Read(slot).id == id) break;
      ASSERT_LT(slot, 8u);
      lull_lease_revoke(lull_shm_lease(&x.view(), slot), id, c.xen() + id);
      std::vector<std::pair<uint64_t, uint64_t>> rv;
      // Until the poller has seen it; the 60 s bound only ends a hang (a loaded TSan run
      // can starve the poller for seconds).
      const auto hang = std::chrono::steady_clock::now() + std::chrono::seconds(60);
      while (rv.empty() && std::chrono::steady_clock::now() < hang) {
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        r->TakeRevoked(&rv);
      }
      ASSERT_EQ(rv.size(), 1u) << "lease " << id;
      EXPECT_EQ(rv[0].first, id);
    }
  }
  r->StopPoller();
  EXPECT_EQ(r->stats().xen_revokes, 100u);
  EXPECT_EQ(demand.load(), 100);
}

TEST(XenRing, HintsGoOnTheCommandRingOnXensClock) {
  FakeXen x;
  Clock c;
  std::unique_ptr<XenRing> r = Ready(x, c, false);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->Hint(3, c.now + 1000, 0.9, true).code(), Status::Code::kUnavailable) << "Xen's clock is unknown";
  x.Emit(0, LULL_TEL_RUN, 0, c.xen(), 0);
  ASSERT_TRUE(r->Poll().ok());
  x.Commands();
  const uint64_t from = c.now + 2'000'000'000;
  ASSERT_TRUE(r->Hint(3, from, 0.875, true).ok());
  ASSERT_TRUE(r->Hint(3, c.now, 0.75, false).ok());
  auto cmds = x.Commands();
  ASSERT_EQ(cmds.size(), 2u);
  EXPECT_EQ(cmds[0].type, LULL_CMD_HINT_BUSY);
  EXPECT_EQ(cmds[0].domid, 3u);
  EXPECT_EQ(cmds[0].value, 875u);
  EXPECT_EQ(cmds[0].until_ns, from - kOffset);
  EXPECT_TRUE(lull_cmd_valid(&cmds[0], 8));
  EXPECT_EQ(cmds[1].type, LULL_CMD_HINT_IDLE);
  EXPECT_EQ(cmds[1].value, 750u);
  // What Xen would ignore is not sent, and says why.
  Status s = r->Hint(3, from, 0.3, true);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("below 0.5"), std::string::npos) << s.ToString();
  EXPECT_EQ(r->Hint(LULL_DOMID_LIMIT, from, 0.9, true).code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(x.Commands().empty());
  EXPECT_EQ(r->stats().busy_hints, 1u);
  EXPECT_EQ(r->stats().idle_hints, 1u);
}

}  // namespace
}  // namespace lull::dom0
