#include "dom0/profiler.h"

#include <algorithm>
#include <cmath>

#include "forecast/series_forecaster.h"

namespace lull::dom0 {

namespace {
class EnsembleModel : public ResourceModel {
 public:
  Status Observe(double v) override { return f_.observe(v); }
  Prediction Forecast(int h) const override {
    auto d = f_.forecast(h);
    return Prediction{d.mean, d.p50, d.p90, d.p95, d.p99, d.confidence};
  }
  double ProbStayBelow(double level, int w) const override { return f_.prob_stay_below(level, w); }
  size_t MemoryBytes() const override { return f_.memory_bytes(); }

 private:
  lull::forecast::SeriesForecaster f_;
};
}  // namespace

std::unique_ptr<ResourceModel> MakeModel() { return std::make_unique<EnsembleModel>(); }

GuestProfiler::GuestProfiler(int window_steps)
    : cpu_(MakeModel()), mem_(MakeModel()), window_(window_steps) {}

void GuestProfiler::Observe(double cpu, double mem) {
  if (have_pred_ && !std::isnan(cpu)) {
    // Error of the one-step-ahead forecast made last period.
    mae_ = 0.95 * mae_ + 0.05 * std::fabs(cpu - last_pred_.p50);
    exceed_ = 0.95 * exceed_ + 0.05 * (cpu > last_pred_.p95 ? 1.0 : 0.0);
  }
  (void)cpu_->Observe(cpu);
  (void)mem_->Observe(mem);
  last_pred_ = cpu_->Forecast(1);
  have_pred_ = true;
}

Prediction GuestProfiler::Cpu() const { return cpu_->Forecast(window_); }
Prediction GuestProfiler::Mem() const { return mem_->Forecast(window_); }

}  // namespace lull::dom0
