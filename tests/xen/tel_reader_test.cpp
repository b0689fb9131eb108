// TelReader against a region formatted in-process, with Xen's side played by the
// producer half of shm/lull_shm.h: what the scheduler patch pushes, the reader must sum,
// and what a broken or hostile producer writes, it must count and refuse.
#include "tests/xen/tel_reader.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <utility>
#include <vector>

namespace lull::xentest {
namespace {

struct Region {
  explicit Region(uint32_t n_tel, uint32_t cap) {
    geom = {n_tel, cap, 16, 4};
    size = lull_shm_size(&geom);
    mem = static_cast<uint8_t*>(std::aligned_alloc(64, (size + 63) / 64 * 64));
    EXPECT_EQ(lull_shm_format(mem, size, &geom, 1), 0);
    EXPECT_EQ(lull_shm_attach(mem, size, &view), 0);
    prods.resize(n_tel);
    for (uint32_t i = 0; i < n_tel; i++)
      EXPECT_EQ(lull_prod_init(&prods[i], lull_shm_tel_ring(&view, i), view.tel_stride, cap,
                               sizeof(lull_tel_rec)),
                0);
  }
  ~Region() { std::free(mem); }
  // Push and publish one record on ring `ring`, as lull_tel_emit does in Xen.
  int Emit(uint32_t ring, uint8_t type, uint16_t dom, uint64_t arg, uint64_t t) {
    lull_tel_rec r{};
    r.type = type;
    r.pri = 63;
    r.pcpu = static_cast<uint16_t>(ring);
    r.domid = dom;
    r.time_ns = t;
    r.arg = arg;
    int rc = lull_prod_push(&prods[ring], &r, sizeof(r));
    lull_prod_publish(&prods[ring]);
    return rc;
  }
  lull_ring_hdr* hdr(uint32_t ring) {
    return static_cast<lull_ring_hdr*>(lull_shm_tel_ring(&view, ring));
  }
  lull_shm_geom geom;
  uint64_t size;
  uint8_t* mem;
  lull_shm_view view{};
  std::vector<lull_prod> prods;
};

TEST(TelReader, SumsEventsPerDomainAcrossRings) {
  Region r(2, 16);
  TelReader reader;
  ASSERT_EQ(reader.Attach(r.mem, r.size), 0) << reader.error();
  EXPECT_EQ(reader.rings(), 2u);
  EXPECT_EQ(r.Emit(0, LULL_TEL_RUN, 1, 50, 100), 0);
  EXPECT_EQ(r.Emit(0, LULL_TEL_BLOCK, 1, 1000, 200), 0);
  EXPECT_EQ(r.Emit(1, LULL_TEL_WAKE, 1, 7, 300), 0);
  EXPECT_EQ(r.Emit(1, LULL_TEL_DESCHED, 2, 300, 400), 0);
  EXPECT_EQ(reader.Poll(), 4);
  const TelTotals& t = reader.totals();
  EXPECT_EQ(t.records, 4u);
  ASSERT_EQ(t.dom.count(1), 1u);
  EXPECT_EQ(t.dom.at(1).run, 1u);
  EXPECT_EQ(t.dom.at(1).block, 1u);
  EXPECT_EQ(t.dom.at(1).wake, 1u);
  EXPECT_EQ(t.dom.at(1).ran_ns, 1000u);
  EXPECT_EQ(t.dom.at(1).waited_ns, 50u);
  EXPECT_EQ(t.dom.at(1).blocked_ns, 7u);
  EXPECT_EQ(t.dom.at(2).desched, 1u);
  EXPECT_EQ(t.dom.at(2).ran_ns, 300u);
  EXPECT_EQ(t.dropped, 0u);
  EXPECT_EQ(t.errors, 0u);
  // Released: the producer sees the whole ring free again.
  EXPECT_EQ(lull_prod_refresh(&r.prods[0]), 16u);
  EXPECT_EQ(reader.Poll(), 0);
}

TEST(TelReader, CountsARunThatHasNotEndedUpToTheNewestRecord) {
  Region r(2, 16);
  TelReader reader;
  ASSERT_EQ(reader.Attach(r.mem, r.size), 0) << reader.error();
  EXPECT_EQ(r.Emit(0, LULL_TEL_RUN, 1, 0, 1000), 0);
  EXPECT_EQ(r.Emit(1, LULL_TEL_WAKE, 2, 0, 1500), 0);
  ASSERT_EQ(reader.Poll(), 2);
  EXPECT_EQ(reader.OpenRunNs(1), 500u);  // running since 1000, newest record at 1500
  EXPECT_EQ(reader.OpenRunNs(2), 0u);
  EXPECT_EQ(reader.totals().dom.at(1).ran_ns, 0u);
  // The run ends: ran_ns has it all, nothing is open; ran_ns + open grew by the same.
  EXPECT_EQ(r.Emit(0, LULL_TEL_DESCHED, 1, 1200, 2200), 0);
  ASSERT_EQ(reader.Poll(), 1);
  EXPECT_EQ(reader.OpenRunNs(1), 0u);
  EXPECT_EQ(reader.totals().dom.at(1).ran_ns, 1200u);
}

TEST(TelReader, ReportsProducerDropsWhenTheRingIsFull) {
  Region r(1, 16);
  TelReader reader;
  ASSERT_EQ(reader.Attach(r.mem, r.size), 0);
  int full = 0;
  for (int i = 0; i < 20; i++) full += r.Emit(0, LULL_TEL_RUN, 3, 1, 10 + i) == -ENOSPC;
  EXPECT_EQ(full, 4);
  EXPECT_EQ(reader.Poll(), 16);
  EXPECT_EQ(reader.totals().dropped, 4u);
  EXPECT_EQ(reader.totals().dom.at(3).run, 16u);
}

TEST(TelReader, CountsInvalidRecordsWithoutSummingThem) {
  Region r(1, 16);
  TelReader reader;
  ASSERT_EQ(reader.Attach(r.mem, r.size), 0);
  r.Emit(0, 99, 1, 5, 10);                        // no such type
  r.Emit(0, LULL_TEL_BLOCK, LULL_DOMID_LIMIT, 5, 20);  // reserved domain id
  r.Emit(0, LULL_TEL_BLOCK, 4, 5, 30);
  EXPECT_EQ(reader.Poll(), 3);
  EXPECT_EQ(reader.totals().invalid, 2u);
  EXPECT_EQ(reader.totals().records, 1u);
  EXPECT_EQ(reader.totals().dom.count(1), 0u);
  EXPECT_EQ(reader.totals().dom.at(4).ran_ns, 5u);
}

TEST(TelReader, RefusesAnInsaneProducerIndex) {
  Region r(1, 16);
  TelReader reader;
  ASSERT_EQ(reader.Attach(r.mem, r.size), 0);
  r.Emit(0, LULL_TEL_RUN, 1, 1, 10);
  // A producer index far past what the ring can hold: nothing behind it is trusted.
  __atomic_store_n(&r.hdr(0)->prod, uint64_t{1000}, __ATOMIC_RELEASE);
  EXPECT_EQ(reader.Poll(), 0);
  EXPECT_GT(reader.totals().errors, 0u);
  EXPECT_EQ(reader.totals().records, 0u);
}

TEST(TelReader, CountsTimestampsGoingBackwards) {
  Region r(1, 16);
  TelReader reader;
  ASSERT_EQ(reader.Attach(r.mem, r.size), 0);
  r.Emit(0, LULL_TEL_RUN, 1, 1, 500);
  r.Emit(0, LULL_TEL_RUN, 1, 1, 400);
  EXPECT_EQ(reader.Poll(), 2);
  EXPECT_EQ(reader.totals().out_of_order, 1u);
}

TEST(TelReader, KeepsTheNewestRecordsOfOneDomainAndTheLatestTime) {
  Region r(2, 16);
  TelReader reader;
  ASSERT_EQ(reader.Attach(r.mem, r.size), 0);
  reader.Keep(5, 2);
  r.Emit(0, LULL_TEL_WAKE, 5, 1, 100);
  r.Emit(1, LULL_TEL_RUN, 6, 1, 900);
  r.Emit(0, LULL_TEL_BLOCK, 5, 2, 200);
  r.Emit(0, LULL_TEL_LEASE_REVOKED, 5, 42, 300);
  EXPECT_EQ(reader.Poll(), 4);
  ASSERT_EQ(reader.kept().size(), 2u);
  EXPECT_EQ(reader.kept()[0].type, LULL_TEL_BLOCK);
  EXPECT_EQ(reader.kept()[1].type, LULL_TEL_LEASE_REVOKED);
  EXPECT_EQ(reader.kept()[1].arg, 42u);
  EXPECT_EQ(reader.totals().latest_ns, 900u);
}

lull_tel_rec Rec(uint8_t type, uint16_t vcpu, uint64_t t_ms, uint64_t arg_ms) {
  lull_tel_rec r{};
  r.type = type;
  r.vcpu = vcpu;
  r.domid = 1;
  r.time_ns = t_ms * 1000000;
  r.arg = arg_ms * 1000000;
  return r;
}

TEST(IdleWakes, SumsTheRunsFromAWakeToItsBlock) {
  constexpr uint64_t kMs = 1000000;
  std::vector<lull_tel_rec> recs = {
      // Idle: timer wakes of 4, 6 and 10 ms within 100 ms, then one of 2 ms much later.
      Rec(LULL_TEL_WAKE, 0, 0, 50), Rec(LULL_TEL_RUN, 0, 0, 0), Rec(LULL_TEL_BLOCK, 0, 4, 4),
      Rec(LULL_TEL_WAKE, 0, 30, 26), Rec(LULL_TEL_BLOCK, 0, 36, 6),
      Rec(LULL_TEL_WAKE, 0, 60, 24), Rec(LULL_TEL_BLOCK, 0, 70, 10),
      Rec(LULL_TEL_WAKE, 0, 500, 430), Rec(LULL_TEL_BLOCK, 0, 502, 2),
      // A wake preempted once: both pieces count, 30 + 12 ms.
      Rec(LULL_TEL_WAKE, 0, 1000, 498), Rec(LULL_TEL_DESCHED, 0, 1030, 30),
      Rec(LULL_TEL_RUN, 0, 1040, 10), Rec(LULL_TEL_BLOCK, 0, 1052, 12),
      // A busy phase that starts from a wake and runs for seconds: left out.
      Rec(LULL_TEL_WAKE, 0, 2000, 940), Rec(LULL_TEL_DESCHED, 0, 2030, 30),
      Rec(LULL_TEL_BLOCK, 0, 7000, 4970),
      // A block whose wake came before the records: not an idle wake either.
      Rec(LULL_TEL_BLOCK, 1, 7100, 3),
  };
  // The analysis orders records by time, whatever ring order they were drained in.
  std::swap(recs[1], recs[4]);
  IdleWakeStats s = AnalyzeIdleWakes(recs, 100 * kMs);
  EXPECT_EQ(s.runs, 5u);
  EXPECT_EQ(s.win_max_ns, 42 * kMs);  // the preempted wake; 4 + 6 + 10 = 20 at the start
  EXPECT_EQ(s.win_wakes_max, 3u);
  EXPECT_EQ(s.run_max_ns, 42 * kMs);
  EXPECT_EQ(s.run_p50_ns, 6 * kMs);
  // A window shorter than the gaps between the wakes sees one run at a time, and the
  // preempted wake (42 ms) is then a whole window: load.
  s = AnalyzeIdleWakes(recs, 25 * kMs);
  EXPECT_EQ(s.runs, 4u);
  EXPECT_EQ(s.win_max_ns, 10 * kMs);
  EXPECT_EQ(s.win_wakes_max, 1u);
  EXPECT_EQ(AnalyzeIdleWakes({}, 100 * kMs).runs, 0u);
}

TEST(TelReader, RejectsARegionThatIsNotOne) {
  alignas(64) static uint8_t junk[4096];  // zeroes: no magic
  TelReader reader;
  EXPECT_LT(reader.Attach(junk, sizeof(junk)), 0);
  EXPECT_NE(reader.error().find("does not validate"), std::string::npos);
  EXPECT_EQ(reader.Poll(), -EINVAL);
}

}  // namespace
}  // namespace lull::xentest
