// The Linux backing of the region: memfd and named POSIX shared memory.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "shm/segment.h"

namespace {

using lull::shm::Segment;

TEST(Segment, MemfdIsZeroedSharedAndSized) {
  Segment a;
  ASSERT_EQ(Segment::CreateMemfd(8192, false, &a), 0);
  EXPECT_EQ(a.size(), 8192u);
  auto* p = static_cast<unsigned char*>(a.data());
  for (size_t i = 0; i < 8192; i++) ASSERT_EQ(p[i], 0);
  // A second mapping of the same file sees the first one's writes.
  Segment b;
  ASSERT_EQ(Segment::FromFd(dup(a.fd()), &b), 0);
  std::memcpy(a.data(), "lull", 4);
  EXPECT_EQ(std::memcmp(b.data(), "lull", 4), 0);
}

TEST(Segment, BadArgumentsAreErrors) {
  Segment s;
  EXPECT_EQ(Segment::CreateMemfd(0, false, &s), -EINVAL);
  EXPECT_EQ(Segment::FromFd(-1, &s), -EBADF);
  EXPECT_EQ(Segment::CreateNamed("no-slash", 4096, &s), -EINVAL);
  EXPECT_EQ(Segment::OpenNamed("/lull-test-does-not-exist", &s), -ENOENT);
  EXPECT_EQ(s.data(), nullptr);
}

TEST(Segment, NamedCreateOpenUnlink) {
  std::string name = "/lull-test-" + std::to_string(getpid());
  Segment::Unlink(name);
  Segment a;
  ASSERT_EQ(Segment::CreateNamed(name, 4096, &a), 0);
  Segment dup_create;
  EXPECT_EQ(Segment::CreateNamed(name, 4096, &dup_create), -EEXIST);
  Segment b;
  ASSERT_EQ(Segment::OpenNamed(name, &b), 0);
  EXPECT_EQ(b.size(), 4096u);
  std::memcpy(a.data(), "ring", 4);
  EXPECT_EQ(std::memcmp(b.data(), "ring", 4), 0);
  EXPECT_EQ(Segment::Unlink(name), 0);
  EXPECT_EQ(Segment::Unlink(name), -ENOENT);
  // Mappings outlive the name.
  EXPECT_EQ(std::memcmp(b.data(), "ring", 4), 0);
}

TEST(Segment, MoveTransfersOwnership) {
  Segment a;
  ASSERT_EQ(Segment::CreateMemfd(4096, false, &a), 0);
  void* p = a.data();
  Segment b = std::move(a);
  EXPECT_EQ(b.data(), p);
  EXPECT_EQ(a.data(), nullptr);  // NOLINT(bugprone-use-after-move): the moved-from state
  EXPECT_EQ(a.fd(), -1);
}

}  // namespace
