// The snapshot module's Xen backend (dom0/snapshot/xen_snapshot.h) against FakeXen: a
// domain captured into the store and restored into a paused domain through a writable
// foreign mapping, and what is refused, with nothing written.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "dom0/snapshot/xen_snapshot.h"
#include "tests/migrate/fake_xen.h"

namespace lull::snapshot {
namespace {

using lull::xen::testing::FakeXen;

class XenSnapshot : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("lull-xen-snap-" + std::to_string(getpid()) + "-" +
                                                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::vector<uint8_t> Page(uint32_t dom, uint64_t pfn) {
    std::vector<uint8_t> p(kPageBytes);
    fx_.ReadGuestPage(dom, pfn, p.data());
    return p;
  }
  FakeXen fx_{8192};
  std::filesystem::path dir_;
};

TEST_F(XenSnapshot, CaptureThenRestoreUndoesTheGuestsWrites) {
  uint32_t dom = fx_.AddGuest(1200, FakeXen::Layout::kLinear, {9});
  const auto before = Page(dom, 300);
  XenCaptureReport cr;
  ASSERT_TRUE(CaptureXen(&fx_, dom, dir_.string(), {}, &cr).ok());
  EXPECT_TRUE(cr.paused_by_us);
  EXPECT_EQ(fx_.dom(dom).pause_count, 0);  // running again
  EXPECT_EQ(cr.pages, 1200u);
  EXPECT_EQ(cr.present, 1199u);
  // The guest runs on and writes; then it is paused and the snapshot restored.
  fx_.Write(dom, 300, 17, 0xee);
  fx_.Write(dom, 1199, 0, 0x11);
  ASSERT_TRUE(fx_.Pause(dom).ok());
  std::unique_ptr<SnapshotChain> chain;
  ASSERT_TRUE(SnapshotChain::Open(cr.write.path, &chain).ok());
  XenRestoreReport rr;
  lull::Status s = RestoreXen(&fx_, *chain, dom, &rr);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(rr.pages, 1200u);
  EXPECT_EQ(rr.changed, 2u);
  EXPECT_EQ(rr.absent, 1u);
  EXPECT_EQ(rr.read_only_same, 1u);  // pfn 5, the fake's page table
  EXPECT_EQ(rr.written, 1200u - 2u);
  EXPECT_EQ(rr.verified, 1200u);
  EXPECT_EQ(Page(dom, 300), before);
  EXPECT_EQ(fx_.dom(dom).pause_count, 1);  // still paused: the caller resumes it
}

TEST_F(XenSnapshot, RestoreRefusesARunningDomain) {
  uint32_t dom = fx_.AddGuest(64, FakeXen::Layout::kTree);
  XenCaptureReport cr;
  ASSERT_TRUE(CaptureXen(&fx_, dom, dir_.string(), {}, &cr).ok());
  std::unique_ptr<SnapshotChain> chain;
  ASSERT_TRUE(SnapshotChain::Open(cr.write.path, &chain).ok());
  XenRestoreReport rr;
  lull::Status s = RestoreXen(&fx_, *chain, dom, &rr);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("is running; pause it first"), std::string::npos) << s.ToString();
}

TEST_F(XenSnapshot, DifferentPageTableIsRefusedBeforeAnyWrite) {
  uint32_t dom = fx_.AddGuest(600, FakeXen::Layout::kLinear);
  XenCaptureReport cr;
  ASSERT_TRUE(CaptureXen(&fx_, dom, dir_.string(), {}, &cr).ok());
  fx_.Write(dom, 5, 0, 0x77);   // the read-only page changed since the capture
  fx_.Write(dom, 20, 0, 0x77);  // and a writable one
  const auto p20 = Page(dom, 20);
  ASSERT_TRUE(fx_.Pause(dom).ok());
  std::unique_ptr<SnapshotChain> chain;
  ASSERT_TRUE(SnapshotChain::Open(cr.write.path, &chain).ok());
  XenRestoreReport rr;
  lull::Status s = RestoreXen(&fx_, *chain, dom, &rr);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("pfn 0x5"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("Nothing was written"), std::string::npos) << s.ToString();
  EXPECT_EQ(Page(dom, 20), p20);
  EXPECT_EQ(rr.written, 0u);
}

TEST_F(XenSnapshot, SizeMismatchAndCorruptFileChangeNothing) {
  uint32_t a = fx_.AddGuest(600, FakeXen::Layout::kTree);
  uint32_t b = fx_.AddGuest(700, FakeXen::Layout::kTree, {}, 9);
  XenCaptureReport cr;
  ASSERT_TRUE(CaptureXen(&fx_, a, dir_.string(), {}, &cr).ok());
  ASSERT_TRUE(fx_.Pause(a).ok());
  ASSERT_TRUE(fx_.Pause(b).ok());
  std::unique_ptr<SnapshotChain> chain;
  ASSERT_TRUE(SnapshotChain::Open(cr.write.path, &chain).ok());
  XenRestoreReport rr;
  lull::Status s = RestoreXen(&fx_, *chain, b, &rr);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("has 700 pfns"), std::string::npos) << s.ToString();
  // Corrupt one chunk's payload (the header and manifest still validate; the chunk's
  // checksum does not).
  fx_.Write(a, 1, 0, 0x42);
  const auto p1 = Page(a, 1);
  ASSERT_GT(chain->file(0).chunks.size(), 3u);
  const uint64_t off = chain->file(0).chunks[2].offset;
  chain.reset();
  FILE* f = std::fopen(cr.write.path.c_str(), "r+b");
  ASSERT_NE(f, nullptr);
  std::fseek(f, static_cast<long>(off), SEEK_SET);
  const uint64_t junk = 0xdeadbeefdeadbeefull;
  std::fwrite(&junk, sizeof junk, 1, f);
  std::fclose(f);
  ASSERT_TRUE(SnapshotChain::Open(cr.write.path, &chain).ok());
  s = RestoreXen(&fx_, *chain, a, &rr);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("chunk"), std::string::npos) << s.ToString();
  EXPECT_EQ(Page(a, 1), p1);  // nothing half-restored
  EXPECT_EQ(rr.written, 0u);
}

TEST_F(XenSnapshot, CaptureOfAPausedDomainLeavesItPaused) {
  uint32_t dom = fx_.AddGuest(64, FakeXen::Layout::kTree);
  ASSERT_TRUE(fx_.Pause(dom).ok());
  XenCaptureReport cr;
  ASSERT_TRUE(CaptureXen(&fx_, dom, dir_.string(), {}, &cr).ok());
  EXPECT_FALSE(cr.paused_by_us);
  EXPECT_EQ(fx_.dom(dom).pause_count, 1);
  // A second capture of an unchanged guest is an increment with nothing new in it.
  XenCaptureReport cr2;
  ASSERT_TRUE(CaptureXen(&fx_, dom, dir_.string(), {}, &cr2).ok());
  EXPECT_FALSE(cr2.write.base);
  EXPECT_EQ(cr2.write.chunks_written, 0u);
}

}  // namespace
}  // namespace lull::snapshot
