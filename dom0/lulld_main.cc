// lulld: the lull dom0 daemon.
//
//   lulld [--config FILE] [flags]            run as a daemon on the simulated host
//   lulld --host xen --task-domain D [flags] run as a daemon on this Xen host (dom0)
//   lulld --compare [flags]                  the main job: four policies, one workload,
//                                            a table and a CSV for the plot
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include <CLI/CLI.hpp>

#include "dom0/cli_checks.h"
#include "dom0/config.h"
#include "dom0/control.h"
#include "dom0/daemon.h"
#include "dom0/harness.h"
#include "dom0/log.h"
#include "dom0/metrics.h"
#include "dom0/xen_host.h"
#include "dom0/xen_ring.h"

using namespace lull::dom0;

namespace {

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop.store(true); }

int Fail(const lull::Status& s) {
  Log(LogLevel::kError, "%s", s.ToString().c_str());
  return 1;
}

// The main job: every policy on the same workload, then the table, CSV and targets.
int Compare(const LulldConfig& cfg, bool progress) {
  Workload w;
  lull::Status s = BuildWorkload(cfg, &w);
  if (!s.ok()) return Fail(s);
  RunConfig rc;
  rc.host.pcpus = cfg.pcpus > 0 ? cfg.pcpus : AutoHostCpus(w);
  rc.host.mem_gib = cfg.mem_gib;
  rc.host.step_s = cfg.step_s;
  rc.engine = cfg.engine;
  GenerateTasks(static_cast<int>(w.guests.size()), w.duration_s, cfg.seed, &rc.tasks);
  // Plot a few guests of different kinds: the first four.
  for (size_t i = 0; i < std::min<size_t>(4, w.guests.size()); ++i) rc.traced.push_back(w.guests[i].info.domid);
  std::filesystem::create_directories(cfg.out_dir);
  std::ofstream csv(cfg.out_dir + "/periods.csv");
  csv << "policy,t_s,domid,name,demand_mean,demand_peak,pred_p50,pred_p95,lent_cpus,revocations\n";
  std::map<DomId, std::string> names;
  for (const auto& g : w.guests) names[g.info.domid] = g.info.name;
  rc.period_hook = [&](Policy p, const PeriodRecord& r) {
    csv << PolicyName(p) << "," << r.t_s << "," << r.domid << "," << names[r.domid] << "," << r.demand_mean << ","
        << r.demand_peak << "," << r.pred_p50 << "," << r.pred_p95 << "," << r.lent_cpus << "," << r.revocations << "\n";
  };
  const char* names4[] = {"none", "reactive", "lull", "oracle"};
  int current = 0;
  Progress bar(stderr, isatty(fileno(stderr)) != 0);  // a line per 10 % when not a terminal
  if (progress) rc.progress = [&](double f) { bar.Update((current + f) / 4.0, names4[current]); };
  std::printf("lulld: %zu guests on a %d-CPU host, %.1f simulated hours, workload %s, forecaster %s\n",
              w.guests.size(), rc.host.pcpus, w.duration_s / 3600.0,
              cfg.trace.empty() ? "built-in" : cfg.trace.c_str(), "lull::forecast::SeriesForecaster");
  std::vector<PolicyResult> results;
  for (Policy p : {Policy::kNone, Policy::kReactive, Policy::kLull, Policy::kOracle}) {
    PolicyResult r;
    if (!(s = RunPolicy(w, rc, p, &r)).ok()) return Fail(s);
    results.push_back(r);
    ++current;
  }
  if (progress) bar.Done();
  csv.close();
  std::string table = FormatTable(results);
  std::printf("\n%s", table.c_str());
  std::printf("\nCPU-s/GiB-h lent: capacity handed to management tasks (%%orcl: share of the oracle's).\n"
              "unmet: guest demand the host could not serve (share of demand); p99 wait: 99th percentile\n"
              "wait of guest-steps that waited; done: task completion time from arrival; revokes: forced\n"
              "revocations; rev p50/p99: demand returned -> donor restored (simulated time).\n");
  std::ofstream(cfg.out_dir + "/table.txt") << table;
  std::printf("\n");
  for (const auto& r : results)
    std::printf("%-9s leases %6llu, forced revocations %5llu (host contention %5llu), unmet %.3f of %.0f CPU-s\n",
                PolicyName(r.policy), static_cast<unsigned long long>(r.engine.leases_granted),
                static_cast<unsigned long long>(r.engine.forced_revocations),
                static_cast<unsigned long long>(r.engine.host_pressure_events), r.host.unmet_cpu_s, r.host.demand_cpu_s);
  std::string miss = CheckTargets(results);
  std::printf("\ntargets (lull >= 80%% of oracle, unmet <= 1%% and <= 1/3 of reactive): %s\n",
              miss.empty() ? "met" : ("NOT met: " + miss).c_str());
  std::printf("wrote %s/periods.csv and %s/table.txt\n", cfg.out_dir.c_str(), cfg.out_dir.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"lulld - lends guests' predicted idle capacity to management tasks"};
  std::string config_path;
  bool compare = false, no_progress = false, exit_at_end = false;
  LulldConfig cfg;
  std::string policy;
  app.add_option("-c,--config", config_path, "TOML configuration file");
  app.add_flag("--compare", compare, "run the four policies on one workload and print the table (make run)");
  app.add_flag("--no-progress", no_progress, "no progress bar");
  app.add_flag("--exit-at-end", exit_at_end, "exit when the simulated workload ends");
  // A flag's range is its config key's (one table, dom0/config.cc): out of it is a usage
  // error naming the flag.
  auto range = [](const char* key) {
    double lo = 0, hi = 0;
    if (!ConfigRange(key, &lo, &hi)) std::abort();  // a key this file names must exist
    return FiniteRange(lo, hi);  // CLI::Range lets "nan" through
  };
  auto* o_trace = app.add_option("--trace", cfg.trace, "replay real traces from DIR instead of the built-in workload");
  auto* o_guests = app.add_option("--guests", cfg.guests, "number of guests")->check(range("workload.guests"));
  auto* o_cpus = app.add_option("--cpus", cfg.pcpus, "physical CPUs of the simulated host (0 = sized to the workload)")
                    ->check(range("host.pcpus"));
  auto* o_days = app.add_option("--days", cfg.days, "simulated days")->check(range("workload.days"));
  auto* o_seed = app.add_option("--seed", cfg.seed, "workload seed")->check(range("workload.seed"));
  auto* o_policy = app.add_option("--policy", policy, "none | reactive | lull | oracle");
  auto* o_socket = app.add_option("--socket", cfg.socket, "control socket path");
  auto* o_uid = app.add_option("--socket-uid", cfg.socket_uid, "a non-root uid also allowed on the socket")
                   ->check(range("daemon.socket_uid"));
  auto* o_metrics = app.add_option("--metrics", cfg.metrics_listen, "Prometheus endpoint host:port ('' = off)");
  auto* o_speed = app.add_option("--speed", cfg.speed, "simulated seconds per real second (0 = flat out)")
                     ->check(range("daemon.speed"));
  auto* o_log = app.add_option("--log", cfg.log, "stderr | journal");
  auto* o_out = app.add_option("--out", cfg.out_dir, "output directory of --compare");
  auto* o_host = app.add_option("--host", cfg.backend, "sim | xen: the simulated host or this Xen host");
  auto* o_task = app.add_option("--task-domain", cfg.task_domain, "xen: the domain management tasks run in (the borrower)");
  auto* o_journal = app.add_option("--undo-journal", cfg.undo_journal, "xen: the undo journal (lull-guard replays it)");
  auto* o_warmup = app.add_option("--warmup", cfg.warmup_s, "xen: seconds of history before the first lease")
                       ->check(range("host.warmup_s"));
  auto* o_hp = app.add_option("--host-pressure-samples", cfg.host_pressure_samples,
                              "xen: saturated samples before host-wide pressure returns leases (0 = off)")
                   ->check(range("host.host_pressure_samples"));
  auto* o_step = app.add_option("--step", cfg.step_s, "seconds per host step (xen: the sample interval)")
                    ->check(range("host.step_s"));
  auto* o_period = app.add_option("--control-period", cfg.engine.control_period_s, "seconds per control period")
                      ->check(range("engine.control_period_s"));
  auto* o_lease = app.add_option("--lease-period", cfg.engine.lease_period_s, "seconds a lease lasts unless renewed")
                     ->check(range("engine.lease_period_s"));
  bool xen_ring = false;
  app.add_flag("--xen-ring", xen_ring, "xen: attach the lull-patched hypervisor's ring (telemetry, lease table)");
  CLI11_PARSE(app, argc, argv);

  // The file first, then flags given explicitly override it.
  if (!config_path.empty()) {
    LulldConfig file_cfg;
    lull::Status s = LoadConfigFile(config_path, &file_cfg);
    if (!s.ok()) return Fail(s);
    LulldConfig flags = cfg;
    cfg = file_cfg;
    if (o_trace->count()) cfg.trace = flags.trace;
    if (o_guests->count()) cfg.guests = flags.guests;
    if (o_cpus->count()) cfg.pcpus = flags.pcpus;
    if (o_days->count()) cfg.days = flags.days;
    if (o_seed->count()) cfg.seed = flags.seed;
    if (o_socket->count()) cfg.socket = flags.socket;
    if (o_uid->count()) cfg.socket_uid = flags.socket_uid;
    if (o_metrics->count()) cfg.metrics_listen = flags.metrics_listen;
    if (o_speed->count()) cfg.speed = flags.speed;
    if (o_log->count()) cfg.log = flags.log;
    if (o_out->count()) cfg.out_dir = flags.out_dir;
    if (o_host->count()) cfg.backend = flags.backend;
    if (o_task->count()) cfg.task_domain = flags.task_domain;
    if (o_journal->count()) cfg.undo_journal = flags.undo_journal;
    if (o_warmup->count()) cfg.warmup_s = flags.warmup_s;
    if (o_hp->count()) cfg.host_pressure_samples = flags.host_pressure_samples;
    if (o_step->count()) cfg.step_s = flags.step_s;
    if (o_period->count()) cfg.engine.control_period_s = flags.engine.control_period_s;
    if (o_lease->count()) cfg.engine.lease_period_s = flags.engine.lease_period_s;
  }
  if (o_policy->count() && !ParsePolicy(policy, &cfg.engine.policy))
    return Fail(lull::Status::InvalidArgument("--policy " + policy + ": must be none, reactive, lull or oracle"));
  if (lull::Status s = ValidateConfig(cfg); !s.ok()) return Fail(s);
  LogJournal() = cfg.log == "journal";

  if (compare) {
    if (cfg.backend != "sim") return Fail(lull::Status::InvalidArgument("--compare runs on the simulated host only (--host sim)"));
    return Compare(cfg, !no_progress);
  }

  std::unique_ptr<XenRing> ring;  // outlives the host that writes leases into it
  std::unique_ptr<LiveHost> live;
  XenHost* xen = nullptr;
  if (cfg.backend == "xen") {
    XenHostConfig xc;
    xc.task_domain = cfg.task_domain;
    xc.journal = cfg.undo_journal;
    xc.warmup_s = cfg.warmup_s;
    xc.host_pressure.sustain = cfg.host_pressure_samples;
    if (xen_ring) {
      // The patched hypervisor's region: leases go to its table, Xen revokes them.
      XenRingOptions ro;
      ro.stats_log_s = 5;
      if (lull::Status s = XenRing::OpenXen(ro, &ring); !s.ok()) return Fail(s);
      xc.ring = ring.get();
    }
    auto x = std::make_unique<XenHost>(xc);
    // Before any thread: Open() forks lull-guard.
    if (lull::Status s = x->Open(); !s.ok()) return Fail(s);
    if (ring) {  // its poller thread only after the fork
      if (lull::Status s = ring->StartPoller(10); !s.ok()) return Fail(s);
      Log(LogLevel::kInfo, "xen ring: attached, %u telemetry rings, %u lease slots, polled every 10 ms",
          ring->rings(), ring->lease_slots());
    }
    xen = x.get();
    live = std::move(x);
  }
  Daemon d(cfg, std::move(live));
  if (lull::Status s = d.Init(); !s.ok()) return Fail(s);
  // Xen's revocations (and a lender's returning demand) reach the engine from the ring's
  // poller at once, not at the next sample.
  if (ring) ring->SetDemandHandler([&d](const PressureEvent& ev) { d.Deliver(ev); });
  struct sigaction sa{};
  sa.sa_handler = OnSignal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  std::filesystem::create_directories(std::filesystem::path(cfg.socket).parent_path().empty()
                                          ? "." : std::filesystem::path(cfg.socket).parent_path());
  ControlServer ctl(cfg.socket, [&d](const nlohmann::json& r) { return d.Handle(r); },
                    static_cast<uid_t>(cfg.socket_uid));
  if (lull::Status s = ctl.Start(); !s.ok()) return Fail(s);
  MetricsServer metrics([&d] { return d.Metrics(); });
  if (!cfg.metrics_listen.empty()) {
    if (lull::Status s = metrics.Start(cfg.metrics_listen); !s.ok()) return Fail(s);
    Log(LogLevel::kInfo, "metrics on http://%s/metrics (port %d)", cfg.metrics_listen.c_str(), metrics.port());
  }
  if (xen) {
    Log(LogLevel::kInfo, "running policy %s on this Xen host (%d pCPUs, %zu guests, task domain %s, guard pid %d), "
        "sample every %.3gs, control period %.3gs, lease %.3gs, socket %s",
        PolicyName(cfg.engine.policy), xen->PhysicalCpus(), d.engine()->Guests().size(), cfg.task_domain.c_str(),
        static_cast<int>(xen->guard_pid()), cfg.step_s, cfg.engine.control_period_s, cfg.engine.lease_period_s,
        cfg.socket.c_str());
  } else {
    Log(LogLevel::kInfo, "running policy %s on the simulated host (%d CPUs, %d guests), socket %s",
        PolicyName(cfg.engine.policy), cfg.pcpus, cfg.guests, cfg.socket.c_str());
  }
  (void)d.Run(g_stop, exit_at_end);
  if (ring) ring->StopPoller();  // no event may reach the daemon while it shuts down
  size_t n = 0;
  (void)d.Shutdown(&n);
  // Every donor has its settings back before we say so.
  Log(LogLevel::kInfo, "stopping: restored %zu leases; every guest has its own settings back", n);
  if (xen && !xen->revocation_ms().empty()) {
    auto v = xen->revocation_ms();
    std::sort(v.begin(), v.end());
    Log(LogLevel::kInfo, "revocation latency over %zu revocations: min %.1f ms, median %.1f ms, max %.1f ms", v.size(),
        v.front(), v[v.size() / 2], v.back());
  }
  metrics.Stop();
  ctl.Stop();
  return 0;
}
