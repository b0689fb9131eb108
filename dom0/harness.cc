#include "dom0/harness.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace lull::dom0 {

namespace {
constexpr double kNs = 1e9;
int64_t Sec(uint64_t ns) { return static_cast<int64_t>(ns / 1000000000ULL); }
}  // namespace

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  double pos = q * (v.size() - 1);
  size_t i = static_cast<size_t>(pos);
  double f = pos - i;
  return i + 1 < v.size() ? v[i] * (1 - f) + v[i + 1] * f : v[i];
}

int AutoHostCpus(const Workload& w) {
  std::vector<double> totals;
  for (int64_t t = 0; t < static_cast<int64_t>(w.duration_s); t += 10) {
    double sum = 0;
    for (size_t g = 0; g < w.guests.size(); ++g) sum += w.Cpu(g, t);
    totals.push_back(sum);
  }
  return std::max(2, static_cast<int>(std::ceil(1.1 * Percentile(totals, 0.999))));
}

WorkloadFuture::WorkloadFuture(const Workload* w) : w_(w) {}

double WorkloadFuture::MaxCpu(DomId d, uint64_t t0, uint64_t t1) const {
  for (size_t g = 0; g < w_->guests.size(); ++g)
    if (w_->guests[g].info.domid == d) return w_->MaxCpu(g, Sec(t0), Sec(t1));
  return 0;
}
double WorkloadFuture::MaxMem(DomId d, uint64_t t0, uint64_t t1) const {
  for (size_t g = 0; g < w_->guests.size(); ++g)
    if (w_->guests[g].info.domid == d) return w_->MaxMem(g, Sec(t0), Sec(t1));
  return 0;
}
double WorkloadFuture::MaxHostCpu(uint64_t t0, uint64_t t1) const {
  double m = 0;
  for (int64_t t = Sec(t0); t < Sec(t1); ++t) {
    double s = 0;
    for (size_t g = 0; g < w_->guests.size(); ++g) s += w_->Cpu(g, t);
    m = std::max(m, s);
  }
  return m;
}

Status RunPolicy(const Workload& w, const RunConfig& cfg, Policy p, PolicyResult* out) {
  SimHost host(cfg.host, &w);
  TaskQueue tasks;
  for (const auto& t : cfg.tasks) {
    Status s = tasks.Add(t);
    if (!s.ok()) return s;
  }
  WorkloadFuture future(&w);
  EngineConfig ec = cfg.engine;
  ec.policy = p;
  Engine engine(&host, &tasks, ec, &future);
  Status s = engine.Start();
  if (!s.ok()) return s;
  if (cfg.period_hook) {
    engine.TraceGuests(cfg.traced);
    engine.SetPeriodHook([&](const PeriodRecord& r) { cfg.period_hook(p, r); });
  }
  const int64_t steps = static_cast<int64_t>(w.duration_s / cfg.host.step_s);
  const int64_t tick = std::max<int64_t>(1, steps / 100);
  for (int64_t i = 0; i < steps; ++i) {
    host.Step();
    engine.Poll();
    if (cfg.progress && i % tick == 0) cfg.progress(static_cast<double>(i) / steps);
  }
  (void)engine.RestoreAll();
  *out = PolicyResult{};
  out->policy = p;
  out->host = host.stats();
  out->engine = engine.stats();
  out->handed_cpu_s = host.stats().handed_cpu_s;
  out->handed_gib_h = host.stats().handed_mem_gib_s / 3600.0;
  const SimStats& hs = host.stats();
  out->unmet_cpu_share = hs.demand_cpu_s > 0 ? hs.unmet_cpu_s / hs.demand_cpu_s : 0;
  out->unmet_mem_share = hs.demand_mem_gib_s > 0 ? hs.unmet_mem_gib_s / hs.demand_mem_gib_s : 0;
  out->wait_p99_ms = Percentile(hs.waits_ms, 0.99);
  out->revoke_p50_ms = Percentile(hs.revoke_latency_ms, 0.5);
  out->revoke_p99_ms = Percentile(hs.revoke_latency_ms, 0.99);
  out->revoke_max_ms = hs.revoke_latency_ms.empty() ? 0 : *std::max_element(hs.revoke_latency_ms.begin(), hs.revoke_latency_ms.end());
  std::vector<double> completion;
  for (const auto& t : tasks.all()) {
    if (t.arrival_ns >= static_cast<uint64_t>(w.duration_s * kNs)) continue;
    ++out->tasks_total;
    if (t.completed_ns) {
      ++out->tasks_done;
      completion.push_back((t.completed_ns - t.arrival_ns) / kNs);
      if (t.completed_ns > t.deadline_ns) ++out->deadline_misses;
    } else if (t.deadline_ns <= static_cast<uint64_t>(w.duration_s * kNs)) {
      ++out->deadline_misses;
    }
  }
  double sum = 0;
  for (double c : completion) sum += c;
  out->completion_mean_s = completion.empty() ? 0 : sum / completion.size();
  out->completion_p95_s = Percentile(completion, 0.95);
  return Status::Ok();
}

Status Compare(const Workload& w, const RunConfig& cfg, std::vector<PolicyResult>* out) {
  out->clear();
  for (Policy p : {Policy::kNone, Policy::kReactive, Policy::kLull, Policy::kOracle}) {
    PolicyResult r;
    Status s = RunPolicy(w, cfg, p, &r);
    if (!s.ok()) return s;
    out->push_back(r);
  }
  return Status::Ok();
}

std::string FormatTable(const std::vector<PolicyResult>& rs) {
  double oc = 0, om = 0;
  for (const auto& r : rs) if (r.policy == Policy::kOracle) { oc = r.handed_cpu_s; om = r.handed_gib_h; }
  auto share = [](double a, double b) { return b > 0 ? 100.0 * a / b : 0.0; };
  std::string s;
  char line[512];
  std::snprintf(line, sizeof line,
                "%-9s %12s %7s %10s %7s %10s %9s %9s %10s %6s %10s %10s %9s %9s %8s\n", "policy",
                "CPU-s lent", "%orcl", "GiB-h lent", "%orcl", "unmet CPU", "unmet mem", "p99 wait",
                "tasks done", "late", "mean done", "p95 done", "revokes", "rev p50", "rev p99");
  s += line;
  for (const auto& r : rs) {
    std::snprintf(line, sizeof line,
                  "%-9s %12.0f %6.1f%% %10.1f %6.1f%% %9.5f%% %8.5f%% %7.1fms %5zu/%-4zu %6zu %9.0fs %9.0fs %9llu %7.1fms %6.1fms\n",
                  PolicyName(r.policy), r.handed_cpu_s, share(r.handed_cpu_s, oc), r.handed_gib_h,
                  share(r.handed_gib_h, om), 100 * r.unmet_cpu_share, 100 * r.unmet_mem_share,
                  r.wait_p99_ms, r.tasks_done, r.tasks_total, r.deadline_misses, r.completion_mean_s,
                  r.completion_p95_s, static_cast<unsigned long long>(r.engine.forced_revocations),
                  r.revoke_p50_ms, r.revoke_p99_ms);
    s += line;
  }
  return s;
}

std::string CheckTargets(const std::vector<PolicyResult>& rs) {
  const PolicyResult *lull = nullptr, *orc = nullptr, *re = nullptr;
  for (const auto& r : rs) {
    if (r.policy == Policy::kLull) lull = &r;
    if (r.policy == Policy::kOracle) orc = &r;
    if (r.policy == Policy::kReactive) re = &r;
  }
  if (!lull || !orc || !re) return "lull, oracle and reactive results are all needed";
  std::string miss;
  char b[256];
  double ratio = orc->handed_cpu_s > 0 ? lull->handed_cpu_s / orc->handed_cpu_s : 0;
  if (ratio < 0.8) { std::snprintf(b, sizeof b, "lull lends %.1f%% of the oracle's CPU-seconds (< 80%%); ", 100 * ratio); miss += b; }
  if (lull->unmet_cpu_share > 0.01) { std::snprintf(b, sizeof b, "lull leaves %.3f%% of CPU demand unmet (> 1%%); ", 100 * lull->unmet_cpu_share); miss += b; }
  if (lull->unmet_cpu_share > re->unmet_cpu_share / 3.0) {
    std::snprintf(b, sizeof b, "lull's unmet CPU %.5f%% is more than a third of reactive's %.5f%%; ",
                  100 * lull->unmet_cpu_share, 100 * re->unmet_cpu_share);
    miss += b;
  }
  return miss;
}

void Progress::Update(double fraction, const char* label) {
  const double f = fraction < 0 ? 0 : fraction > 1 ? 1 : fraction;
  const int pct = static_cast<int>(f * 100);
  if (tty_) {
    int bar = static_cast<int>(f * 40);
    std::fprintf(out_, "\r[%-40s] %3d%%  %-8s", std::string(static_cast<size_t>(bar), '#').c_str(), pct, label);
    std::fflush(out_);
    return;
  }
  if (last_pct_ >= 0 && pct / step_ == last_pct_ / step_) return;
  std::fprintf(out_, "progress %3d%% %s\n", pct / step_ * step_, label);
  std::fflush(out_);
  last_pct_ = pct;
  ++lines_;
}

void Progress::Done() {
  if (tty_) std::fprintf(out_, "\r[%-40s] 100%%          \n", std::string(40, '#').c_str());
  else if (last_pct_ < 100) { std::fprintf(out_, "progress 100%% done\n"); ++lines_; last_pct_ = 100; }
  std::fflush(out_);
}

}  // namespace lull::dom0
