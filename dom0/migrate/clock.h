// lull::migrate clock - monotonic time for the engine's measurements (never wall time).
#pragma once

#include <time.h>

#include <cstdint>

namespace lull::migrate {

inline int64_t MonoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}
inline double MonoMs() { return static_cast<double>(MonoNs()) / 1e6; }

}  // namespace lull::migrate
