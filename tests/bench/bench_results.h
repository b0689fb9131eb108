// tests/bench/bench_results.h: a Google Benchmark console reporter that also keeps each
// run's headline number, so that a benchmark's main() can print the ratios to its
// baselines after the table (every issue asks for the ratio, not just the two numbers).
//
// The headline number of a run is the named counter when the run has it (for example
// "items_per_second" or "bytes_per_second"), else its adjusted real time per iteration
// in the run's time unit. Aggregates (mean, median, stddev) and failed runs are skipped.
#ifndef LULL_TESTS_BENCH_BENCH_RESULTS_H_
#define LULL_TESTS_BENCH_BENCH_RESULTS_H_

#include <benchmark/benchmark.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace lull::bench {

class ResultReporter : public benchmark::ConsoleReporter {
 public:
  explicit ResultReporter(std::string counter) : counter_(std::move(counter)) {}

  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& r : runs) {
      if (r.run_type != Run::RT_Iteration || r.error_occurred) continue;
      auto it = r.counters.find(counter_);
      results[r.benchmark_name()] =
          it != r.counters.end() ? double(it->second) : r.GetAdjustedRealTime();
    }
  }

  // benchmark name -> headline number.
  std::map<std::string, double> results;

 private:
  std::string counter_;
};

}  // namespace lull::bench

#endif  // LULL_TESTS_BENCH_BENCH_RESULTS_H_
