// lull::dom0::GuestProfiler - what each guest will do next, per resource.
//
// One forecast model per guest and resource (CPU: the peak utilisation of each control
// period, as a fraction of the guest's vCPUs; memory: the peak use as a fraction of its
// maximum). The model is lull::forecast::SeriesForecaster, the adaptive ensemble of
// forecast/; ResourceModel is the seam that keeps the engine's tests and a future
// model swap independent of it.
// The profiler also tracks its own prediction error against what happened, which the
// learning loop and `lullctl predict` read.
#pragma once

#include <cstddef>
#include <memory>

#include "forecast/status.h"

namespace lull::dom0 {

// Same fields as lull::forecast::Distribution, utilisation as a fraction of 1.0.
struct Prediction {
  double mean = 0, p50 = 0, p90 = 0, p95 = 0, p99 = 0;
  double confidence = 0;
};

class ResourceModel {
 public:
  virtual ~ResourceModel() = default;
  virtual Status Observe(double value) = 0;                  // NaN = missing
  virtual Prediction Forecast(int horizon_steps) const = 0;  // peak over the horizon
  virtual double ProbStayBelow(double level, int window_steps) const = 0;
  virtual size_t MemoryBytes() const = 0;
};

// The forecast model: lull::forecast::SeriesForecaster behind ResourceModel.
std::unique_ptr<ResourceModel> MakeModel();

class GuestProfiler {
 public:
  explicit GuestProfiler(int window_steps);
  // One sample per control period: peak CPU utilisation and peak memory fraction.
  void Observe(double cpu_util, double mem_frac);
  Prediction Cpu() const;
  Prediction Mem() const;
  double ProbCpuBelow(double level) const { return cpu_->ProbStayBelow(level, window_); }
  // The same over `periods` control periods (e.g. a lease period longer than the window).
  double ProbCpuBelowFor(double level, int periods) const { return cpu_->ProbStayBelow(level, periods); }
  double ProbMemBelow(double level) const { return mem_->ProbStayBelow(level, window_); }
  // Mean absolute error of the p50 forecast, and how often the p95 was exceeded.
  double CpuMae() const { return mae_; }
  double CpuP95ExceedRate() const { return exceed_; }
  size_t MemoryBytes() const { return cpu_->MemoryBytes() + mem_->MemoryBytes() + sizeof(*this); }
  int window() const { return window_; }

 private:
  std::unique_ptr<ResourceModel> cpu_, mem_;
  int window_;
  bool have_pred_ = false;
  Prediction last_pred_;
  double mae_ = 0, exceed_ = 0;
};

}  // namespace lull::dom0
