#include "tests/xen/tel_reader.h"

#include <algorithm>
#include <cerrno>
#include <deque>
#include <utility>

namespace lull::xentest {

int TelReader::Attach(void* mem, uint64_t size) {
  int rc = lull_shm_attach(mem, size, &view_);
  if (rc) {
    error_ = "region does not validate (lull_shm_attach " + std::to_string(rc) + ")";
    return rc;
  }
  cons_.assign(view_.geom.n_tel, lull_cons{});
  last_time_.assign(view_.geom.n_tel, 0);
  for (uint32_t i = 0; i < view_.geom.n_tel; i++) {
    rc = lull_cons_init(&cons_[i], lull_shm_tel_ring(&view_, i), view_.tel_stride,
                        view_.geom.tel_capacity, sizeof(lull_tel_rec));
    if (rc) {
      error_ = "telemetry ring " + std::to_string(i) + " does not validate (" +
               std::to_string(rc) + ")";
      cons_.clear();
      return rc;
    }
  }
  return 0;
}

int64_t TelReader::Poll() {
  if (cons_.empty()) {
    error_ = "Poll before a successful Attach";
    return -EINVAL;
  }
  lull_tel_rec batch[256];
  int64_t popped = 0;
  uint64_t errors = 0, skipped = 0, dropped = 0;
  for (uint32_t i = 0; i < cons_.size(); i++) {
    lull_cons* c = &cons_[i];
    // Bounded: at most one ring's capacity per ring per Poll.
    for (uint32_t budget = view_.geom.tel_capacity; budget > 0;) {
      uint32_t want = budget < 256 ? budget : 256;
      int n = lull_cons_pop(c, batch, want, sizeof(lull_tel_rec));
      if (n <= 0) break;  // empty, or -EPROTO: counted, and resynchronised next time
      budget -= static_cast<uint32_t>(n) < budget ? static_cast<uint32_t>(n) : budget;
      popped += n;
      for (int k = 0; k < n; k++) {
        const lull_tel_rec& r = batch[k];
        if (!lull_tel_valid(&r, view_.geom.n_tel)) {
          totals_.invalid++;
          continue;
        }
        if (r.time_ns < last_time_[i]) totals_.out_of_order++;
        last_time_[i] = r.time_ns;
        if (r.time_ns > totals_.latest_ns) totals_.latest_ns = r.time_ns;
        totals_.records++;
        if (r.domid == keep_dom_) {
          if (kept_.size() >= keep_max_ && !kept_.empty()) kept_.erase(kept_.begin());
          if (keep_max_) kept_.push_back(r);
        }
        const uint32_t key = static_cast<uint32_t>(r.domid) << 16 | r.vcpu;
        if (r.type == LULL_TEL_RUN) running_since_[key] = r.time_ns;
        if (r.type == LULL_TEL_BLOCK || r.type == LULL_TEL_DESCHED) running_since_.erase(key);
        DomTel& d = totals_.dom[r.domid];
        switch (r.type) {
          case LULL_TEL_WAKE: d.wake++; d.blocked_ns += r.arg; break;
          case LULL_TEL_BLOCK: d.block++; d.ran_ns += r.arg; break;
          case LULL_TEL_RUN: d.run++; d.waited_ns += r.arg; break;
          case LULL_TEL_DESCHED: d.desched++; d.ran_ns += r.arg; break;
          default: d.other++; break;
        }
      }
    }
    lull_cons_release(c);
    errors += c->errors;
    skipped += c->skipped;
    dropped += lull_cons_dropped(c);
  }
  totals_.errors = errors;
  totals_.skipped = skipped;
  totals_.dropped = dropped;
  return popped;
}

uint64_t TelReader::OpenRunNs(uint16_t domid) const {
  uint64_t ns = 0;
  for (auto it = running_since_.lower_bound(static_cast<uint32_t>(domid) << 16);
       it != running_since_.end() && it->first >> 16 == domid; ++it)
    if (totals_.latest_ns > it->second) ns += totals_.latest_ns - it->second;
  return ns;
}

IdleWakeStats AnalyzeIdleWakes(std::vector<lull_tel_rec> recs, uint64_t window_ns) {
  // Rings are drained one after another: put the pCPUs' records back in time order.
  std::stable_sort(recs.begin(), recs.end(),
                   [](const lull_tel_rec& a, const lull_tel_rec& b) { return a.time_ns < b.time_ns; });
  // Per vCPU: run time since its last WAKE (preempted pieces included), or -1 when the
  // vCPU did not wake since it last blocked (a run that began before the records).
  std::map<uint32_t, int64_t> since_wake;
  std::vector<std::pair<uint64_t, uint64_t>> ends;  // (BLOCK time, run) of each idle wake
  for (const lull_tel_rec& r : recs) {
    auto it = since_wake.try_emplace(r.vcpu, -1).first;
    if (r.type == LULL_TEL_WAKE) {
      it->second = 0;
    } else if (r.type == LULL_TEL_DESCHED) {
      if (it->second >= 0) it->second += static_cast<int64_t>(r.arg);
    } else if (r.type == LULL_TEL_BLOCK) {
      if (it->second >= 0) {
        const uint64_t run = static_cast<uint64_t>(it->second) + r.arg;
        if (run < window_ns) ends.emplace_back(r.time_ns, run);
      }
      it->second = -1;
    }
  }
  IdleWakeStats s;
  s.runs = ends.size();
  if (ends.empty()) return s;
  std::vector<uint64_t> runs;
  runs.reserve(ends.size());
  std::deque<std::pair<uint64_t, uint64_t>> in_window;
  uint64_t sum = 0;
  for (const auto& e : ends) {
    runs.push_back(e.second);
    in_window.push_back(e);
    sum += e.second;
    while (in_window.front().first + window_ns <= e.first) {
      sum -= in_window.front().second;
      in_window.pop_front();
    }
    s.win_max_ns = std::max(s.win_max_ns, sum);
    s.win_wakes_max = std::max<uint64_t>(s.win_wakes_max, in_window.size());
  }
  std::sort(runs.begin(), runs.end());
  s.run_p50_ns = runs[runs.size() / 2];
  s.run_p99_ns = runs[std::min(runs.size() - 1, runs.size() * 99 / 100)];
  s.run_max_ns = runs.back();
  return s;
}

}  // namespace lull::xentest
