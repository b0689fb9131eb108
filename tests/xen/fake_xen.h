// FakeXen - a lull region in a memfd with Xen's ends of its rings, for tests of
// dom0's end (dom0/xen_ring.h): telemetry pushed into per-pCPU rings, revocations
// written into the lease table's Xen half plus a LEASE_REVOKED record, the command ring
// consumed as the patched Xen (xen-patches/0005) does.
#pragma once

#include <sys/mman.h>

#include <vector>

#include <gtest/gtest.h>

#include "shm/lull_shm.h"
#include "shm/segment.h"

namespace lull::dom0 {

// A region in a memfd, with Xen's ends of its rings.
class FakeXen {
 public:
  explicit FakeXen(uint32_t n_tel = 2, uint32_t tel_cap = 64, uint32_t n_leases = 8) {
    geom_ = {n_tel, tel_cap, 16, n_leases};
    size_ = lull_shm_size(&geom_);
    EXPECT_EQ(0, lull::shm::Segment::CreateMemfd(size_, false, &seg_));
    mem_ = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, seg_.fd(), 0);
    EXPECT_NE(mem_, MAP_FAILED);
    EXPECT_EQ(0, lull_shm_format(mem_, size_, &geom_, 1));
    EXPECT_EQ(0, lull_shm_attach(mem_, size_, &view_));
    prods_.resize(n_tel);
    for (uint32_t i = 0; i < n_tel; i++)
      EXPECT_EQ(0, lull_prod_init(&prods_[i], lull_shm_tel_ring(&view_, i), view_.tel_stride, tel_cap,
                                  sizeof(lull_tel_rec)));
    EXPECT_EQ(0, lull_cons_init(&cmd_, lull_shm_cmd_ring(&view_),
                                lull_ring_bytes(16, sizeof(lull_cmd_rec)), 16, sizeof(lull_cmd_rec)));
  }
  ~FakeXen() { munmap(mem_, size_); }

  void Emit(uint32_t pcpu, uint8_t type, uint16_t dom, uint64_t t, uint64_t arg, uint16_t vcpu = 0) {
    lull_tel_rec r{};
    r.type = type;
    r.pri = 64;
    r.pcpu = static_cast<uint16_t>(pcpu);
    r.domid = dom;
    r.vcpu = vcpu;
    r.time_ns = t;
    r.arg = arg;
    lull_prod_push(&prods_[pcpu], &r, sizeof(r));
    lull_prod_publish(&prods_[pcpu]);
  }
  // Xen's revocation: the entry's Xen half, then the record.
  void RevokeSlot(uint32_t slot, uint64_t now) {
    lull_lease* l = lull_shm_lease(&view_, slot);
    lull_lease_val v{};
    ASSERT_EQ(0, lull_lease_read(l, &v));
    lull_lease_revoke(l, v.id, now);
    lull_tel_rec r{};
    r.type = LULL_TEL_LEASE_REVOKED;
    r.domid = v.lender;
    r.vcpu = static_cast<uint16_t>(slot);
    r.time_ns = now;
    r.arg = v.id;
    lull_prod_push(&prods_[0], &r, sizeof(r));
    lull_prod_publish(&prods_[0]);
  }
  lull_lease_val Read(uint32_t slot) {
    lull_lease_val v{};
    EXPECT_EQ(0, lull_lease_read(lull_shm_lease(&view_, slot), &v));
    return v;
  }
  std::vector<lull_cmd_rec> Commands() {  // up to 16 of them
    std::vector<lull_cmd_rec> out(16);
    int n = lull_cons_pop(&cmd_, out.data(), 16, sizeof(lull_cmd_rec));
    lull_cons_release(&cmd_);
    out.resize(n > 0 ? static_cast<size_t>(n) : 0);
    return out;
  }
  void* mem() const { return mem_; }
  uint64_t size() const { return size_; }
  lull_shm_view& view() { return view_; }

 private:
  lull_shm_geom geom_{};
  uint64_t size_ = 0;
  lull::shm::Segment seg_;
  void* mem_ = nullptr;
  lull_shm_view view_{};
  std::vector<lull_prod> prods_;
  lull_cons cmd_{};
};

}  // namespace lull::dom0
