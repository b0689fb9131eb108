// lull::snapshot::PredictCriticalSet - which pages a resumed guest will touch first.
//
// Input: the first-touch traces of earlier restores (pages in the order the guest first
// touched them, as a lazy restore records them through userfaultfd - REAP's record
// phase), newest last, each with the guest's activity level at that resume if known; and
// the forecast of the guest's activity after this resume (forecast::Distribution of CPU
// utilization from lull::forecast::GuestForecaster), if any.
//
// Touch probability of a page: calibrated on the history itself when there are >= 3
// traces - for pages seen in c of the first n-1 traces, the fraction the newest trace
// touched again (>= 20 pages per class, made non-decreasing in c) - which is what tells a
// stable page (code, indexes) from the long tail (a record touched once). Otherwise the
// recency-weighted frequency (weight `decay`^age, newest = 1) shrunk by one pseudo-trace
// of absence. Ranking: probability, then weighted frequency, then earlier mean position
// (position / trace length). The ranked list is what the snapshot lays out first.
// Cut (how many to prefetch): the pages whose probability is at least
// min_probability / scale, where min_probability is the break-even of prefetching
// (cost of reading a page ahead / cost of a fault, measured by the caller) and scale is
// the forecast's p90 activity over the mean recorded activity, clamped to
// [min_scale, max_scale]: a busier resume touches more, so less likely pages pay off.
// expected_pages reports the weighted mean trace length times that scale.
// Confidence in [0, 1]: the weighted mean recall of the cut set over the past traces
// (how much of each earlier first-touch set it would have covered), times n / (n + 1)
// (few traces, less trust), times 0.5 + 0.5 * the forecast's confidence (0.75 when there
// is no forecast).
//
// Unseen pages (region_pages > 0, >= 2 traces): per region, going through the traces in
// order, the fraction of the pages no earlier trace had that the next trace touched is
// the probability that a page no trace has touched yet is touched next (a random-access
// region keeps adding new pages, a stable one adds none). Where that estimate rests on
// >= 20 candidate pages and clears the cut, the region's unseen pages join the set,
// placed at the region's mean position.
//
// Bad input (no traces, a page beyond the guest, a page listed twice in one trace, NaN
// or negative activity) is InvalidArgument naming the trace and position.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "forecast/distribution.h"
#include "forecast/status.h"

namespace lull::snapshot {

struct TouchTrace {
  std::vector<uint64_t> pages;  // first-touch order
  double activity = -1;         // CPU utilization (0..1) at that resume; < 0: unknown
};

struct CriticalSetOptions {
  double decay = 0.8;      // weight of a trace one restore older
  double min_scale = 0.5;  // bounds of the forecast's scaling of the set size
  double max_scale = 2.0;
  double min_probability = 0.3;  // prefetch cost / fault cost (break-even probability)
  // Regions of this many pages (0: off) let the history speak for pages it never saw:
  // a page in a region whose pages are touched at random (a hash index, a heap's hot
  // arena) is likely touched next time even if no trace had it yet; one in a region of
  // stable pages (code) that was never touched is not. Needs >= 2 traces; see the .cc.
  uint64_t region_pages = 0;
};

struct CriticalSet {
  std::vector<uint64_t> ranked;  // every page seen (and unseen ones that clear the cut), best first
  uint64_t cut = 0;              // prefetch ranked[0, cut)
  // ranked[0, cut) in expected first-touch order (earlier mean position first): the
  // snapshot layout for a pipelined prefetch, which the guest follows as it arrives.
  std::vector<uint64_t> touch_order;
  double expected_pages = 0;     // the size estimate before the margin
  double confidence = 0;
};

Status PredictCriticalSet(const std::vector<TouchTrace>& history,
                          const forecast::Distribution* activity_after_resume,
                          uint64_t guest_pages, const CriticalSetOptions& opt, CriticalSet* out);

// Traces persist beside the snapshots as text: one line per trace,
// "activity page page ...". Load names the file, line and token it rejects.
Status SaveTraces(const std::string& path, const std::vector<TouchTrace>& traces);
Status LoadTraces(const std::string& path, uint64_t guest_pages, std::vector<TouchTrace>* out);

}  // namespace lull::snapshot
