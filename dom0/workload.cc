#include "dom0/workload.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace lull::dom0 {
namespace fs = std::filesystem;

namespace {

// SplitMix64: small, portable and fully deterministic (std:: distributions are not
// guaranteed identical across library versions).
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ULL + 0x1234567ULL) {}
  uint64_t Next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  double Uniform() { return (Next() >> 11) * (1.0 / 9007199254740992.0); }
  double Range(double a, double b) { return a + (b - a) * Uniform(); }
  // Exponential holding time with the given mean.
  double Exp(double mean) { return -mean * std::log(1.0 - Uniform()); }
};

uint64_t Mix(uint64_t a, uint64_t b) {
  Rng r(a * 1315423911ULL ^ b);
  return r.Next();
}

double JitterAt(size_t g, int64_t t_s) {
  uint64_t h = Mix(g + 1, static_cast<uint64_t>(t_s));
  return ((h >> 11) * (1.0 / 9007199254740992.0)) * 2.0 - 1.0;  // [-1, 1)
}

size_t Index(const GuestSeries& s, int64_t t_s) {
  if (t_s < 0) t_s = 0;
  size_t i = static_cast<size_t>(t_s / s.step_s);
  return std::min(i, s.cpu.size() - 1);
}

// Memory model shared by the generator and traces without memory: a base working set,
// page-cache growth over the day up to a ceiling, and a bump while the guest is busy.
void SynthMemory(GuestSeries* s, Rng& rng) {
  double max = s->info.mem_max_gib;
  double base = rng.Range(0.25, 0.5) * max;
  double growth_per_s = rng.Range(0.05, 0.2) * max / 86400.0;
  double ceiling = 0.8 * max;
  s->mem.resize(s->cpu.size());
  for (size_t i = 0; i < s->cpu.size(); ++i) {
    double t = i * s->step_s;
    double busy = s->cpu[i] / std::max(1, s->info.vcpus);
    double m = std::min(ceiling, base + growth_per_s * t) + 0.15 * max * busy;
    s->mem[i] = static_cast<float>(std::min(max, m));
  }
}

GuestInfo MakeInfo(int idx, Rng& rng, int vcpus) {
  GuestInfo gi;
  gi.domid = static_cast<DomId>(idx + 1);
  gi.vcpus = vcpus;
  static const double kMem[] = {2, 4, 8, 16};
  gi.mem_max_gib = kMem[static_cast<int>(rng.Uniform() * 4) % 4];
  gi.weight = 256;
  double u = rng.Uniform();
  gi.cls = u < 0.2 ? PriorityClass::kCritical
                   : (u < 0.8 ? PriorityClass::kStandard : PriorityClass::kBestEffort);
  return gi;
}

}  // namespace

const char* PriorityClassName(PriorityClass c) {
  switch (c) {
    case PriorityClass::kCritical: return "critical";
    case PriorityClass::kStandard: return "standard";
    case PriorityClass::kBestEffort: return "best-effort";
  }
  return "?";
}

bool ParsePriorityClass(const std::string& s, PriorityClass* out) {
  if (s == "critical") *out = PriorityClass::kCritical;
  else if (s == "standard") *out = PriorityClass::kStandard;
  else if (s == "best-effort") *out = PriorityClass::kBestEffort;
  else return false;
  return true;
}

double Workload::Cpu(size_t g, int64_t t_s) const {
  const GuestSeries& s = guests[g];
  double v = s.cpu[Index(s, t_s)];
  if (s.jitter > 0) v *= 1.0 + s.jitter * JitterAt(g, t_s);
  return std::clamp(v, 0.0, static_cast<double>(s.info.vcpus));
}

double Workload::Mem(size_t g, int64_t t_s) const {
  const GuestSeries& s = guests[g];
  return s.mem[Index(s, t_s)];
}

double Workload::MaxCpu(size_t g, int64_t t0, int64_t t1) const {
  const GuestSeries& s = guests[g];
  double m = 0;
  if (s.jitter > 0) {
    for (int64_t t = t0; t < t1; ++t) m = std::max(m, Cpu(g, t));
    return m;
  }
  for (int64_t t = t0; t < t1;) {
    size_t i = Index(s, t);
    m = std::max(m, static_cast<double>(s.cpu[i]));
    int64_t next = static_cast<int64_t>((i + 1) * s.step_s);
    if (i + 1 >= s.cpu.size()) break;
    t = std::max(t + 1, next);
  }
  return std::min(m, static_cast<double>(s.info.vcpus));
}

double Workload::MaxMem(size_t g, int64_t t0, int64_t t1) const {
  const GuestSeries& s = guests[g];
  double m = 0;
  for (int64_t t = t0; t < t1;) {
    size_t i = Index(s, t);
    m = std::max(m, static_cast<double>(s.mem[i]));
    if (i + 1 >= s.mem.size()) break;
    t = std::max(t + 1, static_cast<int64_t>((i + 1) * s.step_s));
  }
  return m;
}

Status GenerateBuiltin(const GeneratorConfig& cfg, Workload* out) {
  if (cfg.guests < 1) return Status::InvalidArgument("generator: guests must be >= 1");
  if (!(cfg.load > 0 && cfg.load <= 1.5))
    return Status::InvalidArgument("generator: load must be in (0, 1.5]");
  if (!(cfg.duration_s >= 60))
    return Status::InvalidArgument("generator: duration_s must be >= 60");
  out->duration_s = cfg.duration_s;
  out->guests.clear();
  const size_t n = static_cast<size_t>(cfg.duration_s);
  static const int kVcpus[] = {1, 2, 2, 4};
  for (int g = 0; g < cfg.guests; ++g) {
    Rng rng(cfg.seed * 1000003ULL + static_cast<uint64_t>(g));
    GuestSeries s;
    s.info = MakeInfo(g, rng, kVcpus[g % 4]);
    s.info.name = "guest" + std::to_string(g + 1);
    s.step_s = 1;
    s.cpu.resize(n);
    const double v = s.info.vcpus;
    const int kind = g % 4;
    // Each kind alternates "on" and "off" states with exponential holding times; the
    // diurnal factor makes "on" more likely by day (phase varies per guest).
    double on_mean, off_mean, on_level, off_level, diurnal;
    switch (kind) {
      case 0:  // batch: long lulls between heavy bursts
        s.source = "builtin:batch";
        on_mean = rng.Range(900, 2400); off_mean = rng.Range(1800, 5400);
        on_level = rng.Range(0.6, 0.95); off_level = rng.Range(0.01, 0.04); diurnal = 0.3;
        break;
      case 1:  // web: diurnal load with short bursts
        s.source = "builtin:web";
        on_mean = rng.Range(60, 300); off_mean = rng.Range(600, 1800);
        on_level = rng.Range(0.5, 0.8); off_level = rng.Range(0.03, 0.08); diurnal = 1.0;
        break;
      case 2:  // database: steady, little to lend
        s.source = "builtin:db";
        on_mean = rng.Range(3600, 7200); off_mean = rng.Range(600, 1200);
        on_level = rng.Range(0.35, 0.5); off_level = rng.Range(0.15, 0.25); diurnal = 0.5;
        break;
      default:  // cron: mostly idle, short spikes
        s.source = "builtin:cron";
        on_mean = rng.Range(60, 240); off_mean = rng.Range(1800, 3600);
        on_level = rng.Range(0.7, 1.0); off_level = rng.Range(0.0, 0.02); diurnal = 0.0;
        break;
    }
    const double phase = rng.Range(0, 86400);
    bool on = rng.Uniform() < 0.3;
    double left = rng.Exp(on ? on_mean : off_mean);
    double level = on ? on_level : off_level;
    for (size_t t = 0; t < n; ++t) {
      double day = 0.5 + 0.5 * std::sin(2 * M_PI * (static_cast<double>(t) - phase) / 86400.0);
      if (left <= 0) {
        on = !on;
        // By night (day -> 0) bursts are shorter and lulls longer, by `diurnal`.
        double f = 1.0 - diurnal * 0.7 * (1.0 - day);
        left = on ? rng.Exp(on_mean * f) : rng.Exp(off_mean / std::max(0.3, f));
        level = on ? on_level * rng.Range(0.85, 1.1) : off_level;
      }
      left -= 1;
      double noise = 1.0 + 0.1 * (rng.Uniform() * 2 - 1);
      double base = level;
      if (kind == 1) base += 0.25 * day;  // web carries a diurnal floor
      s.cpu[t] = static_cast<float>(std::clamp(cfg.load * base * noise * v, 0.0, v));
    }
    SynthMemory(&s, rng);
    out->guests.push_back(std::move(s));
  }
  return Status::Ok();
}

// ---------------------------------------------------------------- trace loading

namespace {

std::string Where(const fs::path& p, size_t line) {
  return p.string() + " line " + std::to_string(line);
}

bool ParseDouble(const std::string& s, double* v) {
  char* end = nullptr;
  *v = std::strtod(s.c_str(), &end);
  return end != s.c_str() && std::isfinite(*v);
}

std::vector<fs::path> SortedFiles(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

// Deterministic stride over the sorted candidates: no selection on content.
template <typename T>
std::vector<T> Stride(const std::vector<T>& all, int want) {
  std::vector<T> out;
  if (all.empty()) return out;
  size_t n = std::min(all.size(), static_cast<size_t>(want));
  for (size_t i = 0; i < n; ++i) out.push_back(all[i * all.size() / n]);
  return out;
}

void Finish(GuestSeries* s, int idx, const TraceConfig& cfg, bool has_mem) {
  Rng rng(cfg.seed * 7919ULL + static_cast<uint64_t>(idx));
  size_t n = std::min(s->cpu.size(), static_cast<size_t>(std::ceil(cfg.duration_s / s->step_s)));
  s->cpu.resize(n);
  if (has_mem) s->mem.resize(n); else SynthMemory(s, rng);
  s->info.domid = static_cast<DomId>(idx + 1);
  s->jitter = 0.15;
}

GuestInfo TraceInfo(int idx, const TraceConfig& cfg, int vcpus) {
  Rng rng(cfg.seed * 31337ULL + static_cast<uint64_t>(idx));
  return MakeInfo(idx, rng, vcpus);
}

Status LoadPlanetLab(const fs::path& day, const TraceConfig& cfg, Workload* out) {
  auto files = Stride(SortedFiles(day), cfg.guests);
  static const int kVcpus[] = {1, 2, 2, 4};
  int idx = 0;
  for (const auto& f : files) {
    std::ifstream in(f);
    if (!in) return Status::IoError("cannot open " + f.string());
    GuestSeries s;
    s.info = TraceInfo(idx, cfg, kVcpus[idx % 4]);
    s.info.name = f.filename().string();
    s.source = "planetlab:" + f.filename().string();
    s.step_s = 300;
    std::string line;
    size_t ln = 0;
    while (std::getline(in, line)) {
      ++ln;
      if (line.empty()) continue;
      double v;
      if (!ParseDouble(line, &v) || v < 0)
        return Status::Corruption(Where(f, ln) + ": CPU % is '" + line + "', not a number >= 0");
      s.cpu.push_back(static_cast<float>(std::min(v, 100.0) / 100.0 * s.info.vcpus));
    }
    if (s.cpu.empty()) return Status::Corruption(f.string() + ": no samples");
    Finish(&s, idx++, cfg, false);
    out->guests.push_back(std::move(s));
  }
  return Status::Ok();
}

std::vector<std::string> SplitSemiTab(const std::string& line) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t p = line.find(';', start);
    std::string f = line.substr(start, p == std::string::npos ? std::string::npos : p - start);
    while (!f.empty() && (f.front() == '\t' || f.front() == ' ')) f.erase(f.begin());
    out.push_back(f);
    if (p == std::string::npos) break;
    start = p + 1;
  }
  return out;
}

Status LoadBitbrains(const fs::path& dir, const TraceConfig& cfg, Workload* out) {
  std::vector<fs::path> csvs;
  for (const auto& f : SortedFiles(dir))
    if (f.extension() == ".csv" && f.filename().string().find("MANIFEST") == std::string::npos)
      csvs.push_back(f);
  int idx = 0;
  // Every file in name order until enough report in the window: a VM that never
  // reports there (0 cores, all zero) is missing, not idle, so it is skipped.
  for (const auto& f : csvs) {
    if (idx >= cfg.guests) break;
    std::ifstream in(f);
    if (!in) return Status::IoError("cannot open " + f.string());
    std::string line;
    std::getline(in, line);
    if (line.find("CPU usage [%]") == std::string::npos)
      return Status::Corruption(Where(f, 1) + ": header lacks 'CPU usage [%]'");
    GuestSeries s;
    s.source = "bitbrains:" + f.filename().string();
    s.step_s = 300;
    double t0 = -1, mem_cap_gib = 0;
    int cores = 0;
    float last_cpu = 0, last_mem = 0;
    size_t ln = 1;
    std::vector<std::pair<double, double>> cpu_pct_mem;  // (cpu fraction, mem GiB)
    while (std::getline(in, line)) {
      ++ln;
      if (line.empty()) continue;
      auto f11 = SplitSemiTab(line);
      if (f11.size() < 7)
        return Status::Corruption(Where(f, ln) + ": expected 11 ';\\t' fields, got " +
                                  std::to_string(f11.size()));
      double ts, c, pct, memcap, memuse;
      if (!ParseDouble(f11[0], &ts)) return Status::Corruption(Where(f, ln) + ": Timestamp is '" + f11[0] + "'");
      if (!ParseDouble(f11[1], &c)) return Status::Corruption(Where(f, ln) + ": CPU cores is '" + f11[1] + "'");
      if (!ParseDouble(f11[4], &pct)) return Status::Corruption(Where(f, ln) + ": CPU usage [%] is '" + f11[4] + "'");
      if (!ParseDouble(f11[5], &memcap)) return Status::Corruption(Where(f, ln) + ": Memory capacity is '" + f11[5] + "'");
      if (!ParseDouble(f11[6], &memuse)) return Status::Corruption(Where(f, ln) + ": Memory usage is '" + f11[6] + "'");
      if (t0 < 0) t0 = ts;
      size_t slot = static_cast<size_t>(std::max(0.0, (ts - t0) / 300.0 + 0.5));
      if (slot * 300.0 >= cfg.duration_s) break;
      // 0 cores with all-zero metrics = not reporting: missing, not idle. Gaps and
      // missing rows hold the last reported value (the guest keeps doing what it did).
      bool missing = (c == 0 && pct == 0 && memuse == 0);
      if (!missing) {
        cores = std::max(cores, static_cast<int>(c));
        mem_cap_gib = std::max(mem_cap_gib, memcap / (1024.0 * 1024.0));
        last_cpu = static_cast<float>(std::clamp(pct, 0.0, 100.0) / 100.0);
        last_mem = static_cast<float>(memuse / (1024.0 * 1024.0));
      }
      while (s.cpu.size() <= slot) { s.cpu.push_back(last_cpu); s.mem.push_back(last_mem); }
      s.cpu[slot] = last_cpu; s.mem[slot] = last_mem;
    }
    if (s.cpu.empty() || cores == 0) continue;
    s.info = TraceInfo(idx, cfg, std::clamp(cores, 1, 8));
    s.info.mem_max_gib = std::clamp(mem_cap_gib, 0.5, 64.0);
    s.info.name = "bb-" + f.stem().string();
    for (auto& c : s.cpu) c *= static_cast<float>(s.info.vcpus);
    for (auto& m : s.mem) m = std::min(m, static_cast<float>(s.info.mem_max_gib));
    Finish(&s, idx++, cfg, true);
    out->guests.push_back(std::move(s));
  }
  if (out->guests.empty()) return Status::NotFound(dir.string() + ": no Bitbrains .csv files");
  return Status::Ok();
}

Status LoadAzure(const fs::path& file, const TraceConfig& cfg, Workload* out) {
  std::ifstream in(file);
  if (!in) return Status::IoError("cannot open " + file.string());
  std::string line;
  std::getline(in, line);
  std::vector<std::string> cols;
  { std::stringstream ss(line); std::string c; while (std::getline(ss, c, ',')) cols.push_back(c); }
  if (cols.size() < 2 || cols[0].find("step") == std::string::npos)
    return Status::Corruption(Where(file, 1) + ": header must start with 'step'");
  std::vector<size_t> pick;
  { std::vector<size_t> all; for (size_t i = 1; i < cols.size(); ++i) all.push_back(i); pick = Stride(all, cfg.guests); }
  static const int kVcpus[] = {1, 2, 2, 4};
  std::vector<GuestSeries> gs(pick.size());
  for (size_t k = 0; k < pick.size(); ++k) {
    gs[k].info = TraceInfo(static_cast<int>(k), cfg, kVcpus[k % 4]);
    gs[k].info.name = "azure-" + cols[pick[k]];
    gs[k].source = "azure:" + file.filename().string() + ":" + cols[pick[k]];
    gs[k].step_s = 300;
  }
  size_t ln = 1;
  while (std::getline(in, line) && (ln - 1) * 300.0 < cfg.duration_s) {
    ++ln;
    std::vector<std::string> f;
    { std::stringstream ss(line); std::string c; while (std::getline(ss, c, ',')) f.push_back(c); }
    if (f.size() != cols.size())
      return Status::Corruption(Where(file, ln) + ": " + std::to_string(f.size()) +
                                " fields, header has " + std::to_string(cols.size()));
    for (size_t k = 0; k < pick.size(); ++k) {
      double v;
      if (!ParseDouble(f[pick[k]], &v))
        return Status::Corruption(Where(file, ln) + ": column " + cols[pick[k]] + " is '" + f[pick[k]] + "'");
      gs[k].cpu.push_back(static_cast<float>(std::clamp(v, 0.0, 100.0) / 100.0 * gs[k].info.vcpus));
    }
  }
  for (size_t k = 0; k < gs.size(); ++k) {
    Finish(&gs[k], static_cast<int>(k), cfg, false);
    out->guests.push_back(std::move(gs[k]));
  }
  return Status::Ok();
}

Status LoadAlibaba(const fs::path& file, const TraceConfig& cfg, Workload* out) {
  std::ifstream in(file);
  if (!in) return Status::IoError("cannot open " + file.string());
  // Irregular timestamps: resample to 60 s by averaging the samples in each bin and
  // holding the last value across empty bins.
  struct Acc { std::map<size_t, std::pair<double, double>> sum; std::map<size_t, int> n; };
  std::map<std::string, Acc> hosts;
  std::string line;
  size_t ln = 0;
  while (std::getline(in, line)) {
    ++ln;
    if (line.empty()) continue;
    std::vector<std::string> f;
    { std::stringstream ss(line); std::string c; while (std::getline(ss, c, ',')) f.push_back(c); }
    if (f.size() < 4) return Status::Corruption(Where(file, ln) + ": fewer than 4 fields");
    double ts, cpu, mem;
    if (!ParseDouble(f[1], &ts)) return Status::Corruption(Where(file, ln) + ": time_stamp is '" + f[1] + "'");
    if (!ParseDouble(f[2], &cpu)) return Status::Corruption(Where(file, ln) + ": cpu_util_percent is '" + f[2] + "'");
    if (!ParseDouble(f[3], &mem)) return Status::Corruption(Where(file, ln) + ": mem_util_percent is '" + f[3] + "'");
    if (ts >= cfg.duration_s) continue;
    size_t bin = static_cast<size_t>(ts / 60.0);
    auto& a = hosts[f[0]];
    a.sum[bin].first += cpu; a.sum[bin].second += mem; a.n[bin]++;
  }
  std::vector<std::string> names;
  for (auto& [k, v] : hosts) names.push_back(k);
  static const int kVcpus[] = {1, 2, 2, 4};
  int idx = 0;
  for (const auto& name : Stride(names, cfg.guests)) {
    auto& a = hosts[name];
    GuestSeries s;
    s.info = TraceInfo(idx, cfg, kVcpus[idx % 4]);
    s.info.name = "alibaba-" + name;
    s.source = "alibaba:" + name;
    s.step_s = 60;
    size_t nbins = static_cast<size_t>(std::ceil(cfg.duration_s / 60.0));
    double lc = a.sum.empty() ? 0 : a.sum.begin()->second.first / a.n.begin()->second;
    double lm = a.sum.empty() ? 0 : a.sum.begin()->second.second / a.n.begin()->second;
    for (size_t b = 0; b < nbins; ++b) {
      auto it = a.sum.find(b);
      if (it != a.sum.end()) { lc = it->second.first / a.n[b]; lm = it->second.second / a.n[b]; }
      s.cpu.push_back(static_cast<float>(std::clamp(lc, 0.0, 100.0) / 100.0 * s.info.vcpus));
      s.mem.push_back(static_cast<float>(std::clamp(lm, 0.0, 100.0) / 100.0 * s.info.mem_max_gib));
    }
    Finish(&s, idx++, cfg, true);
    out->guests.push_back(std::move(s));
  }
  return Status::Ok();
}

}  // namespace

Status LoadTraces(const std::string& dir_str, const TraceConfig& cfg, Workload* out) {
  if (cfg.guests < 1) return Status::InvalidArgument("trace: guests must be >= 1");
  fs::path dir(dir_str);
  std::error_code ec;
  if (!fs::exists(dir, ec)) return Status::NotFound("trace directory " + dir_str + " does not exist");
  out->guests.clear();
  if (fs::is_regular_file(dir)) {
    if (dir.filename() == "machine_usage.csv") return LoadAlibaba(dir, cfg, out);
    return Status::InvalidArgument(dir_str + ": give a trace folder, not a file");
  }
  Status s;
  if (fs::exists(dir / "machine_usage.csv")) {
    s = LoadAlibaba(dir / "machine_usage.csv", cfg, out);
  } else if (fs::exists(dir / "microsoft_avg_100.csv")) {
    s = LoadAzure(dir / "microsoft_avg_100.csv", cfg, out);
  } else if (fs::exists(dir / "2013-8") || fs::exists(dir / "2013-7")) {
    return LoadTraces((dir / (fs::exists(dir / "2013-8") ? "2013-8" : "2013-7")).string(), cfg, out);
  } else {
    // A planetlab root holds day folders; a day folder holds 288-line files; a Bitbrains
    // month folder holds .csv files.
    std::vector<fs::path> subdirs;
    for (const auto& e : fs::directory_iterator(dir)) if (e.is_directory()) subdirs.push_back(e.path());
    std::sort(subdirs.begin(), subdirs.end());
    auto files = SortedFiles(dir);
    bool has_csv = std::any_of(files.begin(), files.end(), [](const fs::path& p) { return p.extension() == ".csv"; });
    if (has_csv) {
      s = LoadBitbrains(dir, cfg, out);
    } else if (!subdirs.empty() && fs::exists(dir / "README.txt") &&
               subdirs.front().filename().string().size() == 8) {
      return LoadTraces(subdirs.front().string(), cfg, out);
    } else if (!files.empty() && subdirs.empty()) {
      s = LoadPlanetLab(dir, cfg, out);
    } else if (!subdirs.empty()) {
      std::string names;
      for (auto& d : subdirs) names += " " + d.filename().string();
      return Status::InvalidArgument(dir_str + " holds several datasets (" + names.substr(1) +
                                     "); pass one of them, e.g. " + (dir / subdirs.front().filename()).string());
    } else {
      return Status::NotFound(dir_str + ": no trace files");
    }
  }
  if (!s.ok()) return s;
  if (out->guests.empty()) return Status::NotFound(dir_str + ": no series loaded");
  double dur = 0;
  for (auto& g : out->guests) dur = std::max(dur, g.cpu.size() * g.step_s);
  out->duration_s = std::min(dur, cfg.duration_s);
  return Status::Ok();
}

}  // namespace lull::dom0
