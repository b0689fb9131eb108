#include "dom0/clone/block_cache.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <unistd.h>

namespace lull::clone {
namespace {

class BlockCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = ::testing::TempDir() + "/lull_clone_vol_" + std::to_string(getpid());
    ASSERT_TRUE(EnsureVolume(path_, 512, 16).ok());
  }
  void TearDown() override { std::remove(path_.c_str()); }
  std::vector<uint8_t> FileBlock(size_t i) {
    std::ifstream f(path_, std::ios::binary);
    std::vector<uint8_t> b(512);
    f.seekg(static_cast<std::streamoff>(i * 512));
    f.read(reinterpret_cast<char*>(b.data()), 512);
    return b;
  }
  std::string path_;
};

TEST_F(BlockCacheTest, ReturnsTheVolumeBytesAndCountsHits) {
  BlockCache c;
  ASSERT_TRUE(c.Open(path_, 512, 4).ok());
  EXPECT_EQ(c.blocks(), 16u);
  std::vector<uint8_t> b;
  ASSERT_TRUE(c.Read(3, &b).ok());
  EXPECT_EQ(b, FileBlock(3));
  ASSERT_TRUE(c.Read(3, &b).ok());
  EXPECT_EQ(b, FileBlock(3));
  ASSERT_TRUE(c.Read(16 + 5, &b).ok());  // wraps modulo the volume
  EXPECT_EQ(b, FileBlock(5));
  EXPECT_EQ(c.volume_reads(), 2u);
  EXPECT_EQ(c.hits(), 1u);
  EXPECT_NE(FileBlock(3), FileBlock(5));
}

TEST_F(BlockCacheTest, EvictsLeastRecentlyUsed) {
  BlockCache c;
  ASSERT_TRUE(c.Open(path_, 512, 2).ok());
  std::vector<uint8_t> b;
  c.Read(0, &b);
  c.Read(1, &b);
  c.Read(0, &b);  // 0 is now the most recent
  c.Read(2, &b);  // evicts 1
  EXPECT_EQ(c.volume_reads(), 3u);
  c.Read(0, &b);
  EXPECT_EQ(c.volume_reads(), 3u);  // still cached
  c.Read(1, &b);
  EXPECT_EQ(c.volume_reads(), 4u);  // was evicted
}

TEST_F(BlockCacheTest, CapacityZeroReadsTheVolumeEveryTime) {
  BlockCache c;
  ASSERT_TRUE(c.Open(path_, 512, 0).ok());
  std::vector<uint8_t> b;
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(c.Read(7, &b).ok());
  EXPECT_EQ(c.volume_reads(), 5u);
  EXPECT_EQ(c.hits(), 0u);
}

TEST_F(BlockCacheTest, RejectsAVolumeThatIsNotWholeBlocks) {
  BlockCache c;
  Status s = c.Open(path_, 3000, 4);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("multiple of the block size"), std::string::npos);
  s = c.Open(path_ + ".missing", 512, 4);
  EXPECT_EQ(s.code(), Status::Code::kIoError);
  std::vector<uint8_t> b;
  EXPECT_FALSE(c.Read(0, &b).ok());
}

}  // namespace
}  // namespace lull::clone
