// Unit tests of the ring operations in shm/lull_shm.h through the C++ ends.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <vector>

#include "shm/ring.h"

namespace {

struct Rec {
  uint32_t seq;
  uint32_t tag;
  uint64_t value;
};
static_assert(sizeof(Rec) == 16);

// A ring in private, cache-line aligned memory.
struct TestRing {
  explicit TestRing(uint32_t cap) : capacity(cap), bytes(lull_ring_bytes(cap, sizeof(Rec))) {
    mem.reset(static_cast<uint8_t*>(::operator new(bytes, std::align_val_t{64})));
    lull__ring_format(hdr(), cap, sizeof(Rec));
  }
  lull_ring_hdr* hdr() { return reinterpret_cast<lull_ring_hdr*>(mem.get()); }
  uint8_t* slot(uint64_t i) {
    return mem.get() + sizeof(lull_ring_hdr) + (i & (capacity - 1)) * sizeof(Rec);
  }
  struct Del {
    void operator()(uint8_t* p) const { ::operator delete(p, std::align_val_t{64}); }
  };
  uint32_t capacity;
  uint64_t bytes;
  std::unique_ptr<uint8_t, Del> mem;
};

// A ring with both of its ends attached.
struct Ends {
  explicit Ends(uint32_t cap) : r(cap) {
    EXPECT_EQ(p.Attach(r.mem.get(), r.bytes, cap), 0);
    EXPECT_EQ(c.Attach(r.mem.get(), r.bytes, cap), 0);
  }
  TestRing r;
  lull::shm::Producer<Rec> p;
  lull::shm::Consumer<Rec> c;
};

Rec Make(uint64_t v) { return Rec{0, static_cast<uint32_t>(v * 7), v}; }

TEST(Ring, AttachChecksGeometry) {
  TestRing r(16);
  lull::shm::Producer<Rec> p;
  EXPECT_EQ(p.Attach(r.mem.get(), r.bytes, 16), 0);
  EXPECT_EQ(p.Attach(r.mem.get(), r.bytes, 32), -EINVAL);      // larger than the memory
  EXPECT_EQ(p.Attach(r.mem.get(), r.bytes, 8), -EINVAL);       // below the minimum
  EXPECT_EQ(p.Attach(r.mem.get(), r.bytes - 1, 16), -EINVAL);  // memory too short
  EXPECT_EQ(p.Attach(r.mem.get(), r.bytes, 24), -EINVAL);      // not a power of two
  lull::shm::Consumer<Rec> c;
  r.hdr()->magic = 0;
  EXPECT_EQ(c.Attach(r.mem.get(), r.bytes, 16), -EPROTO);
  r.hdr()->magic = LULL_SHM_MAGIC;
  r.hdr()->record_size = 24;  // a ring of another record type
  EXPECT_EQ(c.Attach(r.mem.get(), r.bytes, 16), -EPROTO);
}

TEST(Ring, EmptyPopsNothing) {
  Ends e(16);
  auto& [r, p, c] = e;
  Rec out[4];
  EXPECT_EQ(c.Pop(out, 4), 0);
  // Pushed but not published: still invisible.
  ASSERT_TRUE(p.Push(Make(1)));
  EXPECT_EQ(c.Pop(out, 4), 0);
  p.Publish();
  ASSERT_EQ(c.Pop(out, 4), 1);
  EXPECT_EQ(out[0].value, 1u);
  EXPECT_EQ(out[0].tag, 7u);
  EXPECT_EQ(out[0].seq, 0u);
}

TEST(Ring, FullDropsAndCounts) {
  Ends e(16);
  auto& [r, p, c] = e;
  for (uint64_t i = 0; i < 16; i++) ASSERT_TRUE(p.Push(Make(i)));
  EXPECT_FALSE(p.Push(Make(99)));
  EXPECT_FALSE(p.Push(Make(100)));
  p.Publish();
  EXPECT_EQ(p.dropped(), 2u);
  EXPECT_EQ(c.producer_dropped(), 2u);
  Rec out[16];
  ASSERT_EQ(c.Pop(out, 16), 16);
  for (uint64_t i = 0; i < 16; i++) EXPECT_EQ(out[i].value, i);
  // Not released yet: the producer still sees a full ring.
  EXPECT_FALSE(p.Push(Make(101)));
  c.Release();
  EXPECT_TRUE(p.Push(Make(102)));
  EXPECT_EQ(p.dropped(), 3u);
}

TEST(Ring, PushNStagesWhatFitsWithoutCountingDrops) {
  Ends e(16);
  auto& [r, p, c] = e;
  std::vector<Rec> in(20);
  for (uint64_t i = 0; i < 20; i++) in[i] = Make(i);
  EXPECT_EQ(p.PushN(in.data(), 10), 10u);
  EXPECT_EQ(p.PushN(in.data() + 10, 10), 6u);  // six slots were left
  EXPECT_EQ(p.dropped(), 0u);
  p.Drop(4);  // the caller gives up on the other four
  EXPECT_EQ(p.dropped(), 4u);
  EXPECT_EQ(c.producer_dropped(), 4u);
  p.Publish();
  Rec out[16];
  ASSERT_EQ(c.Pop(out, 16), 16);
  for (uint32_t i = 0; i < 16; i++) {
    EXPECT_EQ(out[i].value, i);
    EXPECT_EQ(out[i].seq, i);
  }
  c.Release();
  EXPECT_EQ(p.PushN(in.data() + 16, 4), 4u);  // the batch straddles the wrap point
  p.Publish();
  ASSERT_EQ(c.Pop(out, 16), 4);
  EXPECT_EQ(out[3].value, 19u);
  EXPECT_EQ(out[3].seq, 19u);
}

TEST(Ring, WrapsAroundManyLaps) {
  Ends e(16);
  auto& [r, p, c] = e;
  uint64_t next_in = 0, next_out = 0;
  Rec out[16];
  // Uneven batch sizes so that batches straddle the wrap point at every offset.
  for (int round = 0; round < 1000; round++) {
    uint32_t n = 1 + round % 13;
    for (uint32_t i = 0; i < n; i++)
      if (p.Push(Make(next_in))) next_in++;
    p.Publish();
    uint32_t m = 1 + round % 7;
    int got = c.Pop(out, m);
    ASSERT_GE(got, 0);
    for (int i = 0; i < got; i++) ASSERT_EQ(out[i].value, next_out++);
    c.Release();
  }
  int got;
  while ((got = c.Pop(out, 16)) > 0)
    for (int i = 0; i < got; i++) ASSERT_EQ(out[i].value, next_out++);
  EXPECT_EQ(next_out, next_in);
  EXPECT_GT(next_in, 16u * 100);
  EXPECT_EQ(c.errors(), 0u);
  EXPECT_EQ(p.errors(), 0u);
}

TEST(Ring, BatchSizesUpToCapacity) {
  for (uint32_t batch : {1u, 2u, 7u, 16u, 63u, 64u}) {
    Ends e(64);
    auto& [r, p, c] = e;
    std::vector<Rec> out(batch);
    uint64_t in = 0, seen = 0;
    for (int round = 0; round < 50; round++) {
      for (uint32_t i = 0; i < batch; i++) ASSERT_TRUE(p.Push(Make(in++)));
      p.Publish();
      ASSERT_EQ(c.Pop(out.data(), batch), static_cast<int>(batch)) << "batch " << batch;
      for (uint32_t i = 0; i < batch; i++) ASSERT_EQ(out[i].value, seen++);
      c.Release();
    }
  }
}

TEST(Ring, ResumesFromPublishedIndices) {
  TestRing r(16);
  {
    lull::shm::Producer<Rec> p;
    ASSERT_EQ(p.Attach(r.mem.get(), r.bytes, 16), 0);
    for (uint64_t i = 0; i < 5; i++) ASSERT_TRUE(p.Push(Make(i)));
    p.Publish();
  }
  lull::shm::Consumer<Rec> c;
  ASSERT_EQ(c.Attach(r.mem.get(), r.bytes, 16), 0);
  Rec out[16];
  ASSERT_EQ(c.Pop(out, 2), 2);
  c.Release();
  // A restarted producer and consumer continue where the published indices say.
  lull::shm::Producer<Rec> p2;
  ASSERT_EQ(p2.Attach(r.mem.get(), r.bytes, 16), 0);
  ASSERT_TRUE(p2.Push(Make(5)));
  p2.Publish();
  lull::shm::Consumer<Rec> c2;
  ASSERT_EQ(c2.Attach(r.mem.get(), r.bytes, 16), 0);
  ASSERT_EQ(c2.Pop(out, 16), 4);
  for (int i = 0; i < 4; i++) EXPECT_EQ(out[i].value, 2u + i);
}

// --- The other side is hostile -------------------------------------------------------

TEST(RingHostile, ProdBeyondCapacityIsRejected) {
  Ends e(16);
  auto& [r, p, c] = e;
  r.hdr()->prod = 1000;  // claims 1000 records in a 16-slot ring
  Rec out[16];
  EXPECT_EQ(c.Pop(out, 16), -EPROTO);
  EXPECT_EQ(c.errors(), 1u);
  EXPECT_EQ(c.skipped(), 1000u);
  // Resynchronised: the next call is well-behaved (empty).
  EXPECT_EQ(c.Pop(out, 16), 0);
}

TEST(RingHostile, ProdGoingBackwardsIsRejected) {
  Ends e(16);
  auto& [r, p, c] = e;
  for (int i = 0; i < 8; i++) ASSERT_TRUE(p.Push(Make(i)));
  p.Publish();
  Rec out[16];
  ASSERT_EQ(c.Pop(out, 16), 8);
  r.hdr()->prod = 3;
  EXPECT_EQ(c.Pop(out, 16), -EPROTO);
  EXPECT_EQ(c.errors(), 1u);
  EXPECT_EQ(c.consumed(), 8u) << "the consumer followed prod backwards";
  // Records 3..7 are re-published over their old slots: none is returned a second time,
  // and the ring carries on once prod passes the consumer again.
  r.hdr()->prod = 8;
  EXPECT_EQ(c.Pop(out, 16), 0);
  ASSERT_TRUE(p.Push(Make(8)));
  p.Publish();
  ASSERT_EQ(c.Pop(out, 16), 1);
  EXPECT_EQ(out[0].value, 8u);
}

TEST(RingHostile, StaleOrForgedSlotsAreDropped) {
  Ends e(16);
  auto& [r, p, c] = e;
  for (int i = 0; i < 4; i++) ASSERT_TRUE(p.Push(Make(i)));
  p.Publish();
  // Corrupt record 2's seq, as a producer that advanced prod without writing would.
  uint32_t bad = 77;
  std::memcpy(r.slot(2), &bad, sizeof(bad));
  Rec out[16];
  ASSERT_EQ(c.Pop(out, 16), 3);
  EXPECT_EQ(out[0].value, 0u);
  EXPECT_EQ(out[1].value, 1u);
  EXPECT_EQ(out[2].value, 3u);
  EXPECT_EQ(c.errors(), 1u);
  EXPECT_EQ(c.skipped(), 1u);
}

TEST(RingHostile, InsaneConsMakesProducerDropNotOverwrite) {
  TestRing r(16);
  lull::shm::Producer<Rec> p;
  ASSERT_EQ(p.Attach(r.mem.get(), r.bytes, 16), 0);
  for (int i = 0; i < 16; i++) ASSERT_TRUE(p.Push(Make(i)));
  p.Publish();
  std::vector<uint8_t> before(r.mem.get() + sizeof(lull_ring_hdr),
                              r.mem.get() + r.bytes);
  for (uint64_t bogus : {uint64_t{1000}, ~uint64_t{0}}) {
    r.hdr()->cons = bogus;  // ahead of prod: a consumer that lies
    EXPECT_FALSE(p.Push(Make(50)));
  }
  EXPECT_EQ(p.errors(), 2u);
  EXPECT_EQ(p.dropped(), 2u);
  std::vector<uint8_t> after(r.mem.get() + sizeof(lull_ring_hdr), r.mem.get() + r.bytes);
  EXPECT_EQ(before, after) << "the producer wrote into the ring on an insane cons";
  r.hdr()->cons = 4;  // sane again: four slots free
  EXPECT_TRUE(p.Push(Make(51)));
}

TEST(RingHostile, ProducerAttachRejectsInsaneIndices) {
  TestRing r(16);
  r.hdr()->prod = 5;
  r.hdr()->cons = 9;
  lull::shm::Producer<Rec> p;
  EXPECT_EQ(p.Attach(r.mem.get(), r.bytes, 16), -EPROTO);
  lull::shm::Consumer<Rec> c;  // the consumer starts at the producer's position instead
  ASSERT_EQ(c.Attach(r.mem.get(), r.bytes, 16), 0);
  EXPECT_EQ(c.errors(), 1u);
  EXPECT_EQ(c.consumed(), 5u);
}

}  // namespace
