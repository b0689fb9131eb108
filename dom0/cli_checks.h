// lull::dom0 CLI checks - CLI11 validators the dom0 tools share.
//
// CLI11's own Range and PositiveNumber compare with < and >, so "nan" passes them, and a
// double option takes "inf" as a number. A tool that sends such a value on (lullctl puts
// it in JSON, where it becomes null) or loops on it must refuse it where it is typed.
// FiniteRange accepts only a finite number in [lo, hi] and names the range in the error;
// WholeNumber only digits.
#pragma once

#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

namespace lull::dom0 {

inline CLI::Validator FiniteRange(double lo, double hi) {
  char b[80];
  std::snprintf(b, sizeof b, "finite number in [%g, %g]", lo, hi);
  const std::string what = b;
  return CLI::Validator(
      [lo, hi, what](std::string& in) -> std::string {
        double v = 0;
        if (CLI::detail::lexical_cast(in, v) && v >= lo && v <= hi) return {};  // NaN fails both
        return "'" + in + "' is not a " + what;
      },
      what);
}

// An id or count typed as digits only: CLI11 reads "-1" into an unsigned option as
// 2^64-1 (strtoull wraps), and NonNegativeNumber's error prints DBL_MAX in full.
inline CLI::Validator WholeNumber() {
  return CLI::Validator(
      [](std::string& in) -> std::string {
        if (!in.empty() && in.size() <= 20 && in.find_first_not_of("0123456789") == std::string::npos)
          return {};
        return "'" + in + "' is not a whole number";
      },
      "whole number");
}

}  // namespace lull::dom0
