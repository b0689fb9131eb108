#include "dom0/config.h"

#include <charconv>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include <toml++/toml.h>

namespace lull::dom0 {

namespace {

std::string At(const std::string& name, const toml::node& n) {
  return name + ":" + std::to_string(n.source().begin.line);
}

// One known key: how to read it into the config, and for a number its range and how to
// read it back (ValidateConfig and lulld's flags check the same range as the file).
struct Field {
  const char* key;
  std::function<Status(const toml::node&, const std::string& where, LulldConfig*)> set;
  bool numeric = false;
  double lo = 0, hi = 0;
  std::function<double(const LulldConfig&)> get = nullptr;
};

template <typename T>
Status GetNum(const toml::node& n, const std::string& where, const char* key, T* out, double lo, double hi) {
  double v;
  if (auto i = n.value_exact<int64_t>()) v = static_cast<double>(*i);
  else if (auto d = n.value_exact<double>()) v = *d;
  else return Status::InvalidArgument(where + ": " + key + " must be a number");
  if (!(v >= lo && v <= hi)) {
    std::ostringstream o;
    o << where << ": " << key << " = " << v << ": must be in [" << lo << ", " << hi << "]";
    return Status::InvalidArgument(o.str());
  }
  if constexpr (std::is_integral_v<T>) {
    if (v != static_cast<double>(static_cast<int64_t>(v)))
      return Status::InvalidArgument(where + ": " + key + " must be an integer");
  }
  *out = static_cast<T>(v);
  return Status::Ok();
}

Status GetStr(const toml::node& n, const std::string& where, const char* key, std::string* out) {
  auto s = n.value_exact<std::string>();
  if (!s) return Status::InvalidArgument(where + ": " + key + " must be a string");
  *out = *s;
  return Status::Ok();
}

#define NUM(sec, k, member, lo, hi) \
  {sec "." #k, [](const toml::node& n, const std::string& w, LulldConfig* c) { return GetNum(n, w, sec "." #k, &c->member, lo, hi); }, \
   true, lo, hi, [](const LulldConfig& c) { return static_cast<double>(c.member); }}
#define STR(sec, k, member) \
  {sec "." #k, [](const toml::node& n, const std::string& w, LulldConfig* c) { return GetStr(n, w, sec "." #k, &c->member); }}

const std::vector<Field>& Fields() {
  static const std::vector<Field> f = {
      STR("host", backend, backend),
      NUM("host", pcpus, pcpus, 0, 4096),
      NUM("host", mem_gib, mem_gib, 1, 1 << 20),
      NUM("host", step_s, step_s, 0.01, 60),
      STR("host", task_domain, task_domain),
      STR("host", undo_journal, undo_journal),
      NUM("host", warmup_s, warmup_s, 0, 86400),
      NUM("host", host_pressure_samples, host_pressure_samples, 0, 1000),
      STR("workload", trace, trace),
      NUM("workload", guests, guests, 1, 100000),
      NUM("workload", days, days, 0.01, 366),
      NUM("workload", seed, seed, 0, 1e18),
      NUM("workload", load, load, 0.01, 1.5),
      {"engine.policy", [](const toml::node& n, const std::string& w, LulldConfig* c) {
         std::string s;
         Status st = GetStr(n, w, "engine.policy", &s);
         if (!st.ok()) return st;
         if (!ParsePolicy(s, &c->engine.policy))
           return Status::InvalidArgument(w + ": engine.policy = \"" + s + "\": must be none, reactive, lull or oracle");
         return Status::Ok();
       }},
      NUM("engine", control_period_s, engine.control_period_s, 0.05, 3600),
      NUM("engine", lease_period_s, engine.lease_period_s, 1, 86400),
      NUM("engine", window_periods, engine.window_periods, 1, 12),
      NUM("engine", min_lend_cpus, engine.min_lend_cpus, 0.05, 64),
      NUM("engine", mem_guard_gib, engine.mem_guard_gib, 0, 64),
      NUM("engine", cpu_margin, engine.cpu_margin, 0, 0.5),
      NUM("engine", mem_margin, engine.mem_margin, 0, 0.5),
      NUM("engine", host_reserve_cpus, engine.host_reserve_cpus, 0, 4096),
      NUM("engine", target_violation_rate, engine.tuner.target_violation_rate, 0.001, 0.5),
      STR("daemon", socket, socket),
      NUM("daemon", socket_uid, socket_uid, 0, 4294967294.0),
      STR("daemon", metrics_listen, metrics_listen),
      NUM("daemon", speed, speed, 0, 1e9),
      STR("daemon", log, log),
      STR("daemon", out_dir, out_dir),
  };
  return f;
}
#undef NUM
#undef STR

}  // namespace

bool ConfigRange(const std::string& key, double* lo, double* hi) {
  for (const auto& f : Fields()) {
    if (f.numeric && key == f.key) {
      *lo = f.lo;
      *hi = f.hi;
      return true;
    }
  }
  return false;
}

Status ParseHostPort(const std::string& listen, std::string* host, int* port) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) return Status::InvalidArgument("not host:port");
  const std::string p = listen.substr(colon + 1);
  int v = -1;
  auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
  if (p.empty() || ec != std::errc() || end != p.data() + p.size() || v < 0 || v > 65535)
    return Status::InvalidArgument("port '" + p + "' is not a number in 0..65535");
  *host = listen.substr(0, colon);
  *port = v;
  return Status::Ok();
}

Status ValidateConfig(const LulldConfig& c) {
  // Values set by flags or by code meet the ranges a file's values meet.
  for (const auto& f : Fields()) {
    if (!f.numeric) continue;
    const double v = f.get(c);
    if (!(v >= f.lo && v <= f.hi)) {
      std::ostringstream o;
      o << f.key << " = " << v << ": must be in [" << f.lo << ", " << f.hi << "]";
      return Status::InvalidArgument(o.str());
    }
  }
  if (c.backend != "sim" && c.backend != "xen")
    return Status::InvalidArgument("host.backend = \"" + c.backend + "\": must be \"sim\" or \"xen\"");
  if (c.backend == "xen" && c.task_domain.empty())
    return Status::InvalidArgument("host.task_domain must name the management-task domain when host.backend = \"xen\"");
  if (c.backend == "xen" && c.undo_journal.empty())
    return Status::InvalidArgument("host.undo_journal must not be empty");
  if (c.backend == "xen" && c.engine.policy == Policy::kOracle)
    return Status::InvalidArgument("engine.policy = \"oracle\" needs the future: simulated host only");
  if (c.engine.lease_period_s < c.engine.control_period_s)
    return Status::InvalidArgument("engine.lease_period_s = " + std::to_string(c.engine.lease_period_s) +
                                   ": must be >= engine.control_period_s (" +
                                   std::to_string(c.engine.control_period_s) + ")");
  if (c.log != "stderr" && c.log != "journal")
    return Status::InvalidArgument("daemon.log = \"" + c.log + "\": must be \"stderr\" or \"journal\"");
  if (c.socket.empty()) return Status::InvalidArgument("daemon.socket must not be empty");
  if (!c.metrics_listen.empty()) {
    std::string host;
    int port = 0;
    if (Status s = ParseHostPort(c.metrics_listen, &host, &port); !s.ok())
      return Status::InvalidArgument("daemon.metrics_listen = \"" + c.metrics_listen + "\": " + s.message());
  }
  if (c.engine.control_period_s < c.step_s)
    return Status::InvalidArgument("engine.control_period_s must be >= host.step_s");
  return Status::Ok();
}

Status ParseConfig(const std::string& text, const std::string& name, LulldConfig* cfg) {
  toml::table root;
  try {
    root = toml::parse(text, name);
  } catch (const toml::parse_error& e) {
    return Status::InvalidArgument(name + ":" + std::to_string(e.source().begin.line) + ": " +
                                   std::string(e.description()));
  }
  static const std::set<std::string> kSections = {"host", "workload", "engine", "daemon", "guests"};
  for (auto& [k, v] : root) {
    std::string key(k.str());
    if (!kSections.count(key))
      return Status::InvalidArgument(At(name, v) + ": unknown section [" + key +
                                     "] (known: host, workload, engine, daemon, guests)");
    const toml::table* t = v.as_table();
    if (!t) return Status::InvalidArgument(At(name, v) + ": " + key + " must be a table");
    for (auto& [k2, v2] : *t) {
      std::string full = key + "." + std::string(k2.str());
      if (key == "guests") {
        const toml::table* g = v2.as_table();
        if (!g) return Status::InvalidArgument(At(name, v2) + ": " + full + " must be a table");
        for (auto& [k3, v3] : *g) {
          std::string gk = full + "." + std::string(k3.str());
          if (k3.str() != "class")
            return Status::InvalidArgument(At(name, v3) + ": unknown key " + gk + " (known: class)");
          std::string cls;
          Status s = GetStr(v3, At(name, v3), gk.c_str(), &cls);
          if (!s.ok()) return s;
          PriorityClass pc;
          if (!ParsePriorityClass(cls, &pc))
            return Status::InvalidArgument(At(name, v3) + ": " + gk + " = \"" + cls +
                                           "\": must be critical, standard or best-effort");
          cfg->guest_class[std::string(k2.str())] = pc;
        }
        continue;
      }
      const Field* f = nullptr;
      for (const auto& x : Fields()) if (full == x.key) f = &x;
      if (!f) return Status::InvalidArgument(At(name, v2) + ": unknown key " + full);
      Status s = f->set(v2, At(name, v2), cfg);
      if (!s.ok()) return s;
    }
  }
  Status s = ValidateConfig(*cfg);
  if (!s.ok()) {
    // Name the line of the key the rule is about when it came from the file.
    std::string msg = s.message();
    std::string key = msg.substr(0, msg.find_first_of(" :"));
    auto dot = key.find('.');
    if (dot != std::string::npos) {
      if (auto* n = root.at_path(key).node()) return Status::InvalidArgument(At(name, *n) + ": " + msg);
    }
    return Status::InvalidArgument(name + ": " + msg);
  }
  return Status::Ok();
}

Status LoadConfigFile(const std::string& path, LulldConfig* cfg) {
  std::ifstream in(path);
  if (!in) return Status::IoError("cannot read config file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseConfig(ss.str(), path, cfg);
}

std::string ConfigToToml(const LulldConfig& c) {
  std::ostringstream o;
  o << "[host]\nbackend = \"" << c.backend << "\"\npcpus = " << c.pcpus << "\nmem_gib = " << c.mem_gib
    << "\nstep_s = " << c.step_s << "\ntask_domain = \"" << c.task_domain << "\"\nundo_journal = \"" << c.undo_journal
    << "\"\nwarmup_s = " << c.warmup_s << "\nhost_pressure_samples = " << c.host_pressure_samples
    << "\n\n[workload]\ntrace = \"" << c.trace << "\"\nguests = " << c.guests
    << "\ndays = " << c.days << "\nseed = " << c.seed << "\nload = " << c.load << "\n\n[engine]\npolicy = \""
    << PolicyName(c.engine.policy) << "\"\ncontrol_period_s = " << c.engine.control_period_s
    << "\nlease_period_s = " << c.engine.lease_period_s << "\nwindow_periods = " << c.engine.window_periods
    << "\nmin_lend_cpus = " << c.engine.min_lend_cpus << "\nmem_guard_gib = " << c.engine.mem_guard_gib
    << "\ncpu_margin = " << c.engine.cpu_margin << "\nmem_margin = " << c.engine.mem_margin
    << "\nhost_reserve_cpus = " << c.engine.host_reserve_cpus
    << "\ntarget_violation_rate = " << c.engine.tuner.target_violation_rate << "\n\n[daemon]\nsocket = \""
    << c.socket << "\"\nsocket_uid = " << c.socket_uid << "\nmetrics_listen = \"" << c.metrics_listen
    << "\"\nspeed = " << c.speed << "\nlog = \"" << c.log << "\"\nout_dir = \"" << c.out_dir << "\"\n";
  for (const auto& [g, cls] : c.guest_class)
    o << "\n[guests." << g << "]\nclass = \"" << PriorityClassName(cls) << "\"\n";
  return o.str();
}

}  // namespace lull::dom0
