#include "tests/xen/tel_reader.h"

#include <cerrno>

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

}  // namespace lull::xentest
