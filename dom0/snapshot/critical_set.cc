#include "dom0/snapshot/critical_set.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

namespace lull::snapshot {
namespace {

struct Acc { double w = 0, pos = 0; int count = 0; bool last = false; };
struct Scored { uint64_t page; double prob, freq, pos; };

// Adds the pages no trace touched, in regions where the history shows such pages being
// touched: per region, over the traces in order, the fraction of the pages no earlier
// trace had that this trace touched (a random-access region - a hash index - keeps
// adding new pages, a stable one - code - adds none). Kept when that estimate rests on
// >= 20 candidate pages and clears the threshold.
void AddUnseen(const std::vector<TouchTrace>& h, const std::unordered_map<uint64_t, Acc>& acc,
               uint64_t guest_pages, uint64_t region, double threshold,
               std::vector<Scored>* out) {
  const size_t n = h.size();
  const uint64_t regions = (guest_pages + region - 1) / region;
  auto size_of = [&](uint64_t r) { return std::min(region, guest_pages - r * region); };
  std::vector<double> members(regions, 0), again(regions, 0);
  std::vector<uint64_t> distinct(regions, 0);
  std::unordered_set<uint64_t> seen;
  for (size_t t = 0; t < n; ++t) {
    if (t > 0) {
      for (uint64_t r = 0; r < regions; ++r) {
        members[r] += static_cast<double>(size_of(r) - distinct[r]);
      }
    }
    for (uint64_t p : h[t].pages) {
      if (seen.insert(p).second) {
        ++distinct[p / region];
        if (t > 0) again[p / region] += 1;
      }
    }
  }
  constexpr double kSupport = 20;
  std::vector<double> pos(regions, 0), pos_w(regions, 0);
  for (const auto& [p, a] : acc) {
    pos[p / region] += a.pos;
    pos_w[p / region] += a.w;
  }
  for (uint64_t r = 0; r < regions; ++r) {
    if (members[r] < kSupport || pos_w[r] <= 0) continue;
    const double q = again[r] / members[r];
    if (q < threshold) continue;
    for (uint64_t p = r * region; p < r * region + size_of(r); ++p) {
      if (!acc.count(p)) out->push_back({p, q, 0.0, pos[r] / pos_w[r]});
    }
  }
}

}  // namespace

Status PredictCriticalSet(const std::vector<TouchTrace>& history,
                          const forecast::Distribution* activity_after_resume,
                          uint64_t guest_pages, const CriticalSetOptions& opt, CriticalSet* out) {
  if (history.empty()) {
    return Status::InvalidArgument("critical set: no first-touch traces to learn from");
  }
  if (!(opt.decay > 0 && opt.decay <= 1) || !(opt.min_scale > 0) ||
      !(opt.max_scale >= opt.min_scale) ||
      !(opt.min_probability > 0 && opt.min_probability <= 1)) {
    return Status::InvalidArgument("critical set: decay and min_probability must be in "
                                   "(0, 1] and 0 < min_scale <= max_scale");
  }
  std::unordered_map<uint64_t, Acc> acc;
  const size_t n = history.size();
  std::vector<double> weight(n);
  double wsum = 0, len = 0, act = 0, act_w = 0;
  for (size_t t = 0; t < n; ++t) {
    const TouchTrace& tr = history[t];
    if (std::isnan(tr.activity) || (tr.activity >= 0 && tr.activity > 1.5)) {
      return Status::InvalidArgument("critical set: trace " + std::to_string(t) +
                                     " has activity " + std::to_string(tr.activity) +
                                     ", not a utilization in [0, 1.5]");
    }
    weight[t] = std::pow(opt.decay, static_cast<double>(n - 1 - t));
    wsum += weight[t];
    len += weight[t] * static_cast<double>(tr.pages.size());
    if (tr.activity >= 0) {
      act += weight[t] * tr.activity;
      act_w += weight[t];
    }
    std::unordered_set<uint64_t> seen;
    for (size_t i = 0; i < tr.pages.size(); ++i) {
      const uint64_t p = tr.pages[i];
      if (p >= guest_pages) {
        return Status::InvalidArgument("critical set: trace " + std::to_string(t) + " position " +
                                       std::to_string(i) + ": page " + std::to_string(p) +
                                       " beyond the guest's " + std::to_string(guest_pages));
      }
      if (!seen.insert(p).second) {
        return Status::InvalidArgument("critical set: trace " + std::to_string(t) + " position " +
                                       std::to_string(i) + ": page " + std::to_string(p) +
                                       " touched first twice");
      }
      Acc& a = acc[p];
      ++a.count;
      a.last = a.last || t + 1 == n;
      a.w += weight[t];
      a.pos += weight[t] * static_cast<double>(i) / static_cast<double>(tr.pages.size());
    }
  }
  // Touch probability per page. Calibrated when the history allows: for each count class
  // c (pages in c of the first n-1 traces), the fraction of them the newest trace touched
  // again - a measured recurrence rate, which matters for the long tail (a page seen once
  // is usually not seen again). Classes with under kSupport pages, or n < 3, fall back to
  // the frequency shrunk by one pseudo-trace of absence.
  constexpr int kSupport = 20;
  std::vector<double> q(n + 1, -1);
  if (n >= 3) {
    std::vector<int> members(n, 0), again(n, 0);
    for (const auto& [p, a] : acc) {
      const int prev = a.count - (a.last ? 1 : 0);
      if (prev > 0) {
        ++members[static_cast<size_t>(prev)];
        again[static_cast<size_t>(prev)] += a.last ? 1 : 0;
      }
    }
    double floor = 0;
    for (size_t c = 1; c < n; ++c) {
      if (members[c] >= kSupport) {
        q[c] = std::max(floor, static_cast<double>(again[c]) / members[c]);
        floor = q[c];  // more appearances never predict fewer
      }
    }
  }
  std::vector<Scored> s;
  s.reserve(acc.size());
  for (const auto& [p, a] : acc) {
    const double freq = a.w / wsum;
    const double cal = q[std::min<size_t>(static_cast<size_t>(a.count), n - 1)];
    s.push_back({p, cal >= 0 ? cal : freq * wsum / (wsum + 1), freq, a.pos / a.w});
  }
  double scale = 1;
  if (activity_after_resume && act_w > 0 && act / act_w > 0) {
    scale = std::clamp(activity_after_resume->p90 / (act / act_w), opt.min_scale, opt.max_scale);
  }
  const double threshold = opt.min_probability / scale;
  if (opt.region_pages > 0 && n >= 2) AddUnseen(history, acc, guest_pages, opt.region_pages,
                                                 threshold, &s);
  std::sort(s.begin(), s.end(), [](const Scored& a, const Scored& b) {
    if (a.prob != b.prob) return a.prob > b.prob;
    if (a.freq != b.freq) return a.freq > b.freq;
    if (a.pos != b.pos) return a.pos < b.pos;
    return a.page < b.page;
  });
  CriticalSet cs;
  cs.ranked.reserve(s.size());
  for (const auto& x : s) cs.ranked.push_back(x.page);

  cs.expected_pages = len / wsum * scale;
  // Recall of the top k pages over each past trace.
  auto recall_of = [&](uint64_t k) {
    std::unordered_set<uint64_t> top(cs.ranked.begin(),
                                     cs.ranked.begin() + static_cast<ptrdiff_t>(
                                                             std::min<uint64_t>(k, cs.ranked.size())));
    double r = 0;
    for (size_t t = 0; t < n; ++t) {
      const auto& pg = history[t].pages;
      if (pg.empty()) {
        r += weight[t];
        continue;
      }
      size_t hit = 0;
      for (uint64_t p : pg) hit += top.count(p);
      r += weight[t] * static_cast<double>(hit) / static_cast<double>(pg.size());
    }
    return r / wsum;
  };
  // Cost-aware cut: a page is worth prefetching when P(touched) times the cost of its
  // fault exceeds the cost of reading it ahead: P >= min_probability (= prefetch cost /
  // fault cost), lowered by a busier forecast.
  uint64_t cut = 0;
  for (const auto& x : s) {
    if (x.prob < threshold) break;  // s is sorted by probability
    ++cut;
  }
  cs.cut = cut;
  {
    std::vector<const Scored*> t;
    t.reserve(cut);
    for (uint64_t i = 0; i < cut; ++i) t.push_back(&s[i]);
    std::stable_sort(t.begin(), t.end(),
                     [](const Scored* a, const Scored* b) { return a->pos < b->pos; });
    for (const Scored* x : t) cs.touch_order.push_back(x->page);
  }
  const double fc = activity_after_resume ? 0.5 + 0.5 * activity_after_resume->confidence : 0.75;
  cs.confidence = std::clamp(recall_of(cs.cut) * static_cast<double>(n) /
                             static_cast<double>(n + 1) * fc, 0.0, 1.0);
  *out = std::move(cs);
  return Status::Ok();
}

Status SaveTraces(const std::string& path, const std::vector<TouchTrace>& traces) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    if (!f) return Status::IoError("cannot write " + tmp);
    for (const auto& t : traces) {
      f << t.activity;
      for (uint64_t p : t.pages) f << ' ' << p;
      f << '\n';
    }
    if (!f.flush()) return Status::IoError("cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return Status::IoError("rename " + tmp);
  return Status::Ok();
}

Status LoadTraces(const std::string& path, uint64_t guest_pages, std::vector<TouchTrace>* out) {
  std::ifstream f(path);
  if (!f) return Status::NotFound("cannot open first-touch traces " + path);
  std::vector<TouchTrace> v;
  std::string line;
  for (int ln = 1; std::getline(f, line); ++ln) {
    if (line.empty()) continue;
    std::istringstream in(line);
    TouchTrace t;
    std::string tok;
    int col = 0;
    while (in >> tok) {
      ++col;
      char* end = nullptr;
      bool ok;
      if (col == 1) {
        t.activity = std::strtod(tok.c_str(), &end);
        ok = *end == '\0';
      } else {
        const unsigned long long p = std::strtoull(tok.c_str(), &end, 10);
        ok = *end == '\0' && tok[0] >= '0' && tok[0] <= '9' && p < guest_pages;
        t.pages.push_back(p);
      }
      if (!ok) {
        return Status::InvalidArgument(path + " line " + std::to_string(ln) + " token " +
                                       std::to_string(col) + ": '" + tok + "' is not " +
                                       (col == 1 ? "an activity level" : "a page of this guest"));
      }
    }
    v.push_back(std::move(t));
  }
  *out = std::move(v);
  return Status::Ok();
}

}  // namespace lull::snapshot
