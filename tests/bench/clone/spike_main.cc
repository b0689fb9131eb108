// lull-clone-spike: a real demand spike through real HAProxy and backends on 127.0.0.1,
// under three shadow policies (none, reactive, predictive), side by side.
//
//   lull-clone-spike [--traces DIR] [--out DIR] [--vm 737498] [--day 7] [--from 180]
//                    [--to 206] [--scale 1150] [--conns 32] [--policies a,b,c] [--rounds 3]
//
// The demand curve is Azure V1 VM 737498's average CPU (a daily 4x step around 5-minute
// step 188 of 288), steps [from, to) of day `day`, sped up 300x: one 5-minute step is one
// second of wall time, and utilization u becomes u * scale requests per second. Each
// second is one `wrk` run (Debian's wrk, one thread, `conns` connections) whose Lua script
// paces each connection to the step's rate and prints its latency percentiles; the
// per-second distributions are merged weighted by request count. Before the run the
// controller's forecaster is fed the trace's earlier days (the same units), as lulld's
// would have seen them. Each policy gets a fresh pool: primary of 2 vCPUs x 5 ms per
// request (400 rps), 2 warm shadows of 4 vCPUs (800 rps each).
// A 4th run, predictive with the block cache disabled, measures the volume reads the
// shadows add without the cache. The policies run interleaved for `rounds` rounds; the
// targets are checked on the medians. Results: table on stdout, CSV in --out.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <vector>

#include "dom0/clone/controller.h"
#include "forecast/traces.h"
#include "tests/bench/bench_args.h"
#include "tests/bench/clone/bench_env.h"

namespace lull::clone::bench {
namespace {

struct Options {
  std::string traces = LULL_TRACES_DIR, out = "results/clone", vm = "737498";
  std::string policies = "none,reactive,predictive,predictive-nocache";
  int day = 7, from = 180, to = 206, conns = 32, rounds = 3;
  double scale = 1150, spike_level = 0.4;
};

// wrk's Lua: random keys over a hot set, per-connection pacing (exponential think time
// of mean `delay_ms`), and the percentiles.
const char* kWrkLua = R"(
local delay_ms, keys = 0, 20000
function init(args)
  delay_ms = tonumber(args[1])
  keys = tonumber(args[2])
  math.randomseed(tonumber(args[3]))
end
-- Exponential think times: the connections do not march in lock-step, and arrivals are
-- close to Poisson at low load, as from many independent users.
function delay() return -delay_ms * math.log(1 - math.random()) end
function request() return wrk.format("GET", "/k/" .. math.random(1, keys)) end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("LULL requests %d errors %d %d %d %d %d\n", summary.requests,
    e.connect, e.read, e.write, e.status, e.timeout))
  local p = 0.5
  while p <= 100 do
    io.write(string.format("LULLQ %.2f %d\n", p, latency:percentile(p)))
    if p < 99 then p = p + 0.5 elseif p < 99.9 then p = p + 0.1 else p = p + 0.02 end
  end
end
)";

struct Segment {
  long requests = 0, errors = 0;
  std::vector<std::pair<double, double>> q;  // (percentile, latency us)
};

Status RunWrk(const std::string& script, int port, int conns, double rps, int seed,
              Segment* seg) {
  // Closed loop per connection: cycle = delay + latency. The delay is set for the
  // unloaded latency (~6 ms); when the servers are overloaded the latency grows and
  // the offered rate falls, as with real clients that wait for answers.
  double cycle_ms = conns * 1000.0 / std::max(rps, 1.0);
  int delay = static_cast<int>(std::max(0.0, cycle_ms - 6.0));
  std::string cmd = "wrk -t1 -c" + std::to_string(conns) + " -d1s --timeout 5s -s " + script +
                    " http://127.0.0.1:" + std::to_string(port) + "/ -- " +
                    std::to_string(delay) + " 20000 " + std::to_string(seed) + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return Status::IoError("cannot run wrk");
  char line[512];
  *seg = Segment();
  bool got = false;
  while (fgets(line, sizeof line, p)) {
    long r, e1, e2, e3, e4, e5;
    double pc, us;
    if (std::sscanf(line, "LULL requests %ld errors %ld %ld %ld %ld %ld", &r, &e1, &e2, &e3,
                    &e4, &e5) == 6) {
      seg->requests = r;
      seg->errors = e1 + e2 + e3 + e4 + e5;
      got = true;
    } else if (std::sscanf(line, "LULLQ %lf %lf", &pc, &us) == 2) {
      seg->q.emplace_back(pc, us);
    }
  }
  int rc = pclose(p);
  if (!got || rc != 0) {
    return Status::Unavailable("wrk failed (exit " + std::to_string(WEXITSTATUS(rc)) +
                               "); is Debian's wrk installed (`make deps`)?");
  }
  return Status::Ok();
}

// Weighted merge of per-second percentile grids into one distribution's percentile.
double MergedPercentile(const std::vector<const Segment*>& segs, double pct) {
  std::vector<std::pair<double, double>> mass;  // (latency, weight)
  double total = 0;
  for (const Segment* s : segs) {
    double prev = 0;
    for (auto [pc, us] : s->q) {
      double w = s->requests * (pc - prev) / 100.0;
      prev = pc;
      mass.emplace_back(us, w);
      total += w;
    }
  }
  if (total <= 0) return 0;
  std::sort(mass.begin(), mass.end());
  double acc = 0;
  for (auto [us, w] : mass) {
    acc += w;
    if (acc >= pct / 100.0 * total) return us;
  }
  return mass.back().first;
}

struct PolicyResult {
  std::string name;
  int round = 0;
  double p50_spike = 0, p99_spike = 0, p50_all = 0, p99_all = 0;
  long requests = 0, errors = 0, lb_5xx = 0;
  int activations = 0, deactivations = 0;
  double max_activation_ms = 0, first_active_step = -1;
  uint64_t shadow_served = 0, shadow_volume_reads = 0;
};

Status RunPolicy(const Options& o, const std::string& name, int round,
                 const std::vector<double>& trace, int start, const std::string& script, std::ofstream& csv, PolicyResult* res) {
  Policy policy;
  bool nocache = name == "predictive-nocache";
  Status s = ParsePolicy(nocache ? "predictive" : name, &policy);
  if (!s.ok()) return s;
  BenchDir dir("spike");
  GoldenConfig g = MakeGolden(5000, 100, nocache ? 0 : 2048, nocache ? 0 : 2048);
  PoolConfig pc;
  if (!(s = dir.Prepare(g, 4, &pc)).ok()) return s;
  ShadowPool pool;
  if (!(s = pool.Start(pc)).ok()) return s;
  if (!(s = pool.SetSize(2)).ok()) return s;

  SchedulerConfig sc;
  sc.policy = policy;
  sc.step_seconds = 1.0;
  sc.primary_rps = pool.primary_capacity_rps();
  sc.per_vcpu_rps = g.per_vcpu_rps();
  sc.shadow_vcpus = 4;
  sc.max_vcpus = g.max_vcpus;
  if (!(s = sc.Validate()).ok()) return s;
  Controller ctl(&pool, sc, o.scale);
  // The forecaster has seen the trace up to the first replayed step.
  if (!(s = ctl.Warm(std::vector<double>(trace.begin(), trace.begin() + start))).ok()) return s;
  if (!(s = ctl.Begin()).ok()) return s;

  std::vector<Segment> segs(o.to - o.from);
  std::vector<bool> spike(segs.size());
  res->name = name;
  res->round = round;
  for (int i = 0; i < o.to - o.from; ++i) {
    double u = trace[start + i];
    spike[i] = u >= o.spike_level;
    StepRecord rec;
    if (i > 0) {  // decide with what the last second showed
      if (!(s = ctl.Step(&rec)).ok()) return s;
      if (rec.active_after > rec.active_before) ++res->activations;
      if (rec.active_after < rec.active_before) ++res->deactivations;
      res->max_activation_ms = std::max(res->max_activation_ms, rec.activation_ms);
    }
    if (res->first_active_step < 0 && pool.active() > 0) res->first_active_step = o.from + i;
    if (!(s = RunWrk(script, pool.lb().port(), o.conns, u * o.scale, 1000 + i, &segs[i])).ok()) {
      return s;
    }
    double p99 = MergedPercentile({&segs[i]}, 99) / 1000.0;
    csv << name << "," << round << "," << o.from + i << "," << u << "," << u * o.scale << ","
        << rec.measured_rps << "," << rec.forecast_rps << "," << rec.confidence << ","
        << pool.active() << "," << rec.vcpus << "," << segs[i].requests << ","
        << segs[i].errors << "," << MergedPercentile({&segs[i]}, 50) / 1000.0 << "," << p99
        << "\n";
    std::printf("  %-18s tod %3d  u %.2f  demand %5.0f rps  shadows %d  served %5ld  "
                "p99 %7.1f ms  errors %ld%s\n",
                name.c_str(), o.from + i, u, u * o.scale, pool.active(), segs[i].requests,
                p99, segs[i].errors, rec.activation_ms > 0 ? "  (activated)" : "");
    std::fflush(stdout);
  }
  std::vector<const Segment*> all, in_spike;
  for (size_t i = 0; i < segs.size(); ++i) {
    all.push_back(&segs[i]);
    if (spike[i]) in_spike.push_back(&segs[i]);
    res->requests += segs[i].requests;
    res->errors += segs[i].errors;
  }
  res->p50_all = MergedPercentile(all, 50) / 1000.0;
  res->p99_all = MergedPercentile(all, 99) / 1000.0;
  res->p50_spike = MergedPercentile(in_spike, 50) / 1000.0;
  res->p99_spike = MergedPercentile(in_spike, 99) / 1000.0;
  std::vector<ServerStat> rows;
  if (pool.lb().ShowStat(&rows).ok()) {
    for (auto& r : rows) if (r.name == "BACKEND") res->lb_5xx = static_cast<long>(r.hrsp_5xx);
  }
  for (int i = 0; i < pool.size(); ++i) {
    bool was_paused = pool.shadow(i).paused();
    if (was_paused) pool.shadow(i).Resume();
    InstanceStats st;
    if (pool.shadow(i).Stats(&st).ok()) {
      res->shadow_served += st.served;
      // Reads of the warm-up are part of building the image, not of serving.
      res->shadow_volume_reads += st.volume_reads - static_cast<uint64_t>(g.warm_blocks);
    }
  }
  return pool.Stop();
}

int Main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i], v = argv[i + 1];
    if (a == "--traces") o.traces = v;
    else if (a == "--out") o.out = v;
    else if (a == "--vm") o.vm = v;
    else if (a == "--day" || a == "--from" || a == "--to" || a == "--conns" || a == "--rounds") {
      // Ranges checked together below, where they relate to each other.
      int* dst = a == "--day" ? &o.day : a == "--from" ? &o.from : a == "--to" ? &o.to
                 : a == "--conns" ? &o.conns : &o.rounds;
      if (!lull::bench::ParseArg("lull-clone-spike", a, v, -1000000, 1000000, dst)) return 2;
    } else if (a == "--scale") {
      if (!lull::bench::ParseArg("lull-clone-spike", a, v, 1e-6, 1e6, &o.scale)) return 2;
    } else if (a == "--policies") {
      o.policies = v;
    } else {
      std::fprintf(stderr, "lull-clone-spike: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if (argc % 2 == 0) {
    std::fprintf(stderr, "lull-clone-spike: option %s needs a value\n", argv[argc - 1]);
    return 2;
  }
  if (o.from < 0 || o.to <= o.from || o.to > 288 || o.day < 1 || o.conns < 1 || o.scale <= 0 ||
      o.rounds < 1) {
    std::fprintf(stderr, "lull-clone-spike: need 0 <= from < to <= 288, day >= 1, conns >= 1, "
                         "scale > 0, rounds >= 1\n");
    return 2;
  }
  std::vector<forecast::Series> all;
  std::string path = o.traces + "/azure_v1/microsoft_avg_100.csv";
  Status s = forecast::LoadAzureCsv(path, 0, &all);
  if (!s.ok()) {
    std::fprintf(stderr, "lull-clone-spike: %s\n", s.ToString().c_str());
    return 1;
  }
  const forecast::Series* vm = nullptr;
  for (const auto& x : all) if (x.name == o.vm) vm = &x;
  if (!vm) {
    std::fprintf(stderr, "lull-clone-spike: no VM '%s' in %s\n", o.vm.c_str(), path.c_str());
    return 1;
  }
  int start = o.day * 288 + o.from;
  if (start + (o.to - o.from) > static_cast<int>(vm->values.size())) {
    std::fprintf(stderr, "lull-clone-spike: day %d is past the trace's end\n", o.day);
    return 1;
  }
  std::filesystem::create_directories(o.out);
  std::string script = o.out + "/spike.lua";
  std::ofstream(script) << kWrkLua;
  std::ofstream csv(o.out + "/spike_steps.csv");
  csv << "policy,round,tod,util,demand_rps,measured_rps,forecast_rps,confidence,active,vcpus,"
         "requests,errors,p50_ms,p99_ms\n";
  std::printf("Spike: Azure VM %s, day %d, steps %d..%d (5 min -> 1 s), %.0f rps per unit, "
              "%d connections\n", o.vm.c_str(), o.day, o.from, o.to - 1, o.scale, o.conns);
  // Rounds interleave the policies, so that a burst of load from other work on this
  // shared machine hits all of them alike; the targets use the median over rounds.
  std::vector<PolicyResult> results;
  std::vector<std::string> names;
  {
    std::stringstream ps(o.policies);
    std::string name;
    while (std::getline(ps, name, ',')) names.push_back(name);
  }
  for (int round = 0; round < o.rounds; ++round) {
    for (const auto& name : names) {
      PolicyResult r;
      s = RunPolicy(o, name, round, vm->values, start, script, csv, &r);
      if (!s.ok()) {
        std::fprintf(stderr, "lull-clone-spike: %s: %s\n", name.c_str(), s.ToString().c_str());
        return 1;
      }
      results.push_back(r);
    }
  }
  std::ofstream sum(o.out + "/spike_summary.csv");
  sum << "policy,round,requests,errors,lb_5xx,p50_spike_ms,p99_spike_ms,p50_all_ms,p99_all_ms,"
         "activations,deactivations,max_activation_ms,first_active_tod,shadow_served,"
         "shadow_volume_reads\n";
  std::printf("\n%-19s %8s %6s %6s %10s %10s %9s %9s %5s %9s %6s %10s\n", "policy", "requests",
              "errors", "5xx", "p50 spike", "p99 spike", "p50 all", "p99 all", "act", "max act",
              "first", "vol reads/");
  std::printf("%-19s %8s %6s %6s %10s %10s %9s %9s %5s %9s %6s %10s\n", "", "", "", "", "ms",
              "ms", "ms", "ms", "", "ms", "tod", "shadow req");
  std::map<std::string, PolicyResult> by;
  std::map<std::string, std::vector<const PolicyResult*>> rounds;
  for (const auto& r : results) rounds[r.name].push_back(&r);
  for (const auto& [nm, rs] : rounds) {
    auto med = [&](double PolicyResult::*f) {
      std::vector<double> v;
      for (auto* r : rs) v.push_back(r->*f);
      std::sort(v.begin(), v.end());
      return v[v.size() / 2];
    };
    PolicyResult m;
    m.name = nm;
    m.round = -1;  // the median row
    m.p50_spike = med(&PolicyResult::p50_spike);
    m.p99_spike = med(&PolicyResult::p99_spike);
    m.p50_all = med(&PolicyResult::p50_all);
    m.p99_all = med(&PolicyResult::p99_all);
    m.first_active_step = med(&PolicyResult::first_active_step);
    for (auto* r : rs) {
      m.requests += r->requests;
      m.errors += r->errors;
      m.lb_5xx += r->lb_5xx;
      m.activations += r->activations;
      m.deactivations += r->deactivations;
      m.max_activation_ms = std::max(m.max_activation_ms, r->max_activation_ms);
      m.shadow_served += r->shadow_served;
      m.shadow_volume_reads += r->shadow_volume_reads;
    }
    by[nm] = m;
  }
  std::vector<PolicyResult> rows = results;
  for (const auto& nm : names) rows.push_back(by[nm]);
  for (const auto& r : rows) {
    std::string label = r.name + (r.round < 0 ? " median" : " #" + std::to_string(r.round + 1));
    double rd = r.shadow_served ? static_cast<double>(r.shadow_volume_reads) / r.shadow_served : 0;
    if (r.round == -1 && &r == &rows[results.size()]) std::printf("%s\n", std::string(118, '-').c_str());
    std::printf("%-19s %8ld %6ld %6ld %10.1f %10.1f %9.1f %9.1f %5d %9.2f %6.0f %10.3f\n",
                label.c_str(), r.requests, r.errors, r.lb_5xx, r.p50_spike, r.p99_spike,
                r.p50_all, r.p99_all, r.activations, r.max_activation_ms, r.first_active_step, rd);
    sum << r.name << "," << (r.round < 0 ? std::string("median") : std::to_string(r.round + 1))
        << "," << r.requests << "," << r.errors << "," << r.lb_5xx << ","
        << r.p50_spike << "," << r.p99_spike << "," << r.p50_all << "," << r.p99_all << ","
        << r.activations << "," << r.deactivations << "," << r.max_activation_ms << ","
        << r.first_active_step << "," << r.shadow_served << "," << r.shadow_volume_reads << "\n";
  }
  std::printf("\nTargets (medians over %d rounds; errors summed; activation: the maximum)\n",
              o.rounds);
  if (by.count("predictive") && by.count("reactive")) {
    const auto& p = by["predictive"];
    const auto& r = by["reactive"];
    double ratio = r.p99_spike > 0 ? p.p99_spike / r.p99_spike : 0;
    std::printf("  p99 during the spike, predictive / reactive = %.1f / %.1f ms = %.3f "
                "(target <= 0.5): %s\n", p.p99_spike, r.p99_spike, ratio,
                ratio <= 0.5 ? "MET" : "NOT MET");
    std::printf("  failed requests, predictive: %ld wrk + %ld HAProxy 5xx (target 0): %s\n",
                p.errors, p.lb_5xx, p.errors + p.lb_5xx == 0 ? "MET" : "NOT MET");
    std::printf("  warm activation, predictive: max %.2f ms (target < 50 ms): %s\n",
                p.max_activation_ms, p.max_activation_ms < 50 ? "MET" : "NOT MET");
  }
  if (by.count("none") && by.count("predictive")) {
    std::printf("  p99 during the spike, predictive / none = %.3f\n",
                by["none"].p99_spike > 0 ? by["predictive"].p99_spike / by["none"].p99_spike : 0);
  }
  if (by.count("predictive") && by.count("predictive-nocache")) {
    const auto& c = by["predictive"];
    const auto& n = by["predictive-nocache"];
    std::printf("  volume reads added by the shadows: %llu with the cache, %llu without "
                "(ratio %.3f)\n", static_cast<unsigned long long>(c.shadow_volume_reads),
                static_cast<unsigned long long>(n.shadow_volume_reads),
                n.shadow_volume_reads ? static_cast<double>(c.shadow_volume_reads) /
                                            n.shadow_volume_reads : 0);
  }
  std::printf("CSV: %s/spike_steps.csv, %s/spike_summary.csv\n", o.out.c_str(), o.out.c_str());
  return 0;
}

}  // namespace
}  // namespace lull::clone::bench

int main(int argc, char** argv) { return lull::clone::bench::Main(argc, argv); }
