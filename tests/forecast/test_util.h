// Helpers shared by the forecast tests: simulated series and the traces folder.
#pragma once

#include <cstdlib>
#include <random>
#include <string>
#include <vector>

namespace lull::forecast::testing {

// x_t = mu + phi (x_{t-1} - mu) + e_t + theta e_{t-1}, e ~ N(0, sd^2).
inline std::vector<double> SimulateArma(size_t n, double mu, double phi, double theta,
                                        double sd, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> N(0, sd);
  std::vector<double> x(n);
  double prev = mu, eprev = 0;
  for (size_t i = 0; i < n + 200; ++i) {
    const double e = N(rng);
    const double v = mu + phi * (prev - mu) + e + theta * eprev;
    prev = v, eprev = e;
    if (i >= 200) x[i - 200] = v;
  }
  return x;
}

// The traces folder: $LULL_TRACES or ../shared/traces next to the repository.
inline std::string TracesDir() {
  if (const char* e = std::getenv("LULL_TRACES")) return e;
  return LULL_TRACES_DIR;
}

}  // namespace lull::forecast::testing
