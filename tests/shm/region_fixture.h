// Test helpers: a formatted region in a memfd segment, and lease values.
#pragma once

#include <gtest/gtest.h>

#include "shm/ring.h"
#include "shm/segment.h"

namespace lull::test {

inline constexpr lull_shm_geom kGeom{4, 64, 32, 8};

struct Region {
  Region() {
    size = lull_shm_size(&kGeom);
    EXPECT_GT(size, 0u);
    EXPECT_EQ(lull::shm::Segment::CreateMemfd(size, false, &seg), 0);
    EXPECT_EQ(lull_shm_format(seg.data(), seg.size(), &kGeom, 42), 0);
  }
  lull_shm_hdr* hdr() { return static_cast<lull_shm_hdr*>(seg.data()); }
  lull::shm::Segment seg;
  uint64_t size = 0;
};

inline lull_lease_val Lease(uint64_t id, uint16_t lender, uint16_t borrower, uint64_t expires) {
  lull_lease_val v{};
  v.id = id;
  v.state = LULL_LEASE_ACTIVE;
  v.lender = lender;
  v.borrower = borrower;
  v.credit = 150;
  v.expires_ns = expires;
  v.granted_ns = 1;
  return v;
}

}  // namespace lull::test
