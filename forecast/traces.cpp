#include "forecast/traces.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

namespace lull::forecast {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string Trim(std::string_view s) {
  size_t a = 0, b = s.size();
  while (a < b && (s[a] == ' ' || s[a] == '\t' || s[a] == '\r')) ++a;
  while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t' || s[b - 1] == '\r')) --b;
  return std::string(s.substr(a, b - a));
}

// Parses a number; on failure an InvalidArgument naming file, line and column.
Status ParseNum(const std::string& field, const std::string& file, size_t line,
                const std::string& column, double* out) {
  const std::string f = Trim(field);
  char* end = nullptr;
  *out = std::strtod(f.c_str(), &end);
  if (f.empty() || end != f.c_str() + f.size())
    return Status::InvalidArgument(file + " line " + std::to_string(line) + ": " + column +
                                   " is '" + f + "', not a number");
  return Status::Ok();
}

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream is(s);
  while (std::getline(is, cur, sep)) out.push_back(cur);
  if (!s.empty() && s.back() == sep) out.emplace_back();
  return out;
}

std::string Base(const std::string& path) {
  return std::filesystem::path(path).filename().string();
}

}  // namespace

std::vector<double> Resample(const std::vector<double>& t, const std::vector<double>& v,
                             double step, ResampleStats* stats) {
  std::vector<double> sum, cnt;
  if (t.empty() || t.size() != v.size() || !(step > 0)) return {};
  const double t0 = t[0] - step / 2;
  double last = -std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < t.size(); ++i) {
    if (!(t[i] > last)) {  // out of order or duplicate: drop, count
      if (stats) ++stats->dropped_out_of_order;
      continue;
    }
    last = t[i];
    if (std::isnan(v[i])) continue;
    const size_t k = static_cast<size_t>((t[i] - t0) / step);
    if (k >= sum.size()) sum.resize(k + 1, 0.0), cnt.resize(k + 1, 0.0);
    sum[k] += v[i];
    cnt[k] += 1;
  }
  for (size_t k = 0; k < sum.size(); ++k) {
    if (cnt[k] > 0) sum[k] /= cnt[k];
    else {
      sum[k] = kNaN;
      if (stats) ++stats->empty_steps;
    }
  }
  return sum;
}

Status LoadPlanetLabFile(const std::string& path, Series* out) {
  std::ifstream f(path);
  if (!f) return Status::NotFound("PlanetLab file '" + path + "' cannot be opened");
  out->dataset = "planetlab";
  out->name = Base(path);
  out->step_seconds = 300;
  out->values.clear();
  std::string line;
  size_t ln = 0;
  while (std::getline(f, line)) {
    ++ln;
    if (Trim(line).empty()) continue;
    double v;
    Status st = ParseNum(line, "planetlab " + out->name, ln, "CPU %", &v);
    if (!st.ok()) return st;
    if (v < 0 || v > 100)
      return Status::InvalidArgument("planetlab " + out->name + " line " + std::to_string(ln) +
                                     ": CPU % " + Trim(line) + " outside 0..100");
    out->values.push_back(v / 100.0);
  }
  if (out->values.empty()) return Status::InvalidArgument("planetlab " + out->name + " is empty");
  return Status::Ok();
}

Status LoadPlanetLabDay(const std::string& dir, size_t max_files, std::vector<Series>* out) {
  std::error_code ec;
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec))
    if (e.is_regular_file() && e.path().filename() != "README.txt") files.push_back(e.path().string());
  if (ec) return Status::NotFound("PlanetLab day folder '" + dir + "': " + ec.message());
  std::sort(files.begin(), files.end());
  const size_t stride = max_files && files.size() > max_files ? files.size() / max_files : 1;
  for (size_t i = 0; i < files.size() && (!max_files || out->size() < max_files); i += stride) {
    Series s;
    Status st = LoadPlanetLabFile(files[i], &s);
    if (!st.ok()) return st;
    out->push_back(std::move(s));
  }
  return Status::Ok();
}

Status LoadBitbrainsFile(const std::string& path, Series* cpu, Series* mem, ResampleStats* stats) {
  std::ifstream f(path);
  if (!f) return Status::NotFound("Bitbrains file '" + path + "' cannot be opened");
  const std::string name = "bitbrains " + Base(path);
  std::string line;
  size_t ln = 1;
  if (!std::getline(f, line) || line.find("CPU cores") == std::string::npos)
    return Status::InvalidArgument(name + ": first line is not the expected header");
  std::vector<double> t, c, m;
  static const char* kCols[] = {"Timestamp", "CPU cores", "CPU capacity provisioned [MHZ]",
                                "CPU usage [MHZ]", "CPU usage [%]",
                                "Memory capacity provisioned [KB]", "Memory usage [KB]"};
  while (std::getline(f, line)) {
    ++ln;
    if (Trim(line).empty()) continue;
    const auto fields = Split(line, ';');
    if (fields.size() < 7)
      return Status::InvalidArgument(name + " line " + std::to_string(ln) + ": " +
                                     std::to_string(fields.size()) + " fields, expected 11");
    double v[7];
    for (int k = 0; k < 7; ++k) {
      Status st = ParseNum(fields[k], name, ln, kCols[k], &v[k]);
      if (!st.ok()) return st;
    }
    t.push_back(v[0]);
    // 0 cores or 0 capacity: the VM was not reporting; missing, not idle.
    const bool reporting = v[1] > 0 && v[2] > 0;
    c.push_back(reporting && v[4] >= 0 ? v[4] / 100.0 : kNaN);
    m.push_back(reporting && v[5] > 0 && v[6] >= 0 ? v[6] / v[5] : kNaN);
  }
  if (t.empty()) return Status::InvalidArgument(name + " has no data rows");
  cpu->dataset = "bitbrains_cpu";
  mem->dataset = "bitbrains_mem";
  cpu->name = mem->name = Base(path);
  cpu->step_seconds = mem->step_seconds = 300;
  cpu->values = Resample(t, c, 300, stats);
  mem->values = Resample(t, m, 300, nullptr);
  return Status::Ok();
}

Status LoadAzureCsv(const std::string& path, size_t max_columns, std::vector<Series>* out) {
  std::ifstream f(path);
  if (!f) return Status::NotFound("Azure CSV '" + path + "' cannot be opened");
  const std::string name = "azure " + Base(path);
  std::string line;
  if (!std::getline(f, line)) return Status::InvalidArgument(name + " is empty");
  auto header = Split(line, ',');
  if (header.size() < 2 || Trim(header[0]) != "step")
    return Status::InvalidArgument(name + ": header must start with 'step'");
  size_t ncol = header.size() - 1;
  if (max_columns) ncol = std::min(ncol, max_columns);
  const size_t first = out->size();
  for (size_t k = 0; k < ncol; ++k) {
    Series s;
    s.dataset = "azure";
    s.name = Trim(header[k + 1]);
    out->push_back(std::move(s));
  }
  size_t ln = 1;
  while (std::getline(f, line)) {
    ++ln;
    if (Trim(line).empty()) continue;
    const auto fields = Split(line, ',');
    if (fields.size() < ncol + 1)
      return Status::InvalidArgument(name + " line " + std::to_string(ln) + ": " +
                                     std::to_string(fields.size()) + " fields, expected " +
                                     std::to_string(header.size()));
    for (size_t k = 0; k < ncol; ++k) {
      double v = kNaN;
      if (!Trim(fields[k + 1]).empty() && Trim(fields[k + 1]) != "NA") {
        Status st = ParseNum(fields[k + 1], name, ln, "VM " + (*out)[first + k].name, &v);
        if (!st.ok()) return st;
        v /= 100.0;
      }
      (*out)[first + k].values.push_back(v);
    }
  }
  return Status::Ok();
}

Status LoadAlibabaUsage(const std::string& path, int step_seconds, size_t min_steps,
                        std::vector<Series>* cpu, std::vector<Series>* mem,
                        ResampleStats* stats) {
  std::ifstream f(path);
  if (!f) return Status::NotFound("Alibaba machine_usage '" + path + "' cannot be opened");
  struct Raw { std::vector<double> t, c, m; };
  std::map<std::string, Raw> by;
  std::string line;
  size_t ln = 0;
  const std::string name = "alibaba " + Base(path);
  while (std::getline(f, line)) {
    ++ln;
    if (Trim(line).empty()) continue;
    const auto fields = Split(line, ',');
    if (fields.size() < 4)
      return Status::InvalidArgument(name + " line " + std::to_string(ln) + ": " +
                                     std::to_string(fields.size()) + " fields, expected 9");
    double t, c, m;
    Status st = ParseNum(fields[1], name, ln, "time_stamp", &t);
    if (st.ok()) st = ParseNum(fields[2], name, ln, "cpu_util_percent", &c);
    if (st.ok()) st = ParseNum(fields[3], name, ln, "mem_util_percent", &m);
    if (!st.ok()) return st;
    Raw& r = by[Trim(fields[0])];
    r.t.push_back(t);
    // Out-of-range percentages are invalid readings: missing.
    r.c.push_back(c >= 0 && c <= 100 ? c / 100 : kNaN);
    r.m.push_back(m >= 0 && m <= 100 ? m / 100 : kNaN);
  }
  for (auto& [id, r] : by) {
    // Rows of one machine are in time order in the file; Resample drops any that are not.
    Series sc, sm;
    sc.dataset = "alibaba_cpu";
    sm.dataset = "alibaba_mem";
    sc.name = sm.name = id;
    sc.step_seconds = sm.step_seconds = step_seconds;
    sc.values = Resample(r.t, r.c, step_seconds, stats);
    sm.values = Resample(r.t, r.m, step_seconds, nullptr);
    if (sc.values.size() < min_steps) continue;
    cpu->push_back(std::move(sc));
    mem->push_back(std::move(sm));
  }
  return Status::Ok();
}

}  // namespace lull::forecast
