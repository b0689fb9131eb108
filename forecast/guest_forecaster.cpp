#include "forecast/guest_forecaster.h"

#include <cmath>

namespace lull::forecast {

GuestForecaster::GuestForecaster(const GuestConfig& cfg)
    : max_cpu_(cfg.cpu.max_value), max_mem_(cfg.mem.max_value),
      cpu_(cfg.cpu), mem_(cfg.mem), joint_(cfg.joint) {}

Status GuestForecaster::observe(double cpu, double mem) {
  double c, m;
  Status st = SeriesForecaster::Check(cpu, max_cpu_, &c);
  if (!st.ok()) return Status::InvalidArgument("cpu: " + st.message());
  st = SeriesForecaster::Check(mem, max_mem_, &m);
  if (!st.ok()) return Status::InvalidArgument("memory: " + st.message());
  // Both valid: neither call below can fail now.
  cpu_.observe(c);
  mem_.observe(m);
  if (!std::isnan(c) && !std::isnan(m)) joint_.Observe(c, m);
  return Status::Ok();
}

size_t GuestForecaster::memory_bytes() const {
  return sizeof(*this) - sizeof(cpu_) - sizeof(mem_) - sizeof(joint_) + cpu_.memory_bytes() +
         mem_.memory_bytes() + joint_.memory_bytes();
}

}  // namespace lull::forecast
