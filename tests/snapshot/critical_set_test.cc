// Critical-set prediction from first-touch traces and the guest's forecast activity.
#include "dom0/snapshot/critical_set.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>

#include "forecast/guest_forecaster.h"
#include "forecast/traces.h"
#include "tests/snapshot/test_util.h"

namespace lull::snapshot {
namespace {

TEST(CriticalSet, RanksByRecencyWeightedFrequencyThenEarliness) {
  std::vector<TouchTrace> h = {{{1, 2, 3, 9}, -1}, {{2, 1, 3, 8}, -1}, {{1, 2, 7}, -1}};
  CriticalSet cs;
  ASSERT_TRUE(PredictCriticalSet(h, nullptr, 100, {}, &cs).ok());
  // 1 and 2 are in all three traces (1 earlier on average), 3 in two, then singletons,
  // the newest trace's (7) first.
  ASSERT_EQ(cs.ranked.size(), 6u);
  EXPECT_EQ(cs.ranked[0], 1u);
  EXPECT_EQ(cs.ranked[1], 2u);
  EXPECT_EQ(cs.ranked[2], 3u);
  EXPECT_EQ(cs.ranked[3], 7u);
  EXPECT_GE(cs.cut, 3u);
  EXPECT_LE(cs.cut, cs.ranked.size());
  EXPECT_GT(cs.confidence, 0);
  EXPECT_LE(cs.confidence, 1);
}

TEST(CriticalSet, AgreeingTracesAreTrustedMoreThanDisagreeingOnes) {
  std::vector<TouchTrace> same, diff;
  for (uint64_t t = 0; t < 4; ++t) {
    same.push_back({{10, 11, 12, 13, 14, 15}, -1});
    diff.push_back({{t * 10, t * 10 + 1, t * 10 + 2, t * 10 + 3, t * 10 + 4, t * 10 + 5}, -1});
  }
  CriticalSet a, b;
  ASSERT_TRUE(PredictCriticalSet(same, nullptr, 100, {}, &a).ok());
  ASSERT_TRUE(PredictCriticalSet(diff, nullptr, 100, {}, &b).ok());
  EXPECT_GT(a.confidence, b.confidence + 0.2);
  EXPECT_EQ(a.cut, 6u);
  // Each of diff's pages was seen once in four restores: below the break-even 0.3,
  // except the newest trace's (weight 1 of 1 + 0.8 + 0.64 + 0.51 + 1 pseudo): also below.
  EXPECT_EQ(b.cut, 0u);
  CriticalSetOptions cheap;
  cheap.min_probability = 0.05;  // prefetching is nearly free: take every page seen
  ASSERT_TRUE(PredictCriticalSet(diff, nullptr, 100, cheap, &b).ok());
  EXPECT_EQ(b.cut, 24u);
}

TEST(CriticalSet, CutFollowsTheBreakEvenProbability) {
  // Page 1 in all 5 traces, 2 in the newest 3, 3 in the newest only.
  std::vector<TouchTrace> h = {{{1}, -1}, {{1}, -1}, {{1, 2}, -1}, {{1, 2}, -1}, {{1, 2, 3}, -1}};
  CriticalSet cs;
  CriticalSetOptions o;
  std::vector<uint64_t> cuts;
  for (double p : {0.9, 0.6, 0.4, 0.1}) {
    o.min_probability = p;
    ASSERT_TRUE(PredictCriticalSet(h, nullptr, 10, o, &cs).ok());
    cuts.push_back(cs.cut);
  }
  // P(1) = 3.36 / 4.36 = 0.77, P(2) = 2.44 / 4.36 = 0.56, P(3) = 1 / 4.36 = 0.23.
  EXPECT_EQ(cuts, (std::vector<uint64_t>{0, 1, 2, 3}));
  o.min_probability = 0;
  EXPECT_EQ(PredictCriticalSet(h, nullptr, 10, o, &cs).code(), Status::Code::kInvalidArgument);
}

TEST(CriticalSet, RecurrenceIsCalibratedOnTheHistorySoTheTailIsLeftOut) {
  // 100 stable pages in every restore, and 100 pages each restore touches only once (the
  // long tail of a Zipf workload). The shrunk frequency alone would take the newest tail.
  std::vector<TouchTrace> h;
  for (uint64_t t = 0; t < 4; ++t) {
    TouchTrace tr;
    for (uint64_t p = 0; p < 100; ++p) {
      tr.pages.push_back(p);
      tr.pages.push_back(1000 + t * 100 + p);
    }
    h.push_back(tr);
  }
  CriticalSetOptions o;
  o.min_probability = 0.06;
  CriticalSet cs;
  ASSERT_TRUE(PredictCriticalSet(h, nullptr, 2000, o, &cs).ok());
  EXPECT_EQ(cs.cut, 100u);
  std::vector<uint64_t> top(cs.ranked.begin(), cs.ranked.begin() + 100);
  std::sort(top.begin(), top.end());
  for (uint64_t p = 0; p < 100; ++p) ASSERT_EQ(top[p], p);
  // Two traces are too few to calibrate: the newest tail pages (P = 1 / 2.8) come in.
  h.resize(2);
  ASSERT_TRUE(PredictCriticalSet(h, nullptr, 2000, o, &cs).ok());
  EXPECT_EQ(cs.cut, 300u);
}

TEST(CriticalSet, RegionsPredictUnseenPagesOfRandomAccessRegionsOnly) {
  // Four restores of a guest of 4096 pages: a hash index [0, 256) of which each restore
  // touches 100 pages at random; code [1024, 1124) touched every time (the rest of its
  // region never); a heap [2048, 4096) with 8 random records per restore.
  std::mt19937_64 rng(7);
  std::vector<TouchTrace> h;
  for (int t = 0; t < 4; ++t) {
    TouchTrace tr;
    for (uint64_t p = 1024; p < 1124; ++p) tr.pages.push_back(p);
    std::vector<uint64_t> idx(256);
    std::iota(idx.begin(), idx.end(), 0);
    std::shuffle(idx.begin(), idx.end(), rng);
    std::vector<uint64_t> heap(2048);
    std::iota(heap.begin(), heap.end(), 2048);
    std::shuffle(heap.begin(), heap.end(), rng);
    for (int q = 0; q < 100; ++q) {
      tr.pages.push_back(idx[static_cast<size_t>(q)]);
      if (q < 8) tr.pages.push_back(heap[static_cast<size_t>(q)]);
    }
    h.push_back(tr);
  }
  CriticalSetOptions o;
  o.min_probability = 0.1;
  CriticalSet off, on;
  ASSERT_TRUE(PredictCriticalSet(h, nullptr, 4096, o, &off).ok());
  o.region_pages = 256;
  ASSERT_TRUE(PredictCriticalSet(h, nullptr, 4096, o, &on).ok());
  auto in_cut = [](const CriticalSet& cs, uint64_t lo, uint64_t hi) {
    uint64_t k = 0;
    for (uint64_t i = 0; i < cs.cut; ++i) k += cs.ranked[i] >= lo && cs.ranked[i] < hi;
    return k;
  };
  // The whole index, with its pages no restore touched yet; none of the code region's
  // never-touched pages; no heap page beyond those the traces had (the regions only add
  // unseen pages).
  EXPECT_EQ(in_cut(on, 0, 256), 256u);
  EXPECT_LT(in_cut(off, 0, 256), 256u) << "some index pages were never touched";
  EXPECT_EQ(in_cut(on, 1024, 1280), 100u);
  EXPECT_EQ(in_cut(on, 2048, 4096), in_cut(off, 2048, 4096));
  EXPECT_EQ(on.cut, on.touch_order.size());
  // Touch order: the code (touched first in every restore) before the index.
  EXPECT_GE(on.touch_order.front(), 1024u);
  EXPECT_LT(on.touch_order.front(), 1124u);
}

TEST(CriticalSet, ForecastActivityScalesTheSetAndItsConfidence) {
  // Two restores at activity 0.4: pages 0..149, then 50..199. Shrunk probabilities:
  // 0..49 -> 0.8 / 2.8 = 0.29, 50..149 -> 1.8 / 2.8 = 0.64, 150..199 -> 1 / 2.8 = 0.36.
  std::vector<TouchTrace> h(2);
  for (uint64_t p = 0; p < 150; ++p) {
    h[0].pages.push_back(p);
    h[1].pages.push_back(p + 50);
  }
  h[0].activity = h[1].activity = 0.4;
  CriticalSet none, busy, quiet;
  ASSERT_TRUE(PredictCriticalSet(h, nullptr, 1000, {}, &none).ok());
  forecast::Distribution hi{0.8, 0.8, 0.8, 0.9, 0.95, 0.9};
  forecast::Distribution lo{0.1, 0.1, 0.1, 0.15, 0.2, 0.1};
  ASSERT_TRUE(PredictCriticalSet(h, &hi, 1000, {}, &busy).ok());
  ASSERT_TRUE(PredictCriticalSet(h, &lo, 1000, {}, &quiet).ok());
  EXPECT_NEAR(busy.expected_pages, 2 * none.expected_pages, 1e-6);  // 0.8 / 0.4
  EXPECT_NEAR(quiet.expected_pages, 0.5 * none.expected_pages, 1e-6);  // clamped at 0.5
  EXPECT_EQ(none.cut, 150u);   // threshold 0.3
  EXPECT_EQ(busy.cut, 200u);   // 0.3 / 2
  EXPECT_EQ(quiet.cut, 100u);  // 0.3 / 0.5
  EXPECT_GT(busy.confidence, quiet.confidence) << "the busy forecast is more confident";
}

TEST(CriticalSet, BadInputIsNamed) {
  CriticalSet cs;
  Status s = PredictCriticalSet({}, nullptr, 10, {}, &cs);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  s = PredictCriticalSet({{{1, 2}, -1}, {{3, 50}, -1}}, nullptr, 10, {}, &cs);
  EXPECT_NE(s.message().find("trace 1 position 1: page 50"), std::string::npos) << s.ToString();
  s = PredictCriticalSet({{{1, 2, 1}, -1}}, nullptr, 10, {}, &cs);
  EXPECT_NE(s.message().find("touched first twice"), std::string::npos) << s.ToString();
  s = PredictCriticalSet({{{1}, std::nan("")}}, nullptr, 10, {}, &cs);
  EXPECT_NE(s.message().find("trace 0 has activity"), std::string::npos) << s.ToString();
}

TEST(CriticalSet, TracesPersistAndBadFilesAreNamed) {
  ScratchDir d;
  const std::string p = d.path() + "/touch.txt";
  std::vector<TouchTrace> h = {{{5, 1, 9}, 0.25}, {{}, -1}, {{7}, 1}};
  ASSERT_TRUE(SaveTraces(p, h).ok());
  std::vector<TouchTrace> back;
  ASSERT_TRUE(LoadTraces(p, 10, &back).ok());
  ASSERT_EQ(back.size(), 3u);
  EXPECT_EQ(back[0].pages, h[0].pages);
  EXPECT_DOUBLE_EQ(back[0].activity, 0.25);
  EXPECT_TRUE(back[1].pages.empty());
  std::ofstream(p) << "0.5 1 2 x3\n";
  Status s = LoadTraces(p, 10, &back);
  EXPECT_NE(s.message().find("line 1 token 4: 'x3'"), std::string::npos) << s.ToString();
  std::ofstream(p) << "0.5 1 2\n0.1 99\n";
  s = LoadTraces(p, 10, &back);
  EXPECT_NE(s.message().find("line 2 token 2: '99'"), std::string::npos) << s.ToString();
  EXPECT_EQ(LoadTraces(d.path() + "/none", 10, &back).code(), Status::Code::kNotFound);
}

// The forecast of a real VM (Bitbrains) drives the size of the set: the activity after
// "resume" at each step is the CPU forecast; the traces were recorded at the VM's mean CPU.
TEST(CriticalSetTraces, BitbrainsForecastScalesTheSetWithPredictedActivity) {
  const std::string dir = std::string(LULL_TRACES_DIR) + "/bitbrains_rnd/2013-8";
  if (!std::filesystem::exists(dir)) GTEST_SKIP() << "no traces at " << dir;
  forecast::Series cpu, mem;
  Status s = forecast::LoadBitbrainsFile(dir + "/105.csv", &cpu, &mem, nullptr);
  ASSERT_TRUE(s.ok()) << s.ToString();
  forecast::GuestForecaster g;
  double mean = 0;
  size_t n = 0;
  std::vector<double> p90;
  std::vector<TouchTrace> h(3);
  for (uint64_t t = 0; t < 3; ++t) {
    for (uint64_t p = 0; p < 200; ++p) h[t].pages.push_back((p * 13 + t * 5) % 4096);
  }
  size_t low_cut_steps = 0, high_cut_steps = 0;
  CriticalSet base;
  for (size_t i = 0; i < std::min<size_t>(cpu.values.size(), 2000); ++i) {
    ASSERT_TRUE(g.observe(cpu.values[i], mem.values[i]).ok());
    if (std::isnan(cpu.values[i])) continue;
    mean += std::min(1.0, cpu.values[i]);
    ++n;
    if (i < 300) continue;
    for (auto& tr : h) tr.activity = mean / static_cast<double>(n);
    const forecast::Distribution d = g.forecast_cpu(1);
    CriticalSet cs;
    ASSERT_TRUE(PredictCriticalSet(h, &d, 4096, {}, &cs).ok());
    ASSERT_TRUE(PredictCriticalSet(h, nullptr, 4096, {}, &base).ok());
    // The set grows exactly when the forecast's p90 is above the recorded activity.
    if (d.p90 > mean / static_cast<double>(n) * 1.01) {
      EXPECT_GE(cs.cut, base.cut);
      ++high_cut_steps;
    } else if (d.p90 < mean / static_cast<double>(n) * 0.99) {
      EXPECT_LE(cs.cut, base.cut);
      ++low_cut_steps;
    }
    ASSERT_GE(cs.confidence, 0);
    ASSERT_LE(cs.confidence, 1);
  }
  EXPECT_GT(high_cut_steps + low_cut_steps, 100u) << "the forecast moved the set size";
}

}  // namespace
}  // namespace lull::snapshot
