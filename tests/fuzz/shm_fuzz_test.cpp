// The fuzz body in every `make test` (and under ASan+UBSan in CI): seeded inputs built to
// reach the interesting states -- a valid region with one field corrupted, and scripts
// of random operations -- so the hostile-memory promises are checked without clang.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "shm/lull_shm.h"
#include "tests/fuzz/shm_fuzz_body.h"

namespace {

TEST(ShmFuzz, RandomScripts) {
  std::mt19937_64 rng(20261121);
  for (int i = 0; i < 20000; i++) {
    std::vector<uint8_t> in(1 + rng() % 600);
    for (auto& b : in) b = static_cast<uint8_t>(rng());
    lull::fuzz::FuzzShmRegion(in.data(), in.size());
  }
}

TEST(ShmFuzz, ValidRegionsWithOneCorruptWord) {
  lull_shm_geom g{2, 16, 16, 4};
  std::vector<uint8_t> region(lull_shm_size(&g) + 64);
  uint8_t* p = region.data() + (64 - reinterpret_cast<uintptr_t>(region.data()) % 64) % 64;
  std::mt19937_64 rng(7);
  size_t bytes = lull_shm_size(&g);
  for (int i = 0; i < 3000; i++) {
    ASSERT_EQ(lull_shm_format(p, bytes, &g, 1), 0);
    uint64_t off = rng() % (bytes - 7), val = (i % 3) ? rng() : rng() % 64;
    std::memcpy(p + off, &val, sizeof(val));
    lull::fuzz::FuzzShmRegion(p, bytes);
  }
}

}  // namespace
