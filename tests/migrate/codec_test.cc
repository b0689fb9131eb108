// Codec and page sender: round trips on random edits, limits, and hostile input.
#include <gtest/gtest.h>
#include <xxhash.h>

#include <cstring>
#include <random>
#include <vector>

#include "dom0/migrate/codec.h"
#include "dom0/migrate/page_sender.h"

namespace lull::migrate {
namespace {

constexpr size_t kPs = 4096;

std::vector<uint8_t> RandomPage(std::mt19937_64& r) {
  std::vector<uint8_t> p(kPs);
  for (auto& b : p) b = static_cast<uint8_t>(r());
  return p;
}

TEST(Xbzrle, RoundTripsRandomEdits) {
  std::mt19937_64 r(42);
  std::vector<uint8_t> out(XbzrleBound(kPs));
  for (int iter = 0; iter < 500; ++iter) {
    auto a = RandomPage(r);
    auto b = a;
    int edits = static_cast<int>(r() % 40);
    for (int e = 0; e < edits; ++e) {
      size_t off = r() % kPs, len = 1 + r() % 64;
      for (size_t i = off; i < std::min(kPs, off + len); ++i) b[i] = static_cast<uint8_t>(r());
    }
    long n = XbzrleEncode(a.data(), b.data(), kPs, out.data(), out.size());
    ASSERT_GE(n, 0) << "iter " << iter;
    auto c = a;
    ASSERT_TRUE(XbzrleDecode(out.data(), static_cast<size_t>(n), c.data(), kPs));
    ASSERT_EQ(0, std::memcmp(b.data(), c.data(), kPs)) << "iter " << iter;
  }
}

TEST(Xbzrle, SmallEditIsSmallAndSamePageIsEmpty) {
  std::mt19937_64 r(1);
  auto a = RandomPage(r);
  std::vector<uint8_t> out(XbzrleBound(kPs));
  EXPECT_EQ(0, XbzrleEncode(a.data(), a.data(), kPs, out.data(), out.size()));
  auto b = a;
  for (int i = 0; i < 64; ++i) b[1000 + i] ^= 0xff;  // one cache line
  long n = XbzrleEncode(a.data(), b.data(), kPs, out.data(), out.size());
  EXPECT_GT(n, 64);
  EXPECT_LE(n, 70);
}

TEST(Xbzrle, GivesUpPastLimit) {
  std::mt19937_64 r(2);
  auto a = RandomPage(r), b = RandomPage(r);
  std::vector<uint8_t> out(XbzrleBound(kPs));
  EXPECT_EQ(-1, XbzrleEncode(a.data(), b.data(), kPs, out.data(), kPs / 2));
}

TEST(Xbzrle, RejectsMalformedDeltas) {
  std::vector<uint8_t> page(kPs);
  const uint8_t overrun[] = {0xff, 0x1f, 4, 1, 2, 3, 4};      // skip 4095, then 4 bytes
  EXPECT_FALSE(XbzrleDecode(overrun, sizeof overrun, page.data(), kPs));
  const uint8_t truncated[] = {0, 10, 1, 2};                   // says 10, has 2
  EXPECT_FALSE(XbzrleDecode(truncated, sizeof truncated, page.data(), kPs));
  const uint8_t empty_run[] = {5, 0};
  EXPECT_FALSE(XbzrleDecode(empty_run, sizeof empty_run, page.data(), kPs));
  const uint8_t endless[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80};
  EXPECT_FALSE(XbzrleDecode(endless, sizeof endless, page.data(), kPs));
  const uint8_t good[] = {3, 2, 9, 9};
  EXPECT_TRUE(XbzrleDecode(good, sizeof good, page.data(), kPs));
  EXPECT_EQ(9, page[3]);
  EXPECT_EQ(9, page[4]);
  EXPECT_EQ(0, page[5]);
}

TEST(Lz4, RoundTripAndIncompressible) {
  std::vector<uint8_t> text(kPs);
  for (size_t i = 0; i < kPs; ++i) text[i] = "guest memory page "[i % 18];
  std::vector<uint8_t> out(Lz4Bound(kPs)), back(kPs);
  long n = Lz4Compress(text.data(), kPs, out.data(), kPs, 1);
  ASSERT_GT(n, 0);
  EXPECT_LT(n, 512);
  ASSERT_TRUE(Lz4Decompress(out.data(), static_cast<size_t>(n), back.data(), kPs));
  EXPECT_EQ(text, back);
  std::mt19937_64 r(3);
  auto rnd = RandomPage(r);
  EXPECT_EQ(-1, Lz4Compress(rnd.data(), kPs, out.data(), kPs - 64, 1));
  EXPECT_FALSE(Lz4Decompress(out.data(), 3, back.data(), kPs));
}

TEST(ZeroPage, Detects) {
  std::vector<uint8_t> p(kPs, 0);
  EXPECT_TRUE(IsZeroPage(p.data(), kPs));
  p[kPs - 1] = 1;
  EXPECT_FALSE(IsZeroPage(p.data(), kPs));
}

// The sender picks zero, then XBZRLE for a cached page, then LZ4, then raw; a record
// decodes back to the page.
TEST(PageSender, ChoosesEncodings) {
  std::mt19937_64 r(4);
  std::vector<uint8_t> mem(4 * kPs, 0);
  auto rnd = RandomPage(r);
  std::memcpy(&mem[kPs], rnd.data(), kPs);
  for (size_t i = 0; i < kPs; ++i) mem[2 * kPs + i] = "abcabcabd"[i % 9];
  rnd = RandomPage(r);
  std::memcpy(&mem[3 * kPs], rnd.data(), kPs);
  PageSender s(4, kPs, true, true, 1, 0);
  std::vector<uint8_t> out;
  EXPECT_EQ(PageEncoding::kZero, s.Encode(mem.data(), 0, &out));
  EXPECT_EQ(PageEncoding::kRaw, s.Encode(mem.data(), 1, &out));
  EXPECT_EQ(PageEncoding::kLz4, s.Encode(mem.data(), 2, &out));
  mem[kPs + 100] ^= 1;
  out.clear();
  EXPECT_EQ(PageEncoding::kXbzrle, s.Encode(mem.data(), 1, &out));
  EXPECT_LT(out.size(), 32u);
  PageSender plain(4, kPs, false, false, 1, 0);
  EXPECT_EQ(PageEncoding::kRaw, plain.Encode(mem.data(), 1, &out));
  EXPECT_EQ(PageEncoding::kRaw, plain.Encode(mem.data(), 1, &out));
}

TEST(PageSender, ChecksumFollowsContent) {
  std::vector<uint8_t> mem(2 * kPs, 7);
  PageSender a(2, kPs, true, true, 1, 0), b(2, kPs, false, false, 1, 0);
  std::vector<uint8_t> out;
  a.Encode(mem.data(), 0, &out);
  a.Encode(mem.data(), 1, &out);
  b.Encode(mem.data(), 0, &out);
  b.Encode(mem.data(), 1, &out);
  EXPECT_EQ(a.Checksum(), b.Checksum());
  mem[5] = 8;
  a.Encode(mem.data(), 0, &out);
  EXPECT_NE(a.Checksum(), b.Checksum());
}

}  // namespace
}  // namespace lull::migrate
