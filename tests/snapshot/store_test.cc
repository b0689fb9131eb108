// Snapshot store: round trips, increments, dedup, tiers, crash safety and bad files.
#include "dom0/snapshot/store.h"

#include <gtest/gtest.h>
#include <lz4.h>
#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>

#include "tests/snapshot/test_util.h"

namespace lull::snapshot {
namespace {

constexpr uint64_t kP = kPageBytes;

void ExpectChainEquals(const SnapshotChain& c, const std::vector<uint8_t>& mem) {
  ASSERT_EQ(c.guest_pages() * kP, mem.size());
  std::vector<uint8_t> page(kP);
  for (uint64_t p = 0; p < c.guest_pages(); ++p) {
    uint64_t got = 0;
    Status s = c.ReadPage(p, page.data(), &got);
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_EQ(0, std::memcmp(page.data(), mem.data() + p * kP, kP)) << "page " << p;
  }
}

TEST(Store, BaseRoundTripCompressesAndSkipsZeroPages) {
  ScratchDir d;
  auto mem = MakeKvGuest(16);
  WriteReport r;
  Status s = WriteSnapshot(d.path(), mem.data(), mem.size() / kP, {}, &r);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(r.base);
  EXPECT_EQ(r.generation, 1u);
  EXPECT_EQ(r.pages_listed, mem.size() / kP);
  EXPECT_GT(r.zero_pages, 0u);
  EXPECT_LT(r.file_bytes, mem.size() * 3 / 4);  // LZ4 and zero pages shrink it
  std::unique_ptr<SnapshotChain> c;
  s = SnapshotChain::Open(r.path, &c);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ExpectChainEquals(*c, mem);
}

TEST(Store, IncrementHoldsOnlyChangedPagesAndDedupsAgainstTheChain) {
  ScratchDir d;
  auto mem = MakeKvGuest(16);
  const uint64_t pages = mem.size() / kP;
  ASSERT_TRUE(WriteSnapshot(d.path(), mem.data(), pages, {}, nullptr).ok());
  auto old = mem;
  // 5 pages rewritten with fresh content, 1 copied from another page, 1 zeroed.
  for (uint64_t p : {100, 200, 300, 400, 500}) std::memset(mem.data() + p * kP, int(p), kP);
  std::memcpy(mem.data() + 600 * kP, mem.data() + 1000 * kP, kP);
  std::memset(mem.data() + 700 * kP, 0, kP);
  WriteReport r;
  Status s = WriteSnapshot(d.path(), mem.data(), pages, {}, &r);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_FALSE(r.base);
  EXPECT_EQ(r.pages_listed, 7u);
  EXPECT_EQ(r.chunks_written, 5u);
  EXPECT_EQ(r.dedup_pages, 1u);
  EXPECT_EQ(r.zero_pages, 1u);
  EXPECT_LT(r.file_bytes, 64u * 1024);
  std::unique_ptr<SnapshotChain> c;
  ASSERT_TRUE(SnapshotChain::OpenLatest(d.path(), &c).ok());
  EXPECT_EQ(c->size(), 2u);
  EXPECT_EQ(c->writes(100), 2u);  // written in both generations
  EXPECT_EQ(c->writes(101), 1u);
  ExpectChainEquals(*c, mem);
  // The earlier generation still restores the earlier memory.
  std::unique_ptr<SnapshotChain> c1;
  ASSERT_TRUE(SnapshotChain::Open(GenerationPath(d.path(), 1), &c1).ok());
  ExpectChainEquals(*c1, old);
}

TEST(Store, NewBaseAfterMaxChainAndHotPagesLaidOutLast) {
  ScratchDir d;
  auto mem = MakeKvGuest(4);
  const uint64_t pages = mem.size() / kP;
  WriteOptions o;
  o.max_chain = 2;
  o.hot_writes = 3;
  WriteReport r;
  for (int gen = 1; gen <= 4; ++gen) {
    std::memset(mem.data() + 10 * kP, gen, kP);  // page 10 is written every generation
    ASSERT_TRUE(WriteSnapshot(d.path(), mem.data(), pages, o, &r).ok());
  }
  EXPECT_TRUE(r.base) << "generation 4 follows a base and 2 increments";
  std::unique_ptr<SnapshotChain> c;
  ASSERT_TRUE(SnapshotChain::OpenLatest(d.path(), &c).ok());
  EXPECT_EQ(c->size(), 1u);
  EXPECT_EQ(c->writes(10), 4u);
  // Hot page 10 sits after every cold page's chunk.
  const auto& f = c->file(0);
  const uint64_t hot_off = f.chunks[c->loc(10).chunk].offset;
  for (uint64_t p = 0; p < pages; ++p) {
    if (p != 10 && c->loc(p).chunk != kZeroChunk) {
      ASSERT_LT(f.chunks[c->loc(p).chunk].offset, hot_off) << "page " << p;
    }
  }
  ExpectChainEquals(*c, mem);
}

TEST(Store, CriticalPagesComeFirstInOrder) {
  ScratchDir d;
  auto mem = MakeKvGuest(4);
  WriteOptions o;
  o.critical = {700, 3, 512, 3, 90};  // a duplicate is laid out once
  WriteReport r;
  ASSERT_TRUE(WriteSnapshot(d.path(), mem.data(), mem.size() / kP, o, &r).ok());
  std::unique_ptr<SnapshotChain> c;
  ASSERT_TRUE(SnapshotChain::Open(r.path, &c).ok());
  EXPECT_EQ(c->critical(), (std::vector<uint64_t>{700, 3, 512, 90}));
  uint64_t last = 0;
  for (uint64_t p : c->critical()) {
    const auto l = c->loc(p);
    if (l.chunk == kZeroChunk) continue;
    const uint64_t off = c->file(0).chunks[l.chunk].offset;
    EXPECT_GE(off, last);
    EXPECT_LT(off, kHeaderBytes + c->file(0).header.critical_bytes);
    last = off;
  }
  o.critical = {1u << 30};
  Status s = WriteSnapshot(d.path(), mem.data(), mem.size() / kP, o, nullptr);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("critical page 1073741824"), std::string::npos) << s.ToString();
}

// The critical set's codec follows the measured trade: raw when the bandwidth is unknown
// or so high that decoding costs more than the bytes it saves, LZ4 when the disk is slow.
TEST(Store, CriticalPagesAreCompressedOnlyWhereTheReadSavedBeatsTheDecode) {
  auto mem = MakeKvGuest(4);
  const uint64_t pages = mem.size() / kP;
  WriteOptions o;
  for (uint64_t p = 0; p < 200; ++p) o.critical.push_back(p * 3);
  auto write = [&](double mib_s, WriteReport* r) {
    ScratchDir d;
    o.critical_read_mib_s = mib_s;
    ASSERT_TRUE(WriteSnapshot(d.path(), mem.data(), pages, o, r).ok());
    std::unique_ptr<SnapshotChain> c;
    ASSERT_TRUE(SnapshotChain::Open(r->path, &c).ok());
    ExpectChainEquals(*c, mem);
    uint64_t lz4 = 0;
    for (uint64_t p : c->critical()) {
      const auto l = c->loc(p);
      if (l.chunk != kZeroChunk) lz4 += c->file(0).chunks[l.chunk].codec == kLz4;
    }
    EXPECT_EQ(lz4, r->critical_lz4);
  };
  WriteReport unknown, fast, slow;
  write(0, &unknown);
  EXPECT_GT(unknown.critical_chunks, 100u);
  EXPECT_EQ(unknown.critical_lz4, 0u);
  EXPECT_EQ(unknown.critical_decode_us, 0);
  write(1e12, &fast);  // no read is slower than a decode at this bandwidth
  EXPECT_GT(fast.critical_decode_us, 0);
  EXPECT_EQ(fast.critical_lz4, 0u);
  write(1, &slow);  // 1 MiB/s: every byte saved is worth ~1 us
  uint64_t shrinks = 0;  // critical chunks LZ4 makes smaller: all of them must be compressed
  std::vector<char> cbuf(LZ4_COMPRESSBOUND(kP));
  for (uint64_t p : o.critical) {  // distinct pages
    const int n = LZ4_compress_default(reinterpret_cast<const char*>(mem.data() + p * kP),
                                       cbuf.data(), kP, static_cast<int>(cbuf.size()));
    if (!IsZeroPage(mem.data() + p * kP) && n > 0 && n < static_cast<int>(kP)) ++shrinks;
  }
  EXPECT_GT(shrinks, 100u);
  EXPECT_EQ(slow.critical_lz4, shrinks);
  EXPECT_LT(slow.file_bytes, unknown.file_bytes);
  o.critical_read_mib_s = -1;
  ScratchDir d;
  Status s = WriteSnapshot(d.path(), mem.data(), pages, o, nullptr);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("critical_read_mib_s"), std::string::npos) << s.ToString();
}

TEST(Store, CrashBeforeRenameLeavesThePreviousGenerationWhole) {
  ScratchDir d;
  auto mem = MakeKvGuest(4);
  const uint64_t pages = mem.size() / kP;
  ASSERT_TRUE(WriteSnapshot(d.path(), mem.data(), pages, {}, nullptr).ok());
  // A writer that died mid-way leaves a partial .tmp of the next generation.
  const std::string g1 = GenerationPath(d.path(), 1);
  std::filesystem::copy_file(g1, GenerationPath(d.path(), 2) + ".tmp");
  std::filesystem::resize_file(GenerationPath(d.path(), 2) + ".tmp", FileSize(g1) / 3);
  std::unique_ptr<SnapshotChain> c;
  Status s = SnapshotChain::OpenLatest(d.path(), &c);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(c->newest().header.generation, 1u);
  ExpectChainEquals(*c, mem);
  // The next write replaces the stale .tmp and completes.
  mem[5 * kP] ^= 1;
  WriteReport r;
  ASSERT_TRUE(WriteSnapshot(d.path(), mem.data(), pages, {}, &r).ok());
  EXPECT_EQ(r.generation, 2u);
  ASSERT_TRUE(SnapshotChain::OpenLatest(d.path(), &c).ok());
  ExpectChainEquals(*c, mem);
  EXPECT_FALSE(std::filesystem::exists(GenerationPath(d.path(), 2) + ".tmp"));
}

TEST(Store, CrashInAChildProcessAtAnyPointLeavesTheChainUsable) {
  ScratchDir d;
  auto mem = MakeKvGuest(8);
  const uint64_t pages = mem.size() / kP;
  ASSERT_TRUE(WriteSnapshot(d.path(), mem.data(), pages, {}, nullptr).ok());
  for (int i = 0; i < 200; ++i) mem[(i * 37 % pages) * kP + 9] ^= 0xff;
  // Kill a writer after increasing delays: whatever it left, generation 1 opens whole and
  // the newest generation that opens is either 1 or a complete 2.
  for (int delay_us : {0, 200, 1000, 3000, 10000}) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      WriteSnapshot(d.path(), mem.data(), pages, {}, nullptr);
      ::_exit(0);
    }
    ::usleep(static_cast<useconds_t>(delay_us));
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    std::unique_ptr<SnapshotChain> c;
    Status s = SnapshotChain::OpenLatest(d.path(), &c);
    ASSERT_TRUE(s.ok()) << "after a kill at " << delay_us << " us: " << s.ToString();
    std::unique_ptr<SnapshotChain> c1;
    ASSERT_TRUE(SnapshotChain::Open(GenerationPath(d.path(), 1), &c1).ok());
    if (c->newest().header.generation == 2) {
      ExpectChainEquals(*c, mem);
      std::filesystem::remove(GenerationPath(d.path(), 2));
    }
  }
}

TEST(Store, TruncatedFileIsRefusedNamingTheOffset) {
  ScratchDir d;
  auto mem = MakeKvGuest(4);
  WriteReport r;
  ASSERT_TRUE(WriteSnapshot(d.path(), mem.data(), mem.size() / kP, {}, &r).ok());
  std::filesystem::resize_file(r.path, r.file_bytes - 1000);
  std::unique_ptr<SnapshotChain> c;
  Status s = SnapshotChain::Open(r.path, &c);
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_NE(s.message().find("truncated at offset " + std::to_string(r.file_bytes - 1000)),
            std::string::npos) << s.ToString();
  std::filesystem::resize_file(r.path, 100);
  s = SnapshotChain::Open(r.path, &c);
  EXPECT_NE(s.message().find("truncated"), std::string::npos) << s.ToString();
}

TEST(Store, CorruptChunkIsNamedWithItsOffset) {
  ScratchDir d;
  auto mem = MakeKvGuest(4);
  WriteReport r;
  ASSERT_TRUE(WriteSnapshot(d.path(), mem.data(), mem.size() / kP, {}, &r).ok());
  std::unique_ptr<SnapshotChain> c;
  ASSERT_TRUE(SnapshotChain::Open(r.path, &c).ok());
  const uint32_t chunk = c->loc(0).chunk;
  ASSERT_NE(chunk, kZeroChunk);
  const ChunkEntry e = c->file(0).chunks[chunk];
  c.reset();
  FlipByte(r.path, e.offset + e.stored_bytes / 2);
  ASSERT_TRUE(SnapshotChain::Open(r.path, &c).ok()) << "the manifest is intact";
  std::vector<uint8_t> page(kP);
  uint64_t got = 0;
  Status s = c->ReadPage(0, page.data(), &got);
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  const std::string want = "chunk " + std::to_string(chunk) + " at offset " +
                           std::to_string(e.offset);
  EXPECT_NE(s.message().find(want), std::string::npos) << s.ToString();
}

TEST(Store, CorruptManifestAndHeaderAndForeignFilesAreRefused) {
  ScratchDir a, b;
  auto mem = MakeKvGuest(4);
  const uint64_t pages = mem.size() / kP;
  WriteReport r;
  ASSERT_TRUE(WriteSnapshot(a.path(), mem.data(), pages, {}, &r).ok());
  std::unique_ptr<SnapshotChain> c;
  {  // manifest
    const std::string p = a.path() + "/m.lsnap";
    std::filesystem::copy_file(r.path, p);
    ASSERT_TRUE(SnapshotChain::Open(p, &c).ok());
    const uint64_t man = c->newest().header.manifest_offset;
    FlipByte(p, man + 40);
    Status s = SnapshotChain::Open(p, &c);
    EXPECT_NE(s.message().find("manifest checksum mismatch (manifest at offset " +
                               std::to_string(man)), std::string::npos) << s.ToString();
  }
  {  // header
    const std::string p = a.path() + "/h.lsnap";
    std::filesystem::copy_file(r.path, p);
    FlipByte(p, 40);
    Status s = SnapshotChain::Open(p, &c);
    EXPECT_NE(s.message().find("header checksum mismatch"), std::string::npos) << s.ToString();
  }
  {  // not a snapshot at all
    const std::string p = a.path() + "/x.lsnap";
    std::ofstream(p) << std::string(8192, 'x');
    Status s = SnapshotChain::Open(p, &c);
    EXPECT_NE(s.message().find("not a lull snapshot"), std::string::npos) << s.ToString();
  }
  // A foreign increment: generation 2 of another guest's chain dropped into this one.
  auto other = MakeKvGuest(4, 7);
  ASSERT_TRUE(WriteSnapshot(b.path(), other.data(), pages, {}, nullptr).ok());
  other[3] ^= 1;
  ASSERT_TRUE(WriteSnapshot(b.path(), other.data(), pages, {}, nullptr).ok());
  std::filesystem::copy_file(GenerationPath(b.path(), 2), GenerationPath(a.path(), 2));
  Status s = SnapshotChain::OpenLatest(a.path(), &c);
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_NE(s.message().find("foreign parent"), std::string::npos) << s.ToString();
  // And a guest of another size cannot extend this chain.
  std::filesystem::remove(GenerationPath(a.path(), 2));
  s = WriteSnapshot(a.path(), mem.data(), pages / 2, {}, nullptr);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("pages but the chain"), std::string::npos) << s.ToString();
}

}  // namespace
}  // namespace lull::snapshot
