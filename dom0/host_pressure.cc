#include "dom0/host_pressure.h"

#include <algorithm>

namespace lull::dom0 {

HostPressure DeriveHostPressure(const HostLoadSample& s, const HostPressureConfig& c, int saturated_before) {
  HostPressure p;
  p.free_mem_gib = s.free_mem_gib;
  if (s.interval_ns == 0 || s.pcpus <= 0) return p;  // no interval yet: nothing derived
  const double n = s.pcpus;
  p.idle_cpus = std::clamp(static_cast<double>(s.idle_ns) / static_cast<double>(s.interval_ns), 0.0, n);
  p.busy_cpus = n - p.idle_cpus;
  p.saturated = p.idle_cpus < c.idle_reserve_cpus && s.waiting_cpus >= c.min_waiting_cpus;
  p.saturated_run = p.saturated ? saturated_before + 1 : 0;
  if (c.sustain > 0 && s.lent_cpus > 0 && p.saturated_run >= c.sustain) {
    p.cpu = true;
    p.cpu_shortfall = std::min(s.waiting_cpus, s.lent_cpus);
  }
  p.mem = s.mem_lent && s.free_mem_gib < c.mem_reserve_gib;
  return p;
}

}  // namespace lull::dom0
