// lull::dom0::LulldConfig - lulld's configuration, from a TOML file and flags.
//
// The file is validated as a whole: unknown sections or keys, wrong types and values out
// of range are errors, and every error names the key and its line
// ("lulld.toml:12: engine.lease_period_s = 30: must be >= engine.control_period_s (60)").
// Flags given on the command line override the file. Every field has a default, so an
// empty file (or none) is a valid configuration: the simulated host of `make run`.
//
//   [host]      backend = "sim" | "xen", pcpus, mem_gib, step_s (the sample interval on
//               xen), task_domain, undo_journal, warmup_s (xen only: dom0/xen_host.h)
//   [workload]  trace = "<dir>" (empty: built-in generator), guests, days, seed, load
//   [engine]    policy, control_period_s, lease_period_s, window_periods, min_lend_cpus,
//               mem_guard_gib, cpu_margin, mem_margin, host_reserve_cpus,
//               target_violation_rate
//   [daemon]    socket, socket_uid, metrics_listen, speed, log ("stderr" | "journal"),
//               out_dir
//   [guests.<name>]  class = "critical" | "standard" | "best-effort"
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "dom0/engine.h"
#include "dom0/host.h"
#include "forecast/status.h"

namespace lull::dom0 {

struct LulldConfig {
  std::string backend = "sim";
  int pcpus = 16;               // 0 = sized to the workload (--compare): p99.9 demand + 10 %
  double mem_gib = 256;
  double step_s = 1;
  // Xen host (backend = "xen"): the borrower domain, the undo journal, and how long the
  // guests are watched before the first lease.
  std::string task_domain;
  std::string undo_journal = "/run/lull/undo.journal";
  double warmup_s = 60;
  // Consecutive saturated samples (no idle pCPU while other guests wait) before host-wide
  // pressure returns leases (dom0/host_pressure.h); 0 turns it off.
  int host_pressure_samples = 3;

  std::string trace;            // empty = built-in workload
  int guests = 32;
  double days = 1;
  uint64_t seed = 1;
  double load = 0.6;

  EngineConfig engine;

  std::string socket = "/run/lulld/lulld.sock";
  int64_t socket_uid = 0;       // the only non-root uid allowed on the socket (0 = root only)
  std::string metrics_listen = "127.0.0.1:9477";   // empty = no metrics endpoint
  double speed = 0;             // simulated seconds per real second; 0 = as fast as possible
  std::string log = "stderr";
  std::string out_dir = "results/run";

  std::map<std::string, PriorityClass> guest_class;
};

// Parses TOML text; `name` is used in messages (the file name).
Status ParseConfig(const std::string& text, const std::string& name, LulldConfig* cfg);
Status LoadConfigFile(const std::string& path, LulldConfig* cfg);
// Re-checks every numeric key's range and the cross-field rules after flags were applied
// (messages name the keys).
Status ValidateConfig(const LulldConfig& cfg);
// Splits "host:port" (daemon.metrics_listen) at its last colon; the port must be digits
// only, 0..65535 (0: any free port). Errors say what is wrong with `listen`.
Status ParseHostPort(const std::string& listen, std::string* host, int* port);
// The range [lo, hi] the numeric key (e.g. "daemon.speed") accepts; false for any other key.
bool ConfigRange(const std::string& key, double* lo, double* hi);
// The configuration as TOML, for `lullctl config`.
std::string ConfigToToml(const LulldConfig& cfg);

}  // namespace lull::dom0
