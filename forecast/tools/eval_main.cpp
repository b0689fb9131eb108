// lull-forecast-eval: rolling-origin evaluation of the forecasters on the real traces.
//
// Usage: lull-forecast-eval [--traces DIR] [--out DIR] [--series N] [--max-steps N]
//                           [--python PATH] [--no-statsmodels] [--no-lstm] [--no-plots]
//                           [--weighting auto|eg|inverse] [--eta X] [--only DATASET]
// The protocol (series selection, warm-up, refit schedule, quantization, inactivity
// question) is stated in docs/forecast.md; the numbers below are its single source.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "forecast/arima.h"
#include "forecast/lstm.h"
#include "forecast/metrics.h"
#include "forecast/protocol.h"
#include "forecast/series_forecaster.h"
#include "forecast/traces.h"

namespace fs = std::filesystem;
using namespace lull::forecast;
using lull::Status;

namespace {

using namespace lull::forecast::protocol;
const char* kModelNames[] = {"last", "sma", "ewma", "arima", "seasonal", "markov", "median", "ensemble"};
constexpr int kNM = 8;

struct Options {
  std::string traces = "../shared/traces", out = "results/forecast", python = "/usr/bin/python3";
  size_t series = 6, max_steps = 2304;
  std::string only;  // evaluate only this dataset (empty: all)
  bool statsmodels = true, lstm = true, plots = true;
  EnsembleConfig::Weighting weighting = EnsembleConfig::Weighting::kAuto;
  double eta = EnsembleConfig{}.eta;
};

struct Dataset {
  std::string name;
  int warmup;
  std::vector<Series> eval, train;
};

double NaiveMae(const std::vector<double>& y) {
  double s = 0;
  size_t n = 0;
  for (size_t i = 1; i < y.size(); ++i)
    if (!std::isnan(y[i]) && !std::isnan(y[i - 1])) s += std::abs(std::min(y[i], 1.0) - std::min(y[i - 1], 1.0)), ++n;
  return n ? s / n : 0;
}

Distribution Normal(double mean, double sigma) {
  static const double z[] = {0, 1.2815516, 1.6448536, 2.3263479};
  double q[4];
  for (int k = 0; k < 4; ++k) q[k] = std::clamp(mean + z[k] * sigma, 0.0, 1.0);
  Distribution d;
  d.mean = std::clamp(mean, 0.0, 1.0);
  d.p50 = q[0], d.p90 = q[1], d.p95 = q[2], d.p99 = q[3];
  return d;
}

void Truncate(std::vector<Series>* v, size_t max_steps) {
  for (auto& s : *v)
    if (s.values.size() > max_steps) s.values.resize(max_steps);
}

// Loads eval and training series per dataset; a missing dataset is reported and skipped.
std::vector<Dataset> LoadAll(const Options& o) {
  std::vector<Dataset> ds;
  const size_t N = o.series;
  auto warn = [](const Status& st) { std::fprintf(stderr, "eval: skipping: %s\n", st.ToString().c_str()); };
  {
    Dataset d{"planetlab", kWarmupPlanetLab, {}, {}};
    Status st = LoadPlanetLabDay(o.traces + "/planetlab/20110303", N, &d.eval);
    if (st.ok()) st = LoadPlanetLabDay(o.traces + "/planetlab/20110306", 4 * N, &d.train);
    if (st.ok()) ds.push_back(std::move(d)); else warn(st);
  }
  {
    Dataset c{"bitbrains_cpu", kWarmup, {}, {}}, m{"bitbrains_mem", kWarmup, {}, {}};
    std::vector<std::string> files;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(o.traces + "/bitbrains_rnd/2013-8", ec))
      if (e.path().extension() == ".csv") files.push_back(e.path().string());
    std::sort(files.begin(), files.end());
    Status st = ec ? Status::NotFound("bitbrains folder: " + ec.message()) : Status::Ok();
    for (size_t i = 0; st.ok() && i < std::min(files.size(), 2 * N); ++i) {
      Series sc, sm;
      st = LoadBitbrainsFile(files[i], &sc, &sm, nullptr);
      (i < N ? c.eval : c.train).push_back(sc);
      (i < N ? m.eval : m.train).push_back(sm);
    }
    if (st.ok()) ds.push_back(std::move(c)), ds.push_back(std::move(m)); else warn(st);
  }
  {
    Dataset d{"azure", kWarmup, {}, {}};
    std::vector<Series> all;
    Status st = LoadAzureCsv(o.traces + "/azure_v1/microsoft_avg_100.csv", 2 * N, &all);
    for (size_t i = 0; i < all.size(); ++i) (i < N ? d.eval : d.train).push_back(all[i]);
    if (st.ok()) ds.push_back(std::move(d)); else warn(st);
  }
  {
    Dataset c{"alibaba_cpu", kWarmup, {}, {}}, m{"alibaba_mem", kWarmup, {}, {}};
    std::vector<Series> cpu, mem;
    Status st = LoadAlibabaUsage(o.traces + "/alibaba_v2018/machine_usage.csv", 300, 2000, &cpu, &mem, nullptr);
    for (size_t i = 0; i < cpu.size(); ++i) {
      (i < N ? c.eval : c.train).push_back(cpu[i]);
      (i < N ? m.eval : m.train).push_back(mem[i]);
    }
    if (st.ok()) ds.push_back(std::move(c)), ds.push_back(std::move(m)); else warn(st);
  }
  for (auto& d : ds) Truncate(&d.eval, o.max_steps), Truncate(&d.train, o.max_steps);
  return ds;
}

std::vector<double> FillForClassifier(const std::vector<double>& y) {
  std::vector<double> out(y.size());
  double last = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    if (!std::isnan(y[i])) last = std::clamp(y[i], 0.0, 1.0);
    out[i] = last;
  }
  return out;
}

// The series' name as the manifest (and so statsmodels_ref.py) spells it.
std::string SeriesKey(const Series& s) {
  std::string name = s.name;
  std::replace(name.begin(), name.end(), ',', '_');
  return name;
}

struct DatasetResult {
  std::map<std::pair<std::string, int>, ForecastMetrics> m;  // (model, h)
  // 1-step |error| per series, model and origin (NaN where not scored), so that the
  // comparison with statsmodels uses exactly the origins both scored.
  std::map<std::string, std::map<std::string, std::vector<double>>> err1;
  BrierScore markov, lstm, ensemble;
  double ens_seconds = 0, arima_seconds = 0, sm_seconds = 0;
  size_t steps = 0, series = 0, lstm_chosen = 0, rejected = 0;
};

double Seconds(std::chrono::steady_clock::time_point a) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
}

Options g_opt;

EnsembleConfig MakeConfig(int warmup, const InactivityLstm* lstm) {
  EnsembleConfig cfg;
  cfg.weighting = g_opt.weighting;
  cfg.eta = g_opt.eta;
  cfg.arima.min_fit = warmup;
  cfg.arima.refit_every = kRefit;
  cfg.arima.window = kWindow;
  cfg.lstm = lstm;
  cfg.inactivity_level = kLullLevel;
  cfg.inactivity_window = kLullWindow;
  return cfg;
}

// CPU seconds of this thread: the machine is shared, so wall time would also measure the
// neighbours. statsmodels_ref.py reports process CPU time for the same reason.
double CpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

// Our ARIMA alone, timed on the same protocol as statsmodels.
double TimeArima(const std::vector<double>& y, int warmup) {
  const double t0 = CpuSeconds();
  const double sink = RunArima(y, warmup);
  const double s = CpuSeconds() - t0;
  if (sink == 12345.678) std::puts("");  // keep the work observable
  return s;
}

void Err1(DatasetResult* r, const Series& s, const char* model, size_t t, double e) {
  std::vector<double>& v = r->err1[SeriesKey(s)][model];
  if (v.size() < s.values.size()) v.resize(s.values.size(), NAN);
  v[t] = e;
}

void EvalSeries(const Series& s, int warmup, const InactivityLstm* lstm, DatasetResult* r,
                std::ofstream* bands, bool write_bands) {
  const std::vector<double>& y = s.values;
  const double nm = NaiveMae(y);
  SeriesForecaster f(MakeConfig(warmup, lstm));
  double ens_s = 0;
  for (size_t t = 0; t < y.size(); ++t) {
    const double t0 = CpuSeconds();
    Status st = f.observe(y[t]);
    if (!st.ok()) {
      // A reading the forecaster rejects (Bitbrains memory usage above the provisioned
      // size) is reported and fed as a missing step, so time stays aligned.
      if (r->rejected++ < 5)
        std::fprintf(stderr, "eval: %s/%s step %zu: %s (treated as missing)\n", s.dataset.c_str(), s.name.c_str(), t,
                     st.ToString().c_str());
      f.observe(NAN);
    }
    const Distribution d1 = f.forecast(1);
    ens_s += CpuSeconds() - t0;
    if (static_cast<int>(t) < warmup - 1) continue;
    for (int h : kHorizons) {
      if (t + h >= y.size() || std::isnan(y[t + h]) || y[t + h] > 1.25 || y[t + h] < 0) continue;
      const double actual = std::min(y[t + h], 1.0);
      for (int i = 0; i < SeriesForecaster::kModels; ++i) {
        const PointForecast p = f.model(i).Forecast(h, f.history());
        r->m[{kModelNames[i], h}].Add(actual, Normal(p.mean, p.sigma), nm);
        if (h == 1) Err1(r, s, kModelNames[i], t, std::abs(actual - std::clamp(p.mean, 0.0, 1.0)));
      }
      const Distribution d = h == 1 ? d1 : f.forecast(h);
      r->m[{"ensemble", h}].Add(actual, d, nm);
      if (h == 1) Err1(r, s, "ensemble", t, std::abs(actual - d.mean));
      if (write_bands)
        *bands << s.dataset << ',' << s.name << ',' << h << ',' << t + h << ',' << actual << ','
               << d.mean << ',' << d.p50 << ',' << d.p90 << ',' << d.p95 << ',' << d.p99 << '\n';
    }
    if (t + kLullWindow < y.size()) {
      bool known = true, stay = true;
      for (int k = 1; k <= kLullWindow; ++k) {
        if (std::isnan(y[t + k])) known = false;
        else if (!(y[t + k] < kLullLevel)) stay = false;
      }
      if (known) {
        r->markov.Add(f.markov_prob_stay_below(kLullLevel, kLullWindow), stay);
        if (lstm) r->lstm.Add(f.lstm_prob_stay_below(kLullLevel, kLullWindow), stay);
        r->ensemble.Add(f.prob_stay_below(kLullLevel, kLullWindow), stay);
      }
    }
  }
  r->lstm_chosen += f.using_lstm();
  r->ens_seconds += ens_s;
  r->arima_seconds += TimeArima(y, warmup);
  r->steps += y.size();
  ++r->series;
}

bool ParseArgs(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&](std::string* v) {
      if (i + 1 >= argc) { std::fprintf(stderr, "eval: %s needs a value\n", a.c_str()); return false; }
      *v = argv[++i];
      return true;
    };
    std::string v;
    if (a == "--traces") { if (!next(&o->traces)) return false; }
    else if (a == "--out") { if (!next(&o->out)) return false; }
    else if (a == "--python") { if (!next(&o->python)) return false; }
    else if (a == "--series" || a == "--max-steps") {
      if (!next(&v)) return false;
      char* end;
      const long n = std::strtol(v.c_str(), &end, 10);
      if (*end || n < 1) { std::fprintf(stderr, "eval: %s '%s' is not a positive integer\n", a.c_str(), v.c_str()); return false; }
      (a == "--series" ? o->series : o->max_steps) = static_cast<size_t>(n);
    }
    else if (a == "--weighting") {
      if (!next(&v)) return false;
      if (v == "auto") o->weighting = EnsembleConfig::Weighting::kAuto;
      else if (v == "eg") o->weighting = EnsembleConfig::Weighting::kExpGradient;
      else if (v == "inverse") o->weighting = EnsembleConfig::Weighting::kInverseError;
      else { std::fprintf(stderr, "eval: --weighting '%s' is not 'auto', 'eg' or 'inverse'\n", v.c_str()); return false; }
    }
    else if (a == "--eta") {
      if (!next(&v)) return false;
      o->eta = std::atof(v.c_str());
    }
    else if (a == "--only") { if (!next(&o->only)) return false; }
    else if (a == "--no-statsmodels") o->statsmodels = false;
    else if (a == "--no-lstm") o->lstm = false;
    else if (a == "--no-plots") o->plots = false;
    else { std::fprintf(stderr, "eval: unknown argument '%s' (see the header of eval_main.cpp)\n", a.c_str()); return false; }
  }
  return true;
}

// Reads statsmodels_ref.py's CSV into the per-dataset results.
Status ReadStatsmodels(const std::string& path, std::map<std::string, DatasetResult>* res) {
  std::ifstream f(path);
  if (!f) return Status::NotFound("statsmodels results " + path + " missing");
  std::string line;
  std::getline(f, line);
  std::map<std::pair<std::string, std::string>, double> secs;
  size_t ln = 1;
  while (std::getline(f, line)) {
    ++ln;
    std::vector<std::string> c;
    std::stringstream ss(line);
    std::string x;
    while (std::getline(ss, x, ',')) c.push_back(x);
    if (c.size() < 12) return Status::Corruption(path + " line " + std::to_string(ln) + ": expected 12 fields");
    const int h = std::stoi(c[2]);
    const size_t n = std::stoul(c[3]);
    // Rebuild the metrics from sums: feed a ForecastMetrics with equivalent totals.
    DatasetResult& r = (*res)[c[0]];
    ForecastMetrics& m = r.m[{"statsmodels", h}];
    m.MergeSums(n, std::stod(c[4]), std::stod(c[5]), std::stod(c[6]), std::stod(c[7]),
                std::stoul(c[8]), std::stoul(c[9]));
    secs[{c[0], c[1]}] = std::stod(c[10]);
  }
  for (auto& [k, s] : secs) (*res)[k.first].sm_seconds += s;
  // Per-origin 1-step errors, for the matched comparison.
  const std::string epath = path.substr(0, path.size() - 4) + "_errors1.csv";
  std::ifstream ef(epath);
  if (!ef) return Status::NotFound("statsmodels per-origin errors " + epath + " missing");
  std::getline(ef, line);
  ln = 1;
  while (std::getline(ef, line)) {
    ++ln;
    std::vector<std::string> c;
    std::stringstream ss(line);
    std::string x;
    while (std::getline(ss, x, ',')) c.push_back(x);
    if (c.size() < 4) return Status::Corruption(epath + " line " + std::to_string(ln) + ": expected 4 fields");
    std::vector<double>& v = (*res)[c[0]].err1[c[1]]["statsmodels"];
    const size_t t = std::stoul(c[2]);
    if (v.size() <= t) v.resize(t + 1, NAN);
    v[t] = std::stod(c[3]);
  }
  return Status::Ok();
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!ParseArgs(argc, argv, &o)) return 2;
  g_opt = o;
  if (!fs::exists(o.traces)) {
    std::fprintf(stderr, "eval: traces folder '%s' not found (pass --traces DIR)\n", o.traces.c_str());
    return 1;
  }
  fs::create_directories(o.out + "/series");
  auto datasets = LoadAll(o);
  if (datasets.empty()) {
    std::fprintf(stderr, "eval: no dataset could be loaded from %s\n", o.traces.c_str());
    return 1;
  }

  // 1. The LSTM inactivity classifier, trained on the training split (disjoint series).
  InactivityLstm lstm;
  if (o.lstm) {
    std::vector<std::vector<double>> train;
    for (const auto& d : datasets)
      for (const auto& s : d.train) train.push_back(FillForClassifier(s.values));
    LstmTrainConfig tc;
    tc.epochs = 12;
    tc.max_steps = 4'000'000;
    LstmTrainReport rep;
    const auto t0 = std::chrono::steady_clock::now();
    Status st = lstm.Train(train, tc, &rep);
    if (!st.ok()) { std::fprintf(stderr, "eval: LSTM training: %s\n", st.ToString().c_str()); return 1; }
    std::printf("LSTM: %zu training series, %zu steps, %.1f s, loss per epoch:", train.size(), rep.steps, Seconds(t0));
    for (double l : rep.epoch_loss) std::printf(" %.4f", l);
    std::printf("\n");
    st = lstm.Save(o.out + "/lstm_weights.txt");
    if (!st.ok()) std::fprintf(stderr, "eval: %s\n", st.ToString().c_str());
  }

  if (!o.only.empty()) {  // the LSTM above still trained on every dataset's training split
    std::vector<Dataset> keep;
    for (auto& d : datasets)
      if (d.name == o.only) keep.push_back(std::move(d));
    if (keep.empty()) {
      std::fprintf(stderr, "eval: --only '%s' matches no loaded dataset\n", o.only.c_str());
      return 2;
    }
    datasets = std::move(keep);
  }

  // 2. Our models and the ensemble on every evaluation series.
  std::map<std::string, DatasetResult> res;
  std::ofstream manifest(o.out + "/series/manifest.csv");
  manifest << "dataset,name,file,warmup\n";
  std::ofstream bands(o.out + "/bands.csv");
  bands << "dataset,series,horizon,t,actual,mean,p50,p90,p95,p99\n";
  size_t k = 0;
  for (const auto& d : datasets) {
    for (size_t i = 0; i < d.eval.size(); ++i) {
      const Series& s = d.eval[i];
      const std::string file = fs::absolute(o.out + "/series/" + std::to_string(k++) + ".txt").string();
      std::ofstream sf(file);
      for (double v : s.values) sf << (std::isnan(v) ? std::string("nan") : std::to_string(v)) << '\n';
      manifest << d.name << ',' << SeriesKey(s) << ',' << file << ',' << d.warmup << '\n';
      EvalSeries(s, d.warmup, o.lstm ? &lstm : nullptr, &res[d.name], &bands, i == 0);
    }
    std::fprintf(stderr, "eval: %s done (%zu series)\n", d.name.c_str(), d.eval.size());
  }
  manifest.close();
  bands.close();

  // 3. The reference, statsmodels' ARIMA, on the same series and protocol.
  bool have_sm = false;
  if (o.statsmodels) {
    const std::string cmd = o.python + " " LULL_SOURCE_DIR "/forecast/statsmodels_ref.py --manifest " + o.out +
                            "/series/manifest.csv --out " + o.out + "/statsmodels.csv --errors " + o.out +
                            "/statsmodels_errors1.csv --order " +
                            std::to_string(kArimaP) + "," + std::to_string(kArimaD) + "," +
                            std::to_string(kArimaQ) + " --refit " +
                            std::to_string(kRefit) + " --window " + std::to_string(kWindow);
    std::fprintf(stderr, "eval: %s\n", cmd.c_str());
    if (std::system(cmd.c_str()) != 0) {
      std::fprintf(stderr, "eval: statsmodels reference failed; comparisons omitted\n");
    } else {
      Status st = ReadStatsmodels(o.out + "/statsmodels.csv", &res);
      if (!st.ok()) std::fprintf(stderr, "eval: %s\n", st.ToString().c_str());
      else have_sm = true;
    }
  }

  // 4. CSVs and the table.
  std::ofstream mc(o.out + "/metrics.csv");
  mc << "dataset,model,horizon,n,mae,rmse,mase,pinball,cov95,under\n";
  std::ofstream bc(o.out + "/brier.csv");
  bc << "dataset,predictor,n,brier,base_rate\n";
  std::ofstream rc(o.out + "/ratios.csv");
  rc << "dataset,ens_mae1,statsmodels_mae1,best_baseline,best_baseline_mae1,ratio_vs_statsmodels,ratio_vs_best_baseline,arima_s_per_series,statsmodels_s_per_series,speedup,matched_origins,origins_without_statsmodels\n";
  std::printf("\n%-14s %3s %-12s %7s %8s %8s %7s %8s %6s %6s\n", "dataset", "h", "model", "n", "MAE", "RMSE", "MASE", "pinball", "cov95", "under");
  for (const auto& d : datasets) {
    DatasetResult& r = res[d.name];
    for (int h : kHorizons) {
      std::vector<std::string> names(kModelNames, kModelNames + kNM);
      if (have_sm) names.push_back("statsmodels");
      for (const auto& name : names) {
        const ForecastMetrics& m = r.m[{name, h}];
        mc << d.name << ',' << name << ',' << h << ',' << m.n() << ',' << m.mae() << ',' << m.rmse() << ','
           << m.mase() << ',' << m.pinball() << ',' << m.coverage95() << ',' << m.under_rate() << '\n';
        std::printf("%-14s %3d %-12s %7zu %8.5f %8.5f %7.3f %8.5f %6.3f %6.3f\n", d.name.c_str(), h, name.c_str(),
                    m.n(), m.mae(), m.rmse(), m.mase(), m.pinball(), m.coverage95(), m.under_rate());
      }
    }
    bc << d.name << ",markov," << r.markov.n() << ',' << r.markov.score() << ',' << r.markov.base_rate() << '\n';
    if (o.lstm) bc << d.name << ",lstm," << r.lstm.n() << ',' << r.lstm.score() << ',' << r.lstm.base_rate() << '\n';
    bc << d.name << ",ensemble," << r.ensemble.n() << ',' << r.ensemble.score() << ',' << r.ensemble.base_rate() << '\n';
  }
  std::printf("\n1-step MAE ratios (<= 1 means the ensemble is at least as good)\n");
  std::printf("(over the 1-step origins both scored; last column: matched origins / ours)\n");
  std::printf("%-14s %9s %9s %9s %-6s %9s %8s | %10s %10s %8s  %s\n", "dataset", "ensemble", "statsm.", "vs statsm", "best", "baseline", "vs best",
              "arima cpu-s", "statsm cpu-s", "speedup", "origins");
  for (const auto& d : datasets) {
    DatasetResult& r = res[d.name];
    // Matched comparison: the 1-step origins that statsmodels scored too (it cannot fit a
    // window that is mostly missing, so a few origins have no statsmodels forecast).
    std::map<std::string, double> sum;
    size_t matched = 0, ours_only = 0;
    for (auto& [series, by_model] : r.err1) {
      const std::vector<double>& ens = by_model["ensemble"];
      const std::vector<double>* smv = have_sm && by_model.count("statsmodels") ? &by_model["statsmodels"] : nullptr;
      for (size_t t = 0; t < ens.size(); ++t) {
        if (std::isnan(ens[t])) continue;
        if (have_sm && (!smv || t >= smv->size() || std::isnan((*smv)[t]))) { ++ours_only; continue; }
        ++matched;
        for (auto& [model, v] : by_model)
          if (t < v.size() && !std::isnan(v[t])) sum[model] += v[t];
      }
    }
    std::map<std::string, ForecastMetrics> agg;  // only .mae() is used below
    for (auto& [model, tot] : sum) agg[model].MergeSums(matched, tot, 0, 0, 0, 0, 0);
    const double ens = agg["ensemble"].mae();
    std::string best = "last";
    for (const char* b : {"sma", "ewma"})
      if (agg[b].mae() < agg[best].mae()) best = b;
    const double bm = agg[best].mae();
    const double sm = have_sm ? agg["statsmodels"].mae() : NAN;
    const double as = r.arima_seconds / std::max<size_t>(1, r.series);
    const double ss = have_sm ? r.sm_seconds / std::max<size_t>(1, r.series) : NAN;
    std::printf("%-14s %9.5f %9.5f %9.3f %-6s %9.5f %8.3f | %10.5f %10.3f %8.0fx  %zu/%zu\n", d.name.c_str(), ens, sm,
                ens / sm, best.c_str(), bm, ens / bm, as, ss, ss / as, matched, matched + ours_only);
    rc << d.name << ',' << ens << ',' << sm << ',' << best << ',' << bm << ',' << ens / sm << ',' << ens / bm << ','
       << as << ',' << ss << ',' << ss / as << ',' << matched << ',' << ours_only << '\n';
  }
  std::printf("\nInactivity: P(stay below %.0f %% for the next %d steps), Brier score (lower is better)\n",
              kLullLevel * 100, kLullWindow);
  std::printf("%-14s %7s %9s %9s %9s %9s %s\n", "dataset", "n", "base", "markov", "lstm", "ensemble", "series using lstm");
  for (const auto& d : datasets) {
    DatasetResult& r = res[d.name];
    std::printf("%-14s %7zu %9.4f %9.4f %9.4f %9.4f %zu/%zu\n", d.name.c_str(), r.markov.n(), r.markov.base_rate(),
                r.markov.score(), o.lstm ? r.lstm.score() : NAN, r.ensemble.score(), r.lstm_chosen, r.series);
  }
  for (const auto& d : datasets)
    if (res[d.name].rejected)
      std::printf("%s: %zu samples outside [0, 1.25] rejected by the forecaster, fed as missing and not scored\n",
                  d.name.c_str(), res[d.name].rejected);
  std::printf("\nEnsemble cost in this run (CPU time, includes the LSTM): ");
  double es = 0;
  size_t st = 0;
  for (auto& [n, r] : res) es += r.ens_seconds, st += r.steps;
  std::printf("%.2f us per observe+forecast(1) step over %zu steps\n", 1e6 * es / std::max<size_t>(1, st), st);

  if (o.plots) {
    const std::string cmd = o.python + " " LULL_SOURCE_DIR "/forecast/plots.py --results " + o.out;
    if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "eval: plotting failed (%s)\n", cmd.c_str());
  }
  std::printf("results in %s/ (metrics.csv, ratios.csv, brier.csv, bands.csv, *.png)\n", o.out.c_str());
  return 0;
}
