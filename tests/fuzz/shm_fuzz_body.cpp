// How the input is used:
//  1. The input, copied into an aligned buffer, is offered as a whole region to
//     lull_shm_attach(). When it attaches, every ring is drained and every lease read.
//  2. A valid region is formatted with a geometry picked from the first bytes, and then
//     the rest of the input is a script that interleaves a real producer's pushes and
//     publishes with scribbles of arbitrary values at arbitrary offsets of the region
//     (indices, geometry, records, leases) and with the consumer's pops and releases.
// After each pop the consumer's promises are checked: the count is within the buffer,
// every record returned carries the seq of its index, and the consumer's own index
// only moves forward.
#include "tests/fuzz/shm_fuzz_body.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "shm/ring.h"

namespace lull::fuzz {
namespace {

#define FUZZ_CHECK(cond)                                                   \
  do {                                                                     \
    if (!(cond)) {                                                         \
      std::fprintf(stderr, "fuzz invariant broken: %s (%s:%d)\n", #cond, __FILE__, \
                   __LINE__);                                              \
      std::abort();                                                        \
    }                                                                      \
  } while (0)

struct Aligned {
  explicit Aligned(size_t n) : size(n) {
    p = static_cast<uint8_t*>(::operator new(n ? n : 1, std::align_val_t{64}));
  }
  ~Aligned() { ::operator delete(p, std::align_val_t{64}); }
  uint8_t* p;
  size_t size;
};

class Input {
 public:
  Input(const uint8_t* d, size_t n) : d_(d), n_(n) {}
  bool empty() const { return i_ >= n_; }
  template <class T>
  T Take() {
    T v{};
    size_t k = sizeof(T) < n_ - i_ ? sizeof(T) : n_ - i_;
    if (i_ < n_) std::memcpy(&v, d_ + i_, k);
    i_ += sizeof(T);
    return v;
  }

 private:
  const uint8_t* d_;
  size_t n_;
  size_t i_ = 0;
};

// Drain a consumer, checking its promises; bounded by a few laps of the ring.
template <class Rec>
void Drain(lull::shm::Consumer<Rec>& c, uint32_t capacity, uint32_t max) {
  std::vector<Rec> buf(max);
  for (uint32_t round = 0; round < 4; round++) {
    uint64_t before = c.consumed();
    int got = c.Pop(buf.data(), max);
    FUZZ_CHECK(got <= static_cast<int>(max));
    FUZZ_CHECK(got >= 0 || got == -EPROTO);
    FUZZ_CHECK(c.consumed() >= before);
    if (got > 0) FUZZ_CHECK(c.consumed() - before <= capacity);
    for (int i = 0; i < got; i++) {
      uint32_t seq = buf[i].seq;
      // Returned records have seqs of indices in (before, consumed], in order.
      FUZZ_CHECK(static_cast<uint32_t>(seq - static_cast<uint32_t>(before)) <
                 static_cast<uint32_t>(c.consumed() - before));
      if (i > 0) FUZZ_CHECK(seq != buf[i - 1].seq);
    }
    c.Release();
    if (got == 0) break;
  }
}

void AttachWhole(const uint8_t* data, size_t size) {
  Aligned mem(size);
  std::memcpy(mem.p, data, size);
  lull_shm_view v{};
  if (lull_shm_attach(mem.p, size, &v) != 0) return;
  FUZZ_CHECK(v.size <= size);
  for (uint32_t i = 0; i < v.geom.n_tel && i < 8; i++) {
    lull::shm::Consumer<lull_tel_rec> c;
    if (c.Attach(lull_shm_tel_ring(&v, i), lull::shm::TelRingBytes(v), v.geom.tel_capacity) == 0)
      Drain(c, v.geom.tel_capacity, 64);
  }
  lull::shm::Consumer<lull_cmd_rec> cc;
  if (cc.Attach(lull_shm_cmd_ring(&v), lull::shm::CmdRingBytes(v), v.geom.cmd_capacity) == 0)
    Drain(cc, v.geom.cmd_capacity, 64);
  for (uint32_t i = 0; i < v.geom.n_leases && i < 64; i++) {
    lull_lease_val lv{};
    lull_lease* l = lull_shm_lease(&v, i);
    if (lull_lease_read(l, &lv) == 0) {
      FUZZ_CHECK(lull_lease_val_valid(&lv));
      (void)lull_lease_effective(l, &lv, 12345);
    }
  }
}

void Script(const uint8_t* data, size_t size) {
  Input in(data, size);
  uint8_t g0 = in.Take<uint8_t>();
  lull_shm_geom g{1u + (g0 & 3u), 16u << ((g0 >> 2) & 3u), 16u << ((g0 >> 4) & 1u),
                  1u + ((g0 >> 5) & 7u)};
  uint64_t bytes = lull_shm_size(&g);
  FUZZ_CHECK(bytes != 0);
  Aligned mem(bytes);
  FUZZ_CHECK(lull_shm_format(mem.p, bytes, &g, 1) == 0);
  lull_shm_view v{};
  FUZZ_CHECK(lull_shm_attach(mem.p, bytes, &v) == 0);

  // Xen's side: producers of telemetry, consumer of commands. dom0's side: the reverse.
  lull::shm::Producer<lull_tel_rec> tp;
  lull::shm::Consumer<lull_tel_rec> tc;
  lull::shm::Producer<lull_cmd_rec> cp;
  lull::shm::Consumer<lull_cmd_rec> cc;
  FUZZ_CHECK(tp.Attach(lull_shm_tel_ring(&v, 0), lull::shm::TelRingBytes(v), g.tel_capacity) == 0);
  FUZZ_CHECK(tc.Attach(lull_shm_tel_ring(&v, 0), lull::shm::TelRingBytes(v), g.tel_capacity) == 0);
  FUZZ_CHECK(cp.Attach(lull_shm_cmd_ring(&v), lull::shm::CmdRingBytes(v), g.cmd_capacity) == 0);
  FUZZ_CHECK(cc.Attach(lull_shm_cmd_ring(&v), lull::shm::CmdRingBytes(v), g.cmd_capacity) == 0);

  for (int steps = 0; !in.empty() && steps < 512; steps++) {
    uint8_t op = in.Take<uint8_t>();
    switch (op % 8) {
      case 0: {  // scribble 8 bytes anywhere in the region
        uint32_t off = in.Take<uint32_t>() % (bytes - 7);
        uint64_t val = in.Take<uint64_t>();
        std::memcpy(mem.p + off, &val, sizeof(val));
        break;
      }
      case 1: {  // scribble one index field precisely
        uint64_t val = in.Take<uint64_t>();
        auto* r = static_cast<lull_ring_hdr*>(
            (op & 8) ? lull_shm_cmd_ring(&v) : lull_shm_tel_ring(&v, 0));
        ((op & 16) ? r->prod : (op & 32) ? r->cons : r->dropped) = val;
        break;
      }
      case 2: {  // the producer pushes a burst and maybe publishes
        uint8_t n = in.Take<uint8_t>();
        lull_tel_rec t{};
        t.type = LULL_TEL_WAKE;
        for (uint8_t i = 0; i < n % 40; i++) {
          t.time_ns = i;
          tp.Push(t);
        }
        if (n & 0x80) tp.Publish();
        break;
      }
      case 3:
        Drain(tc, g.tel_capacity, 1 + (op >> 3) % 32);
        break;
      case 4: {
        lull_cmd_rec c{};
        c.type = static_cast<uint8_t>(in.Take<uint8_t>() % 4);
        c.slot = in.Take<uint16_t>();
        cp.Push(c);
        cp.Publish();
        break;
      }
      case 5: {  // Xen drains commands, validating each one
        std::vector<lull_cmd_rec> buf(16);
        int got = cc.Pop(buf.data(), 16);
        FUZZ_CHECK(got <= 16);
        for (int i = 0; i < got; i++) (void)lull_cmd_valid(&buf[i], g.n_leases);
        cc.Release();
        break;
      }
      case 6: {  // lease write and read
        uint32_t slot = in.Take<uint8_t>() % g.n_leases;
        lull_lease_val lv{};
        lv.id = in.Take<uint16_t>();
        lv.state = in.Take<uint8_t>() % 3;
        lv.lender = in.Take<uint16_t>();
        lv.borrower = in.Take<uint16_t>();
        lv.credit = in.Take<uint32_t>();
        lv.expires_ns = in.Take<uint64_t>();
        lull_lease* l = lull_shm_lease(&v, slot);
        if (op & 8) lull_lease_write(l, &lv);
        lull_lease_val got{};
        if (lull_lease_read(l, &got) == 0) FUZZ_CHECK(lull_lease_val_valid(&got));
        if (op & 16) lull_lease_revoke(l, got.id, 5);
        break;
      }
      case 7: {  // a side restarts and re-attaches to whatever the header now says
        lull_shm_view v2{};
        if (lull_shm_attach(mem.p, bytes, &v2) == 0) {
          lull::shm::Consumer<lull_tel_rec> c2;
          if (c2.Attach(lull_shm_tel_ring(&v2, 0), lull::shm::TelRingBytes(v2),
                        v2.geom.tel_capacity) == 0)
            Drain(c2, v2.geom.tel_capacity, 32);
        }
        break;
      }
    }
  }
}

}  // namespace

int FuzzShmRegion(const uint8_t* data, size_t size) {
  if (size >= sizeof(lull_shm_hdr)) AttachWhole(data, size);
  Script(data, size);
  return 0;
}

}  // namespace lull::fuzz
