#include "dom0/daemon.h"

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <thread>

#include "dom0/control.h"
#include "dom0/log.h"
#include "dom0/metrics.h"

namespace lull::dom0 {

using nlohmann::json;

Status BuildWorkload(const LulldConfig& cfg, Workload* w) {
  Status s;
  if (cfg.trace.empty()) {
    GeneratorConfig g;
    g.guests = cfg.guests;
    g.duration_s = cfg.days * 86400.0;
    g.seed = cfg.seed;
    g.load = cfg.load;
    s = GenerateBuiltin(g, w);
  } else {
    TraceConfig t;
    t.guests = cfg.guests;
    t.duration_s = cfg.days * 86400.0;
    t.seed = cfg.seed;
    s = LoadTraces(cfg.trace, t, w);
  }
  if (!s.ok()) return s;
  for (const auto& [name, cls] : cfg.guest_class) {
    bool found = false;
    for (auto& g : w->guests) if (g.info.name == name) { g.info.cls = cls; found = true; }
    if (!found) return Status::InvalidArgument("guests." + name + ": no guest of that name in the workload");
  }
  return Status::Ok();
}

Daemon::Daemon(const LulldConfig& cfg, std::unique_ptr<LiveHost> live) : cfg_(cfg), live_(std::move(live)) {}

Status Daemon::Init() {
  if (live_) {
    // Real guests, real time: no workload, tasks come from lullctl task-add.
    hb_ = live_.get();
    tasks_ = std::make_unique<TaskQueue>();
    engine_ = std::make_unique<Engine>(hb_, tasks_.get(), cfg_.engine, nullptr);
    steps_total_ = INT64_MAX;
    return engine_->Start();
  }
  Status s = BuildWorkload(cfg_, &w_);
  if (!s.ok()) return s;
  SimHostConfig hc;
  hc.pcpus = cfg_.pcpus > 0 ? cfg_.pcpus : 16;
  hc.mem_gib = cfg_.mem_gib;
  hc.step_s = cfg_.step_s;
  host_ = std::make_unique<SimHost>(hc, &w_);
  hb_ = host_.get();
  tasks_ = std::make_unique<TaskQueue>();
  std::vector<Task> ts;
  GenerateTasks(static_cast<int>(w_.guests.size()), w_.duration_s, cfg_.seed, &ts);
  for (auto& t : ts) if (!(s = tasks_->Add(t)).ok()) return s;
  future_ = std::make_unique<WorkloadFuture>(&w_);
  engine_ = std::make_unique<Engine>(host_.get(), tasks_.get(), cfg_.engine, future_.get());
  steps_total_ = static_cast<int64_t>(w_.duration_s / cfg_.step_s);
  return engine_->Start();
}

void Daemon::StepOnce() {
  std::lock_guard<std::mutex> l(mu_);
  if (live_) {
    Status s = live_->Sample();
    if (!s.ok()) Log(LogLevel::kError, "sampling the host: %s", s.ToString().c_str());
    engine_->Poll();
    return;
  }
  if (host_->StepIndex() >= steps_total_) return;
  host_->Step();
  engine_->Poll();
}

void Daemon::Deliver(const PressureEvent& ev) {
  std::lock_guard<std::mutex> l(mu_);
  if (!engine_) return;
  engine_->OnPressure(ev);
  delivered_.fetch_add(1);
}

Status Daemon::Run(const std::atomic<bool>& stop, bool exit_at_end) {
  auto t0 = std::chrono::steady_clock::now();
  if (live_) {
    // Real time: one sample every step_s, on a fixed grid (a slow step is not repeated).
    const auto step = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(cfg_.step_s));
    auto due = t0;
    while (!stop.load()) {
      StepOnce();
      due += step;
      auto now = std::chrono::steady_clock::now();
      if (due < now) due = now;
      std::this_thread::sleep_until(due);
    }
    return Status::Ok();
  }
  bool ended = false;
  while (!stop.load()) {
    if (host_->StepIndex() < steps_total_) {
      StepOnce();
      if (cfg_.speed > 0) {
        // Pace: simulated time runs `speed` times faster than the wall clock.
        auto due = t0 + std::chrono::duration<double>(host_->StepIndex() * cfg_.step_s / cfg_.speed);
        std::this_thread::sleep_until(due);
      }
    } else {
      if (!ended) Log(LogLevel::kInfo, "workload ended after %.0f simulated seconds", w_.duration_s);
      ended = true;
      if (exit_at_end) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  return Status::Ok();
}

Status Daemon::Shutdown(size_t* n) {
  std::lock_guard<std::mutex> l(mu_);
  if (n) *n = engine_->Leases().size();
  return engine_->RestoreAll();
}

std::string Daemon::Metrics() {
  std::lock_guard<std::mutex> l(mu_);
  return RenderMetrics(*engine_, host_.get());  // host-specific series: simulated host only
}

json Daemon::GuestJson(const GuestView& g) const {
  return json{{"domid", g.info.domid}, {"name", g.info.name}, {"vcpus", g.info.vcpus},
              {"mem_max_gib", g.info.mem_max_gib}, {"class", PriorityClassName(g.info.cls)},
              {"cpu_demand", g.cpu_demand}, {"mem_used_gib", g.mem_used_gib},
              {"lent_cpus", g.lent_cpus}, {"lent_mem_gib", g.lent_mem_gib}, {"threshold", g.threshold},
              {"cpu_pred", {{"mean", g.cpu.mean}, {"p50", g.cpu.p50}, {"p90", g.cpu.p90}, {"p95", g.cpu.p95},
                            {"p99", g.cpu.p99}, {"confidence", g.cpu.confidence}}},
              {"mem_pred", {{"p50", g.mem.p50}, {"p95", g.mem.p95}, {"p99", g.mem.p99}}},
              {"leased_periods", g.leased_periods}, {"violations", g.violations},
              {"cpu_mae", g.cpu_mae}, {"p95_exceed_rate", g.p95_exceed_rate}};
}

namespace {

// Xen's domain ids run below DOMID_FIRST_RESERVED (0x7FF0); the ids above it are special
// (DOMID_SELF, DOMID_IO, ...) and never a guest. Named here so the simulated host, which
// includes no Xen header, refuses the same ids.
constexpr uint64_t kDomIdMax = 0x7FEF;

// A request value quoted in an error, cut so a megabyte of junk does not come back.
std::string Quote(const json& v) {
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  return s.size() > 40 ? s.substr(0, 40) + "..." : s;
}

std::string Num(double x) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", x);
  return b;
}

// The request's fields, each typed and bounded where it is read. A client is not trusted:
// `lullctl task-add --deadline inf` arrives as JSON null, and a field of the wrong type
// must come back as an error naming it, not throw out of the control thread. Absent
// fields take `dflt`.
Status NumberField(const json& req, const char* key, double dflt, double lo, double hi, double* out) {
  auto it = req.find(key);
  if (it == req.end()) { *out = dflt; return Status::Ok(); }
  if (it->is_number()) {
    const double v = it->get<double>();
    if (v >= lo && v <= hi) { *out = v; return Status::Ok(); }
  }
  return Status::InvalidArgument(std::string("\"") + key + "\" must be a number in [" + Num(lo) + ", " +
                                 Num(hi) + "], got " + Quote(*it));
}

Status CountField(const json& req, const char* key, uint64_t dflt, uint64_t lo, uint64_t hi, uint64_t* out) {
  auto it = req.find(key);
  if (it == req.end()) { *out = dflt; return Status::Ok(); }
  if (it->is_number_unsigned() || (it->is_number_integer() && it->get<int64_t>() >= 0)) {
    const uint64_t v = it->get<uint64_t>();
    if (v >= lo && v <= hi) { *out = v; return Status::Ok(); }
  }
  return Status::InvalidArgument(std::string("\"") + key + "\" must be a whole number in [" +
                                 std::to_string(lo) + ", " + std::to_string(hi) + "], got " + Quote(*it));
}

Status StringField(const json& req, const char* key, const std::string& dflt, std::string* out) {
  auto it = req.find(key);
  if (it == req.end()) { *out = dflt; return Status::Ok(); }
  if (it->is_string()) { *out = it->get<std::string>(); return Status::Ok(); }
  return Status::InvalidArgument(std::string("\"") + key + "\" must be a string, got " + Quote(*it));
}

}  // namespace

Status Daemon::ResolveDomain(const json& v, DomId* d) const {
  const std::string range = " is not a domain id (0.." + std::to_string(kDomIdMax) + ")";
  if (v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0)) {
    if (v.get<uint64_t>() > kDomIdMax) return Status::InvalidArgument(Quote(v) + range);
    *d = static_cast<DomId>(v.get<uint64_t>());
    return Status::Ok();
  }
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    for (const auto& g : engine_->Guests()) if (g.info.name == s) { *d = g.info.domid; return Status::Ok(); }
    uint64_t x = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), x);
    if (s.empty() || end != s.data() + s.size()) return Status::NotFound("no domain named " + Quote(v));
    if (ec != std::errc() || x > kDomIdMax) return Status::InvalidArgument(Quote(v) + range);
    *d = static_cast<DomId>(x);
    return Status::Ok();
  }
  return Status::InvalidArgument("\"domain\" must be a domain id or name, got " + Quote(v));
}

json Daemon::Handle(const json& req) {
  std::lock_guard<std::mutex> l(mu_);
  auto err = [](const Status& s) { return json{{"ok", false}, {"error", s.ToString()}}; };
  if (!req.is_object() || !req.contains("cmd") || !req["cmd"].is_string())
    return err(Status::InvalidArgument("bad request: expected a JSON object with a string \"cmd\""));
  const std::string cmd = req["cmd"].get<std::string>();
  const uint64_t now = hb_->NowNs();
  if (cmd == "list" || cmd == "top") {
    json gs = json::array();
    auto views = engine_->Guests();
    if (cmd == "top")
      std::sort(views.begin(), views.end(), [](auto& a, auto& b) { return a.cpu_demand > b.cpu_demand; });
    for (const auto& g : views) gs.push_back(GuestJson(g));
    const auto& st = engine_->stats();
    return json{{"ok", true}, {"time_s", now / 1e9}, {"policy", PolicyName(cfg_.engine.policy)},
                {"pcpus", hb_->PhysicalCpus()}, {"leases", engine_->Leases().size()},
                {"handed_cpu_s", st.handed_cpu_s}, {"forced_revocations", st.forced_revocations},
                {"host_load", st.host_load}, {"host_pressure_events", st.host_pressure_events},
                {"guests_added", st.guests_added}, {"guests_left", st.guests_left},
                {"leases_dropped", st.leases_dropped}, {"busy_hints", st.busy_hints}, {"guests", gs}};
  }
  if (cmd == "predict") {
    DomId d;
    Status s = ResolveDomain(req.value("domain", json()), &d);
    if (!s.ok()) return err(s);
    GuestView g;
    if (!(s = engine_->Guest(d, &g)).ok()) return err(s);
    return json{{"ok", true}, {"guest", GuestJson(g)}, {"window_s", cfg_.engine.window_periods * cfg_.engine.control_period_s}};
  }
  if (cmd == "tasks") {
    json ts = json::array();
    for (const auto& t : tasks_->all()) {
      if (t.arrival_ns > now) continue;  // not yet arrived in simulated time
      ts.push_back({{"id", t.id}, {"kind", TaskKindName(t.kind)}, {"target", t.target}, {"cpu_s", t.cpu_s},
                    {"done_cpu_s", t.done_cpu_s}, {"mem_gib", t.mem_gib}, {"priority", t.priority},
                    {"leases", t.leases}, {"deadline_s", t.deadline_ns / 1e9}, {"done", t.completed_ns != 0}});
    }
    return json{{"ok", true}, {"tasks", ts}};
  }
  if (cmd == "task-add") {
    Task t;
    std::string kind;
    double deadline_s = 0;
    uint64_t max_cpus = 0;
    Status s = StringField(req, "kind", "", &kind);
    if (s.ok() && !ParseTaskKind(kind, &t.kind))
      s = Status::InvalidArgument("kind '" + kind + "': must be backup, snapshot, migration or scrub");
    if (s.ok() && !req.contains("cpu_s")) s = Status::InvalidArgument("\"cpu_s\" (number) is required");
    if (s.ok()) s = NumberField(req, "cpu_s", 0, 0, kMaxRequestSeconds, &t.cpu_s);
    if (s.ok()) s = NumberField(req, "mem_gib", 0, 0, kMaxRequestGiB, &t.mem_gib);
    if (s.ok()) s = CountField(req, "max_cpus", 1, 1, kMaxRequestCpus, &max_cpus);
    if (s.ok()) s = NumberField(req, "deadline_s", 3600, 0, kMaxRequestSeconds, &deadline_s);
    if (s.ok() && !(deadline_s > 0)) s = Status::InvalidArgument("\"deadline_s\" must be > 0");
    if (s.ok()) s = StringField(req, "target", "host", &t.target);
    if (!s.ok()) return err(s);
    t.max_cpus = static_cast<int>(max_cpus);
    t.arrival_ns = now;
    t.deadline_ns = now + static_cast<uint64_t>(deadline_s * 1e9);
    uint64_t id;
    if (!(s = tasks_->Add(t, &id)).ok()) return err(s);
    return json{{"ok", true}, {"id", id}};
  }
  if (cmd == "lend") {
    DomId d;
    uint64_t task = 0;
    double cpus = 0, mem = 0;
    Status s = ResolveDomain(req.value("domain", json()), &d);
    if (s.ok()) s = CountField(req, "task", 0, 0, UINT64_MAX, &task);
    if (s.ok()) s = NumberField(req, "cpus", 0, 0, kMaxRequestCpus, &cpus);
    if (s.ok()) s = NumberField(req, "mem_gib", 0, 0, kMaxRequestGiB, &mem);
    if (!s.ok()) return err(s);
    uint64_t lease;
    if (!(s = engine_->Lend(d, task, cpus, mem, &lease)).ok()) return err(s);
    return json{{"ok", true}, {"lease", lease}};
  }
  if (cmd == "revoke") {
    if (req.contains("lease")) {
      uint64_t lease = 0;
      Status s = CountField(req, "lease", 0, 0, UINT64_MAX, &lease);
      if (s.ok()) s = engine_->Revoke(lease);
      if (!s.ok()) return err(s);
      return json{{"ok", true}, {"revoked", 1}};
    }
    DomId d;
    Status s = ResolveDomain(req.value("domain", json()), &d);
    if (!s.ok()) return err(s);
    int n = 0;
    for (const auto& l : engine_->Leases())
      if (l.donor == d && engine_->Revoke(l.id).ok()) ++n;
    return json{{"ok", true}, {"revoked", n}};
  }
  if (cmd == "leases") {
    json ls = json::array();
    for (const auto& l : engine_->Leases())
      ls.push_back({{"id", l.id}, {"donor", l.donor}, {"task", l.task}, {"cpus", l.cpus}, {"mem_gib", l.mem_gib},
                    {"expires_s", l.expires_ns / 1e9}, {"manual", l.manual}});
    return json{{"ok", true}, {"leases", ls}};
  }
  if (cmd == "config") return json{{"ok", true}, {"toml", ConfigToToml(cfg_)}};
  return err(Status::InvalidArgument("unknown command '" + cmd +
                                     "' (list, top, predict, tasks, task-add, lend, revoke, leases, config)"));
}

}  // namespace lull::dom0
