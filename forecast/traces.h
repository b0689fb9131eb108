// Loaders for the real traces in ../shared/traces (see each dataset's README.txt), and
// the resampling that turns irregular samples into one value per control step.
//
// Every loader returns utilization as a fraction (percent / 100, memory usage / memory
// capacity) with NaN where a step is missing. Policies, each documented in
// docs/forecast.md:
//   - Bitbrains rows with 0 cores (or 0 capacity) mean "not reporting": NaN, not idle.
//     CPU above 100 % is kept (the forecaster clamps to 1.0).
//   - Irregular or jittery timestamps (Bitbrains, Alibaba) are resampled to a fixed step:
//     the mean of the samples falling in each step; steps without a sample are NaN
//     (gaps become runs of NaN, never interpolated).
//   - A timestamp earlier than or equal to the previous one is dropped and counted in
//     ResampleStats (non-monotonic input never reorders or corrupts the series).
//   - Unparsable fields are errors naming the file, line and column.
#pragma once

#include <string>
#include <vector>

#include "forecast/status.h"

namespace lull::forecast {

struct Series {
  std::string dataset;  // e.g. "bitbrains_cpu"
  std::string name;     // file or column
  int step_seconds = 300;
  std::vector<double> values;  // fractions of 1.0, NaN = missing
};

struct ResampleStats {
  size_t dropped_out_of_order = 0;
  size_t empty_steps = 0;
};

// Samples (t[i], v[i]) onto steps [t0 + k*step, t0 + (k+1)*step), t0 = t[0] - step/2.
// NaN values are skipped. t and v must have the same length.
std::vector<double> Resample(const std::vector<double>& t, const std::vector<double>& v,
                             double step, ResampleStats* stats);

// One file per VM, 288 integers, no header. Names may contain spaces.
Status LoadPlanetLabFile(const std::string& path, Series* out);
// All files of one day folder, sorted by name, at most max_files (0 = all) taken with a
// fixed stride so the choice spreads over the folder.
Status LoadPlanetLabDay(const std::string& dir, size_t max_files, std::vector<Series>* out);
// One VM: CPU usage [%] and memory usage / capacity, resampled to 300 s.
Status LoadBitbrainsFile(const std::string& path, Series* cpu, Series* mem, ResampleStats* stats);
// Azure V1 wide CSV: the first max_columns VM columns (0 = all).
Status LoadAzureCsv(const std::string& path, size_t max_columns, std::vector<Series>* out);
// Alibaba machine_usage.csv: CPU and memory per machine resampled to step_seconds,
// machines sorted by id; only machines with at least min_steps steps are kept.
Status LoadAlibabaUsage(const std::string& path, int step_seconds, size_t min_steps,
                        std::vector<Series>* cpu, std::vector<Series>* mem,
                        ResampleStats* stats);

}  // namespace lull::forecast
