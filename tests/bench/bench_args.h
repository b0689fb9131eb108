// tests/bench/bench_args.h: a benchmark's numeric option, read whole and checked.
//
// The benchmarks that parse their own options (those that hand the rest to Google
// Benchmark) read numbers with this instead of atoi/stoul: atoi turned "ten" into 0 and
// stoul threw out of main() on it. A bad value is named with its range; the caller exits 2.
#ifndef LULL_TESTS_BENCH_BENCH_ARGS_H_
#define LULL_TESTS_BENCH_BENCH_ARGS_H_

#include <charconv>
#include <cstdio>
#include <sstream>
#include <string>

namespace lull::bench {

// `value` (all of it) as a T in [lo, hi]; false after a message naming `tool` and `flag`.
template <class T>
bool ParseArg(const char* tool, const std::string& flag, const std::string& value, T lo, T hi,
              T* out) {
  T v{};
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (!value.empty() && ec == std::errc() && end == value.data() + value.size() && v >= lo &&
      v <= hi) {
    *out = v;
    return true;
  }
  std::ostringstream range;
  range << "[" << lo << ", " << hi << "]";
  std::fprintf(stderr, "%s: %s '%s' is not a number in %s\n", tool, flag.c_str(), value.c_str(),
               range.str().c_str());
  return false;
}

}  // namespace lull::bench

#endif  // LULL_TESTS_BENCH_BENCH_ARGS_H_
