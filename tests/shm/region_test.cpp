// The region layout (format/attach), record validation and the lease table.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "tests/shm/region_fixture.h"

namespace {

using lull::test::kGeom;
using lull::test::Lease;
using lull::test::Region;

TEST(Region, SizeRejectsBadGeometry) {
  EXPECT_EQ(lull_shm_size(&kGeom), sizeof(lull_shm_hdr) +
                                       4 * lull_ring_bytes(64, sizeof(lull_tel_rec)) +
                                       lull_ring_bytes(32, sizeof(lull_cmd_rec)) +
                                       8 * sizeof(lull_lease));
  lull_shm_geom g = kGeom;
  g.n_tel = 0;
  EXPECT_EQ(lull_shm_size(&g), 0u);
  g = kGeom;
  g.tel_capacity = 100;
  EXPECT_EQ(lull_shm_size(&g), 0u);
  g = kGeom;
  g.n_leases = LULL_MAX_LEASES + 1;
  EXPECT_EQ(lull_shm_size(&g), 0u);
  g = {LULL_MAX_TEL_RINGS, LULL_RING_MAX_CAP, 16, 1};  // 4096 x 512 MiB: over 4 GiB
  EXPECT_EQ(lull_shm_size(&g), 0u);
}

TEST(Region, FormatThenAttach) {
  Region r;
  lull_shm_view v{};
  ASSERT_EQ(lull_shm_attach(r.seg.data(), r.seg.size(), &v), 0);
  EXPECT_EQ(v.geom.n_tel, 4u);
  EXPECT_EQ(v.geom.n_leases, 8u);
  EXPECT_EQ(v.epoch, 42u);
  EXPECT_EQ(v.size, r.size);
  // Each ring attaches with the geometry the view gives.
  for (uint32_t i = 0; i < 4; i++) {
    lull::shm::Consumer<lull_tel_rec> c;
    EXPECT_EQ(c.Attach(lull_shm_tel_ring(&v, i), lull::shm::TelRingBytes(v), 64), 0);
  }
  EXPECT_EQ(lull_shm_tel_ring(&v, 4), nullptr);
  lull::shm::Producer<lull_cmd_rec> p;
  EXPECT_EQ(p.Attach(lull_shm_cmd_ring(&v), lull::shm::CmdRingBytes(v), 32), 0);
  EXPECT_NE(lull_shm_lease(&v, 7), nullptr);
  EXPECT_EQ(lull_shm_lease(&v, 8), nullptr);
}

TEST(Region, AttachRejectsEveryCorruptHeaderField) {
  // Each field of the header, changed alone, must be caught.
  struct Case {
    const char* what;
    void (*mutate)(lull_shm_hdr*);
  };
  const Case cases[] = {
      {"magic", [](lull_shm_hdr* h) { h->magic ^= 1; }},
      {"version", [](lull_shm_hdr* h) { h->version = 2; }},
      {"hdr_size", [](lull_shm_hdr* h) { h->hdr_size = 128; }},
      {"total_size", [](lull_shm_hdr* h) { h->total_size += 64; }},
      {"n_tel", [](lull_shm_hdr* h) { h->n_tel = 5; }},
      {"n_leases", [](lull_shm_hdr* h) { h->n_leases = 9; }},
      {"tel_off", [](lull_shm_hdr* h) { h->tel_off = 128; }},
      {"tel_stride", [](lull_shm_hdr* h) { h->tel_stride -= 64; }},
      {"tel_capacity", [](lull_shm_hdr* h) { h->tel_capacity = 63; }},
      {"cmd_off", [](lull_shm_hdr* h) { h->cmd_off += 64; }},
      {"cmd_capacity", [](lull_shm_hdr* h) { h->cmd_capacity = 1u << 30; }},
      {"lease_off", [](lull_shm_hdr* h) { h->lease_off -= 64; }},
  };
  for (const Case& c : cases) {
    Region r;
    c.mutate(r.hdr());
    lull_shm_view v{};
    EXPECT_EQ(lull_shm_attach(r.seg.data(), r.seg.size(), &v), -EPROTO) << c.what;
  }
  Region r;
  lull_shm_view v{};
  EXPECT_EQ(lull_shm_attach(r.seg.data(), r.size - 1, &v), -EPROTO) << "short mapping";
  EXPECT_EQ(lull_shm_attach(static_cast<uint8_t*>(r.seg.data()) + 8, r.size - 8, &v), -EINVAL)
      << "misaligned";
}

TEST(Region, RingHeaderCorruptionAfterAttachIsCaught) {
  Region r;
  lull_shm_view v{};
  ASSERT_EQ(lull_shm_attach(r.seg.data(), r.seg.size(), &v), 0);
  auto* ring = static_cast<lull_ring_hdr*>(lull_shm_tel_ring(&v, 1));
  ring->capacity = 128;  // would double the ring past its neighbour
  lull::shm::Consumer<lull_tel_rec> c;
  EXPECT_EQ(c.Attach(ring, lull::shm::TelRingBytes(v), v.geom.tel_capacity), -EPROTO);
}

TEST(Records, TelemetryValidation) {
  lull_tel_rec r{};
  r.type = LULL_TEL_WAKE;
  r.pcpu = 3;
  r.domid = 7;
  r.pri = 64;
  EXPECT_TRUE(lull_tel_valid(&r, 4));
  r.pcpu = 4;
  EXPECT_FALSE(lull_tel_valid(&r, 4));
  r.pcpu = 0;
  r.type = 0;
  EXPECT_FALSE(lull_tel_valid(&r, 4));
  r.type = LULL_TEL_TYPE_MAX + 1;
  EXPECT_FALSE(lull_tel_valid(&r, 4));
  r.type = LULL_TEL_RUN;
  r.domid = LULL_DOMID_LIMIT;
  EXPECT_FALSE(lull_tel_valid(&r, 4));
  r.domid = 0x7FFF;  // the idle domain runs too
  EXPECT_TRUE(lull_tel_valid(&r, 4));
  r.pri = 65;
  EXPECT_FALSE(lull_tel_valid(&r, 4));
}

TEST(Records, CommandValidation) {
  lull_cmd_rec c{};
  c.type = LULL_CMD_LEASE_CHANGED;
  c.slot = 7;
  EXPECT_TRUE(lull_cmd_valid(&c, 8));
  c.slot = 8;
  EXPECT_FALSE(lull_cmd_valid(&c, 8));
  c.type = LULL_CMD_HINT_IDLE;
  c.domid = 3;
  c.value = 1000;
  EXPECT_TRUE(lull_cmd_valid(&c, 8));
  c.value = 1001;
  EXPECT_FALSE(lull_cmd_valid(&c, 8));
  c.type = 9;
  c.value = 0;
  EXPECT_FALSE(lull_cmd_valid(&c, 8));
}

TEST(Leases, EffectiveStates) {
  Region r;
  lull_shm_view v{};
  ASSERT_EQ(lull_shm_attach(r.seg.data(), r.seg.size(), &v), 0);
  lull_lease* l = lull_shm_lease(&v, 2);
  lull_lease_val got;
  ASSERT_EQ(lull_lease_read(l, &got), 0);
  EXPECT_EQ(lull_lease_effective(l, &got, 0), LULL_LEASE_FREE);

  lull_lease_val w = Lease(17, 3, 5, 1000);
  lull_lease_write(l, &w);
  ASSERT_EQ(lull_lease_read(l, &got), 0);
  EXPECT_EQ(got.id, 17u);
  EXPECT_EQ(got.lender, 3);
  EXPECT_EQ(got.borrower, 5);
  EXPECT_EQ(lull_lease_effective(l, &got, 999), LULL_LEASE_ACTIVE);
  EXPECT_EQ(lull_lease_effective(l, &got, 1000), LULL_LEASE_EXPIRED);

  lull_lease_revoke(l, 17, 500);  // the lender woke
  EXPECT_EQ(lull_lease_effective(l, &got, 600), LULL_LEASE_REVOKED);
  EXPECT_EQ(l->revoked_ns, 500u);

  // A new lease in the same slot is not revoked by the old revocation.
  w = Lease(18, 3, 5, 2000);
  lull_lease_write(l, &w);
  ASSERT_EQ(lull_lease_read(l, &got), 0);
  EXPECT_EQ(lull_lease_effective(l, &got, 600), LULL_LEASE_ACTIVE);
}

TEST(Leases, InvalidEntriesAreRejected) {
  Region r;
  lull_shm_view v{};
  ASSERT_EQ(lull_shm_attach(r.seg.data(), r.seg.size(), &v), 0);
  lull_lease* l = lull_shm_lease(&v, 0);
  lull_lease_val got;
  lull_lease_val bad[] = {Lease(0, 3, 5, 9), Lease(1, 3, 3, 9), Lease(1, LULL_DOMID_LIMIT, 5, 9),
                          Lease(1, 3, LULL_DOMID_LIMIT, 9)};
  for (auto& b : bad) {
    lull_lease_write(l, &b);
    EXPECT_EQ(lull_lease_read(l, &got), -EPROTO);
  }
  lull_lease_val big = Lease(1, 3, 5, 9);
  big.credit = LULL_LEASE_MAX_CREDIT + 1;
  lull_lease_write(l, &big);
  EXPECT_EQ(lull_lease_read(l, &got), -EPROTO);
  l->state = 7;  // neither FREE nor ACTIVE, written bypassing the lock
  EXPECT_EQ(lull_lease_read(l, &got), -EPROTO);
}

TEST(Leases, WriterThatNeverFinishesCannotStallTheReader) {
  Region r;
  lull_shm_view v{};
  ASSERT_EQ(lull_shm_attach(r.seg.data(), r.seg.size(), &v), 0);
  lull_lease* l = lull_shm_lease(&v, 0);
  l->seq = 3;  // odd forever
  lull_lease_val got;
  EXPECT_EQ(lull_lease_read(l, &got), -EBUSY);
}

}  // namespace
