// Helpers for dom0 tests: hand-made workloads with known demand.
#pragma once

#include <functional>
#include <string>

#include "dom0/workload.h"

namespace lull::dom0::testing {

// One guest per entry: cpu(t) in vCPUs and mem(t) in GiB for t in [0, seconds).
struct GuestSpec {
  std::string name;
  int vcpus = 2;
  double mem_max_gib = 8;
  PriorityClass cls = PriorityClass::kStandard;
  std::function<double(int64_t)> cpu;
  std::function<double(int64_t)> mem = [](int64_t) { return 2.0; };
};

inline Workload MakeWorkload(const std::vector<GuestSpec>& specs, int64_t seconds) {
  Workload w;
  w.duration_s = static_cast<double>(seconds);
  DomId id = 1;
  for (const auto& s : specs) {
    GuestSeries g;
    g.info.domid = id++;
    g.info.name = s.name;
    g.info.vcpus = s.vcpus;
    g.info.mem_max_gib = s.mem_max_gib;
    g.info.cls = s.cls;
    g.step_s = 1;
    for (int64_t t = 0; t < seconds; ++t) {
      g.cpu.push_back(static_cast<float>(s.cpu(t)));
      g.mem.push_back(static_cast<float>(s.mem(t)));
    }
    w.guests.push_back(std::move(g));
  }
  return w;
}

}  // namespace lull::dom0::testing
