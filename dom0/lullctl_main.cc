// lullctl: talk to lulld over its control socket, in the style of xl.
//
//   lullctl list | top | predict DOMAIN | tasks | leases | config
//   lullctl task-add KIND --cpu-s N [--mem GIB] [--max-cpus N] [--deadline S] [--target T]
//   lullctl lend DOMAIN TASK [--cpus N] [--mem GIB]
//   lullctl revoke LEASE | lullctl revoke --domain DOMAIN
//
// The companion modules' verbs run their own tools with the same verb and arguments,
// and their output and exit status pass straight through:
//   lullctl snapshot DOMAIN ... | restore FILE ...   -> lull-snapshot
//   lullctl migrate DOMAIN HOST[:PORT] [--when-idle] -> lull-migrate
//   lullctl clones ... | clone-pool DOMAIN --size N  -> lull-clone
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string_view>

#include <cstdio>
#include <thread>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "dom0/cli_checks.h"
#include "dom0/control.h"

using nlohmann::json;
using lull::dom0::ControlRequest;
using lull::dom0::FiniteRange;
using lull::dom0::kMaxRequestCpus;
using lull::dom0::kMaxRequestGiB;
using lull::dom0::kMaxRequestSeconds;
using lull::dom0::WholeNumber;

namespace {

int Send(const std::string& sock, const json& req, bool raw, json* out = nullptr) {
  json reply;
  lull::Status s = ControlRequest(sock, req, &reply);
  if (!s.ok()) { std::fprintf(stderr, "lullctl: %s\n", s.ToString().c_str()); return 1; }
  if (!reply.value("ok", false)) {
    std::fprintf(stderr, "lullctl: %s\n", reply.value("error", std::string("lulld refused")).c_str());
    return 1;
  }
  if (raw) std::printf("%s\n", reply.dump(2).c_str());
  if (out) *out = reply;
  return 0;
}

void PrintGuests(const json& r) {
  std::printf("%-20s %5s %5s %8s %9s %8s %8s %6s %8s %6s\n", "Name", "ID", "VCPUs", "Mem(GiB)", "CPU now",
              "p95 next", "Lent CPU", "LentGB", "Thresh", "Class");
  for (const auto& g : r["guests"]) {
    std::printf("%-20s %5u %5d %8.1f %9.2f %8.2f %8.2f %6.2f %8.3f %6s\n", g["name"].get<std::string>().c_str(),
                g["domid"].get<unsigned>(), g["vcpus"].get<int>(), g["mem_max_gib"].get<double>(),
                g["cpu_demand"].get<double>(), g["cpu_pred"]["p95"].get<double>() * g["vcpus"].get<int>(),
                g["lent_cpus"].get<double>(), g["lent_mem_gib"].get<double>(), g["threshold"].get<double>(),
                g["class"].get<std::string>().substr(0, 6).c_str());
  }
}

// The tool serving a companion module's verb, or nullptr. Looked for beside lullctl
// (installed), in the build tree's dom0/<module>/, then on PATH.
const char* ModuleTool(std::string_view verb, const char** module) {
  struct Verb { const char* verb; const char* module; const char* tool; };
  static const Verb kVerbs[] = {{"snapshot", "snapshot", "lull-snapshot"},
                                {"restore", "snapshot", "lull-snapshot"},
                                {"migrate", "migrate", "lull-migrate"},
                                {"clones", "clone", "lull-clone"},
                                {"clone-pool", "clone", "lull-clone"}};
  for (const Verb& v : kVerbs)
    if (verb == v.verb) {
      *module = v.module;
      return v.tool;
    }
  return nullptr;
}

[[noreturn]] void ExecModule(const char* module, const char* tool, char** argv) {
  std::error_code ec;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec).parent_path();
  argv[0] = const_cast<char*>(tool);
  for (const auto& cand : {self / tool, self / module / tool}) {
    if (!ec && ::access(cand.c_str(), X_OK) == 0) ::execv(cand.c_str(), argv);
  }
  ::execvp(tool, argv);
  std::fprintf(stderr, "lullctl: cannot run %s for '%s': %s (looked beside lullctl, in %s/%s/, "
                       "and on PATH)\n", tool, argv[1], std::strerror(errno), self.c_str(), module);
  std::exit(127);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2) {
    const char* module = nullptr;
    if (const char* tool = ModuleTool(argv[1], &module)) ExecModule(module, tool, argv);
  }
  CLI::App app{"lullctl - control lulld"};
  app.require_subcommand(1);
  std::string sock = "/run/lulld/lulld.sock";
  bool raw = false;
  app.add_option("-s,--socket", sock, "lulld's control socket");
  app.add_flag("-j,--json", raw, "print lulld's JSON reply");

  auto* list = app.add_subcommand("list", "guests, their demand, prediction and what they lend");
  int iterations = 1;
  double delay = 2;
  auto* top = app.add_subcommand("top", "guests by CPU demand, refreshed");
  top->add_option("-n,--iterations", iterations, "refreshes (default 1)")->check(CLI::Range(1, 1000000));
  top->add_option("-d,--delay", delay, "seconds between refreshes")->check(FiniteRange(0, 86400));
  std::string domain;
  auto* predict = app.add_subcommand("predict", "a guest's forecast and learning state");
  predict->add_option("domain", domain, "domain name or id")->required();
  auto* tasks = app.add_subcommand("tasks", "management tasks");
  auto* leases = app.add_subcommand("leases", "active leases");
  auto* config = app.add_subcommand("config", "lulld's configuration");
  std::string kind, target = "host";
  double cpu_s = 0, mem = 0, deadline = 3600, cpus = 0;
  int max_cpus = 1;
  auto* add = app.add_subcommand("task-add", "queue a management task");
  add->add_option("kind", kind, "backup | snapshot | migration | scrub")->required();
  add->add_option("--cpu-s", cpu_s, "CPU-seconds of work")->required()->check(FiniteRange(0, kMaxRequestSeconds));
  add->add_option("--mem", mem, "GiB held while running")->check(FiniteRange(0, kMaxRequestGiB));
  add->add_option("--max-cpus", max_cpus, "CPUs it can use at once")->check(CLI::Range(1, kMaxRequestCpus));
  add->add_option("--deadline", deadline, "seconds from now")->check(FiniteRange(0, kMaxRequestSeconds));
  add->add_option("--target", target, "what it works on");
  uint64_t task = 0, lease = 0;
  auto* lend = app.add_subcommand("lend", "lend a guest's capacity to a task now");
  lend->add_option("domain", domain, "donor domain")->required();
  lend->add_option("task", task, "task id")->required()->check(WholeNumber());
  lend->add_option("--cpus", cpus, "CPUs to lend")->check(FiniteRange(0, kMaxRequestCpus));
  lend->add_option("--mem", mem, "GiB to lend")->check(FiniteRange(0, kMaxRequestGiB));
  auto* revoke = app.add_subcommand("revoke", "take a lease back now");
  revoke->add_option("lease", lease, "lease id")->check(WholeNumber());
  revoke->add_option("--domain", domain, "revoke every lease of this donor");
  CLI11_PARSE(app, argc, argv);

  json r;
  if (list->parsed()) {
    if (int rc = Send(sock, {{"cmd", "list"}}, raw, &r)) return rc;
    if (!raw) PrintGuests(r);
  } else if (top->parsed()) {
    for (int i = 0; i < iterations; ++i) {
      if (int rc = Send(sock, {{"cmd", "top"}}, raw, &r)) return rc;
      if (!raw) {
        std::printf("lulld %s  t=%.0fs  host load p95 %.2f  leases %zu  handed %.0f CPU-s  forced revocations %zu\n",
                    r["policy"].get<std::string>().c_str(), r["time_s"].get<double>(), r["host_load"].get<double>(),
                    r["leases"].get<size_t>(), r["handed_cpu_s"].get<double>(), r["forced_revocations"].get<size_t>());
        PrintGuests(r);
      }
      if (i + 1 < iterations) std::this_thread::sleep_for(std::chrono::duration<double>(delay));
    }
  } else if (predict->parsed()) {
    if (int rc = Send(sock, {{"cmd", "predict"}, {"domain", domain}}, raw, &r)) return rc;
    if (!raw) {
      const json& g = r["guest"];
      std::printf("%s (domid %u, %d vCPUs, %s): next %.0f s\n", g["name"].get<std::string>().c_str(),
                  g["domid"].get<unsigned>(), g["vcpus"].get<int>(), g["class"].get<std::string>().c_str(),
                  r["window_s"].get<double>());
      std::printf("  CPU peak util  mean %.3f  p50 %.3f  p90 %.3f  p95 %.3f  p99 %.3f  confidence %.2f\n",
                  g["cpu_pred"]["mean"].get<double>(), g["cpu_pred"]["p50"].get<double>(), g["cpu_pred"]["p90"].get<double>(),
                  g["cpu_pred"]["p95"].get<double>(), g["cpu_pred"]["p99"].get<double>(), g["cpu_pred"]["confidence"].get<double>());
      std::printf("  mem peak frac  p50 %.3f  p95 %.3f  p99 %.3f\n", g["mem_pred"]["p50"].get<double>(),
                  g["mem_pred"]["p95"].get<double>(), g["mem_pred"]["p99"].get<double>());
      std::printf("  threshold %.3f  leased periods %llu  violations %llu  MAE %.3f  p95 exceeded %.1f%%\n",
                  g["threshold"].get<double>(), g["leased_periods"].get<unsigned long long>(),
                  g["violations"].get<unsigned long long>(), g["cpu_mae"].get<double>(), 100 * g["p95_exceed_rate"].get<double>());
    }
  } else if (tasks->parsed()) {
    if (int rc = Send(sock, {{"cmd", "tasks"}}, raw, &r)) return rc;
    if (!raw) {
      std::printf("%6s %-10s %-12s %9s %7s %6s %8s %6s %s\n", "ID", "Kind", "Target", "CPU-s", "done%", "MemGB", "Priority", "Leases", "State");
      for (const auto& t : r["tasks"])
        std::printf("%6llu %-10s %-12s %9.0f %6.1f%% %6.2f %8.2f %6d %s\n", t["id"].get<unsigned long long>(),
                    t["kind"].get<std::string>().c_str(), t["target"].get<std::string>().c_str(), t["cpu_s"].get<double>(),
                    100 * t["done_cpu_s"].get<double>() / t["cpu_s"].get<double>(), t["mem_gib"].get<double>(),
                    t["priority"].get<double>(), t["leases"].get<int>(), t["done"].get<bool>() ? "done" : "pending");
    }
  } else if (leases->parsed()) {
    if (int rc = Send(sock, {{"cmd", "leases"}}, raw, &r)) return rc;
    if (!raw) {
      std::printf("%6s %6s %6s %6s %7s %10s %s\n", "Lease", "Donor", "Task", "CPUs", "MemGB", "Expires", "Manual");
      for (const auto& l : r["leases"])
        std::printf("%6llu %6u %6llu %6.2f %7.2f %9.0fs %s\n", l["id"].get<unsigned long long>(), l["donor"].get<unsigned>(),
                    l["task"].get<unsigned long long>(), l["cpus"].get<double>(), l["mem_gib"].get<double>(),
                    l["expires_s"].get<double>(), l["manual"].get<bool>() ? "yes" : "no");
    }
  } else if (config->parsed()) {
    if (int rc = Send(sock, {{"cmd", "config"}}, raw, &r)) return rc;
    if (!raw) std::printf("%s", r["toml"].get<std::string>().c_str());
  } else if (add->parsed()) {
    if (int rc = Send(sock, {{"cmd", "task-add"}, {"kind", kind}, {"cpu_s", cpu_s}, {"mem_gib", mem}, {"max_cpus", max_cpus},
                             {"deadline_s", deadline}, {"target", target}}, raw, &r)) return rc;
    if (!raw) std::printf("task %llu queued\n", r["id"].get<unsigned long long>());
  } else if (lend->parsed()) {
    if (int rc = Send(sock, {{"cmd", "lend"}, {"domain", domain}, {"task", task}, {"cpus", cpus}, {"mem_gib", mem}}, raw, &r)) return rc;
    if (!raw) std::printf("lease %llu granted\n", r["lease"].get<unsigned long long>());
  } else if (revoke->parsed()) {
    json req = {{"cmd", "revoke"}};
    if (!domain.empty()) req["domain"] = domain;
    else if (lease) req["lease"] = lease;
    else { std::fprintf(stderr, "lullctl revoke: give a lease id or --domain\n"); return 2; }
    if (int rc = Send(sock, req, raw, &r)) return rc;
    if (!raw) std::printf("revoked %d lease(s)\n", r["revoked"].get<int>());
  }
  return 0;
}
