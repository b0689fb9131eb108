// The lease table's sequence lock under a concurrent writer and reader (TSan in CI).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <thread>

#include "tests/shm/region_fixture.h"

namespace {

using lull::test::Lease;
using lull::test::Region;

// A writer changing the entry as fast as it can and a reader that must never see a mix
// of two writes: every lease written has credit == id % 1000 and expires == id * 3.
TEST(LeasesConcurrent, ReaderNeverSeesATornEntry) {
  Region r;
  lull_shm_view v{};
  ASSERT_EQ(lull_shm_attach(r.seg.data(), r.seg.size(), &v), 0);
  lull_lease* l = lull_shm_lease(&v, 1);
  lull_lease_val first = Lease(1, 1, 2, 3);
  first.credit = 1;
  lull_lease_write(l, &first);
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (uint64_t id = 2; id < 300000 && !stop.load(std::memory_order_relaxed); id++) {
      lull_lease_val w = Lease(id, static_cast<uint16_t>(id % 100),
                               static_cast<uint16_t>(id % 100 + 1), id * 3);
      w.credit = static_cast<uint32_t>(id % 1000);
      lull_lease_write(l, &w);
    }
  });
  uint64_t consistent = 0, busy = 0, last_id = 0;
  for (int i = 0; i < 300000; i++) {
    lull_lease_val got;
    int rc = lull_lease_read(l, &got);
    if (rc == -EBUSY) {
      busy++;
      continue;
    }
    ASSERT_EQ(rc, 0);
    ASSERT_EQ(got.credit, got.id % 1000);
    ASSERT_EQ(got.expires_ns, got.id * 3);
    ASSERT_EQ(got.lender, got.id == 1 ? 1 : got.id % 100);
    ASSERT_GE(got.id, last_id) << "the entry went back in time";
    last_id = got.id;
    consistent++;
  }
  stop = true;
  writer.join();
  EXPECT_GT(consistent, 0u);
  std::printf("consistent reads %llu, busy %llu\n", (unsigned long long)consistent,
              (unsigned long long)busy);
}

}  // namespace
