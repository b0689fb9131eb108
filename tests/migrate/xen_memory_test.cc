// The Xen memory backend (dom0/xen_memory.h, dom0/migrate/xen_guest.h) against FakeXen:
// p2m parsing and validation over both layouts, the mapping, the dirty bitmap, and a
// whole migration of a "Xen" guest through the engine into a memory-only target.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <ostream>
#include <thread>

#include "dom0/migrate/source.h"
#include "dom0/migrate/target.h"
#include "dom0/migrate/xen_guest.h"
#include "tests/migrate/fake_xen.h"

namespace lull::xen {
namespace {

using testing::FakeXen;

std::vector<uint64_t> Read(FakeXen* fx, uint32_t domid, lull::Status* st) {
  DomainInfo d;
  std::vector<uint64_t> p2m;
  *st = fx->GetDomain(domid, &d);
  if (st->ok()) *st = ReadP2m(fx, d, &p2m, nullptr);
  return p2m;
}

class P2mTest : public ::testing::TestWithParam<FakeXen::Layout> {};

TEST_P(P2mTest, ReadsTheGuestsP2mWithHoles) {
  FakeXen fx(8192);
  // 1500 pfns: three p2m frames, the last one partly used; holes in two of them.
  const std::set<uint64_t> holes = {0, 511, 512, 1499};
  uint32_t dom = fx.AddGuest(1500, GetParam(), holes);
  lull::Status st;
  std::vector<uint64_t> p2m = Read(&fx, dom, &st);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(p2m, fx.dom(dom).p2m);
  EXPECT_EQ(p2m[0], kInvalidMfn);
  EXPECT_NE(p2m[1], kInvalidMfn);
}

TEST_P(P2mTest, FlaggedEntriesHaveNoFrame) {
  FakeXen fx(4096);
  uint32_t dom = fx.AddGuest(600, GetParam());
  const uint64_t mfn = fx.dom(dom).p2m[3];
  fx.SetP2mEntry(dom, 3, mfn | (1ull << 63));  // FOREIGN_FRAME
  fx.SetP2mEntry(dom, 4, fx.dom(dom).p2m[4] | (1ull << 62));  // IDENTITY_FRAME
  lull::Status st;
  std::vector<uint64_t> p2m = Read(&fx, dom, &st);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(p2m[3], kInvalidMfn);
  EXPECT_EQ(p2m[4], kInvalidMfn);
  EXPECT_EQ(p2m[5], fx.dom(dom).p2m[5]);
}

TEST_P(P2mTest, EntryBeyondTheHostIsRefusedNamingThePfn) {
  FakeXen fx(4096);
  uint32_t dom = fx.AddGuest(600, GetParam());
  fx.SetP2mEntry(dom, 0x123, 1ull << 40);
  lull::Status st;
  Read(&fx, dom, &st);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("pfn 0x123"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("beyond the host's highest frame"), std::string::npos) << st.ToString();
}

TEST_P(P2mTest, EntryPointingAtFrameZeroIsRefused) {
  FakeXen fx(4096);
  uint32_t dom = fx.AddGuest(600, GetParam());
  fx.SetP2mEntry(dom, 7, 0);
  lull::Status st;
  Read(&fx, dom, &st);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("pfn 0x7 is mfn 0x0"), std::string::npos) << st.ToString();
}

TEST_P(P2mTest, MaxPfnOutOfRangeIsRefused) {
  FakeXen fx(4096);
  uint32_t dom = fx.AddGuest(600, GetParam());
  fx.dom(dom).anchor.max_pfn = kMaxGuestPfns + 1;
  lull::Status st;
  Read(&fx, dom, &st);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("max_pfn"), std::string::npos) << st.ToString();
  fx.dom(dom).anchor.max_pfn = 0;
  Read(&fx, dom, &st);
  EXPECT_NE(st.message().find("no p2m published"), std::string::npos) << st.ToString();
}

TEST_P(P2mTest, MorePresentPfnsThanTheDomainMayOwnIsRefused) {
  FakeXen fx(4096);
  uint32_t dom = fx.AddGuest(600, GetParam());
  fx.dom(dom).info.max_pages = 100;
  lull::Status st;
  Read(&fx, dom, &st);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("more than the domain's 100 pages"), std::string::npos) << st.ToString();
}

TEST_P(P2mTest, RetriesWhenTheGuestChangesItsP2mDuringTheRead) {
  FakeXen fx(4096);
  uint32_t dom = fx.AddGuest(600, GetParam());
  fx.bump_generation_at_read = 1;  // the read after the first walk sees a new generation
  lull::Status st;
  std::vector<uint64_t> p2m = Read(&fx, dom, &st);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(p2m, fx.dom(dom).p2m);
  EXPECT_GE(fx.anchor_reads, 4);  // two walks, each with a read before and after
}

INSTANTIATE_TEST_SUITE_P(Layouts, P2mTest,
                         ::testing::Values(FakeXen::Layout::kTree, FakeXen::Layout::kLinear),
                         [](const auto& i) { return i.param == FakeXen::Layout::kTree ? "Tree" : "Linear"; });

TEST(P2mValidation, GuestKindsAndUnpublishedP2m) {
  FakeXen fx(4096);
  uint32_t dom = fx.AddGuest(100, FakeXen::Layout::kTree);
  lull::Status st;
  fx.dom(dom).info.hvm = true;
  Read(&fx, dom, &st);
  EXPECT_TRUE(st.code() == lull::Status::Code::kInvalidArgument) << st.ToString();
  EXPECT_NE(st.message().find("HVM"), std::string::npos);
  fx.dom(dom).info.hvm = false;
  fx.dom(dom).info.guest_width = 4;
  Read(&fx, dom, &st);
  EXPECT_NE(st.message().find("32-bit PV guest"), std::string::npos) << st.ToString();
  fx.dom(dom).info.guest_width = 8;
  fx.dom(dom).anchor.fll = 0;
  Read(&fx, dom, &st);
  EXPECT_NE(st.message().find("has not published its p2m"), std::string::npos) << st.ToString();
  fx.dom(dom).anchor.fll = fx.frames() + 5;
  Read(&fx, dom, &st);
  EXPECT_NE(st.message().find("pfn_to_mfn_frame_list_list"), std::string::npos) << st.ToString();
}

TEST(P2mValidation, LinearPageTableHolesAndBadRootsAreRefused) {
  FakeXen fx(4096);
  uint32_t dom = fx.AddGuest(1100, FakeXen::Layout::kLinear);
  const P2mAnchor a = fx.dom(dom).anchor;
  lull::Status st;
  // Walk down to the L1 table and clear the PTE of the second p2m frame.
  uint64_t table = a.p2m_cr3 >> 12;
  const uint64_t va = a.p2m_vaddr + kPageSize;
  for (int level = 4; level > 1; --level)
    table = (fx.PeekFrame(table, (va >> (12 + 9 * (level - 1))) & 511) >> 12) & 0xffffffffffull;
  const uint64_t l1_idx = (va >> 12) & 511;
  const uint64_t saved = fx.PeekFrame(table, l1_idx);
  fx.PokeFrame(table, l1_idx, 0);
  Read(&fx, dom, &st);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("p2m frame 1"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("level 1"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("not present"), std::string::npos) << st.ToString();
  fx.PokeFrame(table, l1_idx, saved);
  fx.dom(dom).anchor.p2m_vaddr = a.p2m_vaddr + 8;
  Read(&fx, dom, &st);
  EXPECT_NE(st.message().find("not page aligned"), std::string::npos) << st.ToString();
  fx.dom(dom).anchor.p2m_vaddr = 0x0000900000000000ull;  // not canonical
  Read(&fx, dom, &st);
  EXPECT_NE(st.message().find("canonical"), std::string::npos) << st.ToString();
  fx.dom(dom).anchor.p2m_vaddr = a.p2m_vaddr;
  fx.dom(dom).anchor.p2m_cr3 = 0;
  fx.dom(dom).anchor.fll = ~0ull;
  Read(&fx, dom, &st);
  EXPECT_NE(st.message().find("has not published its p2m"), std::string::npos) << st.ToString();
}

TEST(Bitmap, SetBitsAscendingAndNothingPastTheEnd) {
  std::vector<uint64_t> bm = {0x8000000000000001ull, 0, 0xffull};
  std::vector<uint32_t> out;
  BitmapToPages(bm.data(), 131, &out);
  EXPECT_EQ(out, (std::vector<uint32_t>{0, 63, 128, 129, 130}));  // bits 131..135 ignored
  BitmapToPages(bm.data(), 192, &out);
  EXPECT_EQ(out.size(), 10u);
  EXPECT_EQ(out.back(), 135u);
  BitmapToPages(bm.data(), 0, &out);
  EXPECT_TRUE(out.empty());
}

TEST(ParseDomid, NumbersOnly) {
  uint32_t d = 0;
  EXPECT_TRUE(ParseDomid("12", &d).ok());
  EXPECT_EQ(d, 12u);
  for (const char* bad : {"", "g1", "-1", "12x", "99999"}) {
    lull::Status s = ParseDomid(bad, &d);
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_NE(s.message().find("not a Xen domain id"), std::string::npos);
  }
}

TEST(DomainMemory, MapsEveryPfnLiveWithHolesAsZero) {
  FakeXen fx(4096);
  uint32_t dom = fx.AddGuest(700, FakeXen::Layout::kLinear, {10, 600});
  std::unique_ptr<DomainMemory> m;
  ASSERT_TRUE(DomainMemory::Open(&fx, dom, DomainMemory::Access::kRead, &m).ok());
  ASSERT_EQ(m->pages(), 700u);
  EXPECT_EQ(m->present_pages(), 698u);
  std::vector<uint8_t> page(kPageSize), zero(kPageSize, 0);
  for (uint64_t p = 0; p < 700; ++p) {
    if (p == 10 || p == 600) {
      EXPECT_EQ(std::memcmp(m->data() + p * kPageSize, zero.data(), kPageSize), 0) << p;
      continue;
    }
    fx.ReadGuestPage(dom, p, page.data());
    ASSERT_EQ(std::memcmp(m->data() + p * kPageSize, page.data(), kPageSize), 0) << p;
  }
  fx.Write(dom, 42, 100, 0xab);  // seen through the mapping, as a foreign mapping would
  EXPECT_EQ(m->data()[42 * kPageSize + 100], 0xab);
}

TEST(DomainMemory, WritableExceptWhatXenKeepsReadOnly) {
  FakeXen fx(4096);
  uint32_t dom = fx.AddGuest(300, FakeXen::Layout::kLinear);
  std::unique_ptr<DomainMemory> m;
  ASSERT_TRUE(DomainMemory::Open(&fx, dom, DomainMemory::Access::kWrite, &m).ok());
  EXPECT_FALSE(m->writable(5));  // the fake's stand-in for a page table
  EXPECT_TRUE(m->writable(6));
  std::vector<uint8_t> page(kPageSize);
  fx.ReadGuestPage(dom, 5, page.data());
  EXPECT_EQ(std::memcmp(m->data() + 5 * kPageSize, page.data(), kPageSize), 0);  // still readable
  m->writable_data()[6 * kPageSize] = 0x5a;
  EXPECT_EQ(m->data()[6 * kPageSize], 0x5a);  // the read-only mapping sees it
  fx.ReadGuestPage(dom, 6, page.data());
  EXPECT_EQ(page[0], 0x5a);
}

TEST(DomainMemory, DirtyPagesComeFromXensBitmapAndAreCleared) {
  FakeXen fx(4096);
  uint32_t dom = fx.AddGuest(300, FakeXen::Layout::kTree, {77});
  std::unique_ptr<DomainMemory> m;
  ASSERT_TRUE(DomainMemory::Open(&fx, dom, DomainMemory::Access::kRead, &m).ok());
  std::vector<uint32_t> d;
  EXPECT_FALSE(m->CollectDirty(&d).ok());  // not tracking yet
  ASSERT_TRUE(m->StartLogDirty().ok());
  EXPECT_TRUE(fx.dom(dom).logdirty);
  fx.Write(dom, 299, 0, 1);
  fx.Write(dom, 3, 0, 1);
  fx.Write(dom, 3, 9, 1);
  fx.dom(dom).dirty[77 / 64] |= 1ull << (77 % 64);  // a bit on a pfn without a frame
  ASSERT_TRUE(m->CollectDirty(&d).ok());
  EXPECT_EQ(d, (std::vector<uint32_t>{3, 299}));
  ASSERT_TRUE(m->CollectDirty(&d).ok());
  EXPECT_TRUE(d.empty());
  m.reset();
  EXPECT_FALSE(fx.dom(dom).logdirty);  // switched off by whoever switched it on
}

}  // namespace
}  // namespace lull::xen

namespace lull::migrate {

// Readable parameters in test names ("GetParam() = scan", not a byte dump); beside the
// type's namespace, where gtest's lookup finds it.
void PrintTo(XenGuestMemory::DirtyMode m, std::ostream* os) {
  *os << (m == XenGuestMemory::DirtyMode::kScan       ? "scan"
          : m == XenGuestMemory::DirtyMode::kLogDirty ? "logdirty"
                                                      : "auto");
}

namespace {

using lull::xen::testing::FakeXen;

TEST(XenGuest, FirstCollectIsEverythingThenOnlyWrites) {
  FakeXen fx(4096);
  uint32_t dom = fx.AddGuest(520, FakeXen::Layout::kLinear);
  std::unique_ptr<XenGuestMemory> g;
  ASSERT_TRUE(XenGuestMemory::Open(&fx, dom, XenGuestMemory::OnRelease::kDestroy, &g).ok());
  std::vector<uint32_t> d;
  ASSERT_TRUE(g->CollectDirty(&d).ok());
  EXPECT_EQ(d.size(), 520u);
  fx.Write(dom, 519, 1, 2);
  ASSERT_TRUE(g->CollectDirty(&d).ok());
  EXPECT_EQ(d, std::vector<uint32_t>{519});
  // The guest remaps its p2m: refused rather than sending stale frames.
  fx.dom(dom).anchor.p2m_generation += 2;
  lull::Status s = g->CollectDirty(&d);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("changed its p2m"), std::string::npos) << s.ToString();
  EXPECT_NE(g->Describe().find("domid=" + std::to_string(dom)), std::string::npos);
}

TEST(XenGuest, PausedRoundAlsoSendsWhatXenWroteWithoutAMark) {
  FakeXen fx(4096);
  uint32_t dom = fx.AddGuest(300, FakeXen::Layout::kLinear);
  std::unique_ptr<XenGuestMemory> g;
  ASSERT_TRUE(XenGuestMemory::Open(&fx, dom, XenGuestMemory::OnRelease::kUnpause, &g).ok());
  std::vector<uint32_t> d;
  ASSERT_TRUE(g->CollectDirty(&d).ok());
  ASSERT_EQ(d.size(), 300u);
  // Xen updates a vCPU area in pfn 77 (no log-dirty mark); the guest writes pfn 5.
  fx.PokeFrame(fx.dom(dom).p2m.at(77), 3, 0x1234);
  fx.Write(dom, 5, 0, 9);
  // While the guest runs only the marked page is reported: the bitmap is the source.
  ASSERT_TRUE(g->CollectDirty(&d).ok());
  EXPECT_EQ(d, std::vector<uint32_t>{5});
  EXPECT_EQ(g->unmarked_pages(), 0u);
  // Paused (the stop-and-copy): the unmarked page too, once.
  fx.PokeFrame(fx.dom(dom).p2m.at(200), 0, 7);
  ASSERT_TRUE(g->Pause().ok());
  ASSERT_TRUE(g->CollectDirty(&d).ok());
  std::sort(d.begin(), d.end());
  EXPECT_EQ(d, (std::vector<uint32_t>{77, 200}));
  EXPECT_EQ(g->unmarked_pages(), 2u);
  ASSERT_TRUE(g->CollectDirty(&d).ok());
  EXPECT_TRUE(d.empty());
  ASSERT_TRUE(g->Resume().ok());
}

TEST(XenGuest, PauseIsBalancedAndReleasePolicyApplies) {
  FakeXen fx(4096);
  uint32_t a = fx.AddGuest(64, FakeXen::Layout::kTree), b = fx.AddGuest(64, FakeXen::Layout::kTree);
  {
    std::unique_ptr<XenGuestMemory> g;
    ASSERT_TRUE(XenGuestMemory::Open(&fx, a, XenGuestMemory::OnRelease::kDestroy, &g).ok());
    ASSERT_TRUE(g->Pause().ok());
    ASSERT_TRUE(g->Pause().ok());  // once in Xen
    EXPECT_EQ(fx.dom(a).pause_count, 1);
    ASSERT_TRUE(g->Resume().ok());
    EXPECT_EQ(fx.dom(a).pause_count, 0);
    ASSERT_TRUE(g->Pause().ok());
  }  // dropped while paused (a failed migration): resumed
  EXPECT_EQ(fx.dom(a).pause_count, 0);
  EXPECT_FALSE(fx.dom(a).info.dying);
  {
    std::unique_ptr<XenGuestMemory> g;
    ASSERT_TRUE(XenGuestMemory::Open(&fx, a, XenGuestMemory::OnRelease::kDestroy, &g).ok());
    ASSERT_TRUE(g->Pause().ok());
    g->Release();
  }
  EXPECT_TRUE(fx.dom(a).info.dying);
  {
    std::unique_ptr<XenGuestMemory> g;
    ASSERT_TRUE(XenGuestMemory::Open(&fx, b, XenGuestMemory::OnRelease::kKeepPaused, &g).ok());
    ASSERT_TRUE(g->Pause().ok());
    g->Release();
  }
  EXPECT_EQ(fx.dom(b).pause_count, 1);
  EXPECT_FALSE(fx.dom(b).info.dying);
}

TEST(XenGuestScan, FallsBackToComparisonWhenXenRefusesLogDirty) {
  FakeXen fx(4096);
  fx.logdirty_supported = false;
  uint32_t dom = fx.AddGuest(100, FakeXen::Layout::kTree);
  std::unique_ptr<XenGuestMemory> g;
  lull::Status s = XenGuestMemory::Open(&fx, dom, XenGuestMemory::OnRelease::kKeepPaused, &g,
                                        XenGuestMemory::DirtyMode::kLogDirty);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("log-dirty mode is not available"), std::string::npos) << s.ToString();
  ASSERT_TRUE(XenGuestMemory::Open(&fx, dom, XenGuestMemory::OnRelease::kKeepPaused, &g).ok());
  EXPECT_EQ(g->mode(), XenGuestMemory::DirtyMode::kScan);
  EXPECT_NE(g->tracking_note().find("log-dirty refused"), std::string::npos) << g->tracking_note();
}

TEST(XenGuestScan, ReportsWhatDiffersFromWhatWasLastReported) {
  FakeXen fx(4096);
  uint32_t dom = fx.AddGuest(300, FakeXen::Layout::kLinear, {40});
  std::unique_ptr<XenGuestMemory> g;
  ASSERT_TRUE(XenGuestMemory::Open(&fx, dom, XenGuestMemory::OnRelease::kKeepPaused, &g,
                                   XenGuestMemory::DirtyMode::kScan).ok());
  EXPECT_FALSE(fx.dom(dom).logdirty);
  std::vector<uint32_t> d;
  ASSERT_TRUE(g->CollectDirty(&d).ok());
  EXPECT_EQ(d.size(), 300u);
  std::vector<uint8_t> page(4096);
  fx.ReadGuestPage(dom, 10, page.data());
  EXPECT_EQ(std::memcmp(g->data() + 10 * 4096, page.data(), 4096), 0);
  const uint8_t old20 = g->data()[20 * 4096 + 3];
  fx.Write(dom, 10, 5, 0x99);
  fx.Write(dom, 20, 3, static_cast<uint8_t>(old20 + 1));  // written and written back:
  fx.Write(dom, 20, 3, old20);                             // nothing to send
  EXPECT_NE(g->data()[10 * 4096 + 5], 0x99);  // the engine reads what was reported
  ASSERT_TRUE(g->CollectDirty(&d).ok());
  EXPECT_EQ(d, std::vector<uint32_t>{10});
  EXPECT_EQ(g->data()[10 * 4096 + 5], 0x99);
  ASSERT_TRUE(g->CollectDirty(&d).ok());
  EXPECT_TRUE(d.empty());
}

// A whole migration: pre-copy over the dirty tracking while the guest writes, stop-
// and-copy, full-memory checksum, into dom0-style received memory; both trackings.
class MigrateXen : public ::testing::TestWithParam<XenGuestMemory::DirtyMode> {};

TEST_P(MigrateXen, RunningGuestArrivesWhole) {
  FakeXen fx(16384);
  uint32_t dom = fx.AddGuest(8192, FakeXen::Layout::kLinear, {100, 4000});
  std::unique_ptr<XenGuestMemory> g;
  ASSERT_TRUE(XenGuestMemory::Open(&fx, dom, XenGuestMemory::OnRelease::kKeepPaused, &g, GetParam()).ok());
  EXPECT_EQ(g->mode(), GetParam());
  ReceivedMemoryFactory factory;
  ServerOptions so;
  std::unique_ptr<MigrationServer> server;
  ASSERT_TRUE(MigrationServer::Start(&factory, so, &server).ok());
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> writes{0};
  std::thread writer([&] {  // the guest: writes while it is not paused
    uint64_t i = 0;
    while (!stop) {
      if (!fx.paused(dom)) {
        uint64_t p = (i * 2654435761u) % 8192;
        if (p != 100 && p != 4000) {
          fx.Write(dom, p, i % 4096, static_cast<uint8_t>(i));
          ++writes;
        }
      }
      ++i;
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  });
  // The premise: the guest is writing when the migration starts (a loaded machine may
  // not have run the writer yet, and the migration can be over before it does).
  for (int i = 0; i < 600000 && writes.load() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  if (writes.load() == 0) {
    stop = true;
    writer.join();
    FAIL() << "the guest thread never wrote";
  }
  MigrateOptions o;
  o.verify_memory = true;
  o.max_downtime_ms = 50;
  MigrateStats st;
  lull::Status s = Migrate(g.get(), "127.0.0.1", server->port(), o, &st);
  stop = true;
  writer.join();
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_GT(writes.load(), 0u);
  EXPECT_EQ(fx.dom(dom).pause_count, 1);  // left paused (kKeepPaused)
  std::unique_ptr<ReceivedGuest> r;
  // The target's thread commits after the source returns; wait for it (bounded: 60 s).
  for (int i = 0; i < 6000 && !(r = factory.TakeCommitted()); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->pages, g->pages());
  EXPECT_EQ(std::memcmp(r->data, g->data(), g->pages() * 4096), 0);
  EXPECT_EQ(MemoryHash(r->data, r->pages * 4096), MemoryHash(g->data(), g->pages() * 4096));
  EXPECT_NE(r->description.find("xen-pv"), std::string::npos);
  // The live guest (paused since the stop-and-copy) is what arrived, whatever data() is.
  std::vector<uint8_t> page(4096);
  for (uint64_t p = 0; p < 8192; p += 97) {
    if (p == 100 || p == 4000) continue;
    fx.ReadGuestPage(dom, p, page.data());
    ASSERT_EQ(std::memcmp(r->data + p * 4096, page.data(), 4096), 0) << p;
  }
  server->Stop();
}

INSTANTIATE_TEST_SUITE_P(Tracking, MigrateXen,
                         ::testing::Values(XenGuestMemory::DirtyMode::kLogDirty, XenGuestMemory::DirtyMode::kScan),
                         [](const auto& i) {
                           return i.param == XenGuestMemory::DirtyMode::kScan ? "Scan" : "LogDirty";
                         });

}  // namespace
}  // namespace lull::migrate
