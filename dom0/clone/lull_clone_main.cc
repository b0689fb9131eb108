// lull-clone: the predictive-cloning companion of lulld.
//
//   lull-clone serve [--domain web] [--golden FILE] [--dir DIR] [--size N]
//                    [--shadow-vcpus V] [--port P] [--policy predictive|reactive|none]
//                    [--step SECONDS]
//       runs the primary, a pool of N warm shadows and HAProxy on 127.0.0.1:P, and the
//       control loop; answers the verbs below on DIR/control.sock.
//   lull-clone [--socket PATH] clones
//   lull-clone [--socket PATH] clone-pool DOMAIN --size N
// (lullctl forwards its `clones` and `clone-pool` verbs here.)
//
// With --xen, in a Xen dom0, the shadows are paused domains made through libxl from a
// golden xl config (xen_instance.h); the pool lives in Xen, so each call acts on it:
//   lull-clone --xen clone-pool DOMAIN --size N [--golden FILE.cfg] [--shadow-vcpus V]
//                               [--shadow-memory MIB] [--no-warm]
//   lull-clone --xen clones DOMAIN
//   lull-clone --xen activate DOMAIN        (prints the activation time)
//   lull-clone --xen deactivate DOMAIN
//   lull-clone --xen resize DOMAIN SHADOW [--vcpus V] [--memory MIB]
//   lull-clone --xen memshr                 (is xc_memshr_fork available?)
#include <CLI/CLI.hpp>

#include <atomic>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "dom0/cli_checks.h"
#include "dom0/clone/block_cache.h"
#include "dom0/clone/control.h"
#include "dom0/clone/controller.h"
#include "dom0/clone/pool.h"
#include "dom0/clone/xen_instance.h"

namespace {

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }

std::string SelfDir() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : p.parent_path().string();
}

int Fail(const lull::Status& s) {
  std::fprintf(stderr, "lull-clone: %s\n", s.ToString().c_str());
  return 1;
}

std::string ListReply(lull::clone::ShadowPool& pool, const std::string& domain) {
  std::ostringstream o;
  o << "DOMAIN ID SERVER STATE PORT VCPUS PID ACTIVATION_MS\n";
  o << domain << " " << domain << " primary primary " << pool.primary().port() << " "
    << pool.primary().vcpus() << " " << pool.primary().pid() << " -\n";
  for (const auto& c : pool.List()) {
    char ms[32];
    std::snprintf(ms, sizeof ms, "%.2f", c.activation_ms);
    o << domain << " " << c.id << " " << c.server << " " << c.state << " " << c.port << " "
      << c.vcpus << " " << c.pid << " " << (c.activation_ms > 0 ? ms : "-") << "\n";
  }
  return o.str();
}

struct ServeOptions {
  std::string domain = "web", golden, dir = "/tmp/lull-clone", policy = "predictive";
  int size = 2, shadow_vcpus = 0, port = 0;
  double step = 1.0;
};

int Serve(const ServeOptions& o) {
  using namespace lull::clone;
  std::error_code ec;
  std::filesystem::create_directories(o.dir, ec);
  if (ec) return Fail(lull::Status::IoError("cannot create " + o.dir + ": " + ec.message()));
  std::string golden = o.golden;
  if (golden.empty()) {  // a default golden image in the work directory
    GoldenConfig g;
    g.name = o.domain;
    g.volume_path = "volume.img";
    golden = o.dir + "/golden.toml";
    std::ofstream(golden) << g.ToToml();
  }
  GoldenConfig g;
  lull::Status s = LoadGoldenConfig(golden, &g);
  if (!s.ok()) return Fail(s);
  s = EnsureVolume(g.volume_path, g.block_size, 4096);
  if (!s.ok()) return Fail(s);
  Policy policy;
  if (!(s = ParsePolicy(o.policy, &policy)).ok()) return Fail(s);

  PoolConfig pc;
  pc.domain = o.domain;
  pc.dir = o.dir;
  pc.golden_path = golden;
  pc.backend_path = SelfDir() + "/lull-clone-backend";
  pc.shadow_vcpus = o.shadow_vcpus;
  pc.lb.port = o.port;
  ShadowPool pool;
  if (!(s = pool.Start(pc)).ok()) return Fail(s);
  if (!(s = pool.SetSize(o.size)).ok()) return Fail(s);

  SchedulerConfig sc;
  sc.policy = policy;
  sc.step_seconds = o.step;
  sc.primary_rps = pool.primary_capacity_rps();
  sc.per_vcpu_rps = g.per_vcpu_rps();
  sc.shadow_vcpus = pool.shadow_vcpus();
  sc.max_vcpus = g.max_vcpus;
  if (!(s = sc.Validate()).ok()) return Fail(s);
  Controller ctl(&pool, sc, pool.primary_capacity_rps());
  if (!(s = ctl.Begin()).ok()) return Fail(s);

  ControlServer srv;
  if (!(s = srv.Listen(o.dir + "/control.sock")).ok()) return Fail(s);
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  std::printf("lull-clone: %s on http://127.0.0.1:%d, %d warm shadows, policy %s, control %s\n",
              o.domain.c_str(), pool.lb().port(), pool.size(), o.policy.c_str(),
              (o.dir + "/control.sock").c_str());
  std::fflush(stdout);
  auto next = std::chrono::steady_clock::now();
  while (!g_stop) {
    next += std::chrono::microseconds(static_cast<long>(o.step * 1e6));
    for (;;) {
      int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                      next - std::chrono::steady_clock::now()).count());
      if (left <= 0 || g_stop) break;
      srv.Poll(left, [&](const std::string& req) -> std::string {
        std::istringstream in(req);
        std::string verb, dom;
        in >> verb;
        if (verb == "clones") return ListReply(pool, o.domain);
        if (verb == "quit") { g_stop = true; return "ok stopping\n"; }
        if (verb == "clone-pool") {
          // Exactly "clone-pool DOMAIN N": a stray word is an error, not ignored (a
          // client that put "web 5" in DOMAIN would otherwise have set the size to 5).
          std::string size, extra;
          in >> dom >> size >> extra;
          if (dom != o.domain) return "error: no domain '" + dom + "' here (serving " + o.domain + ")\n";
          int n = -1;
          auto [end, ec] = std::from_chars(size.data(), size.data() + size.size(), n);
          if (size.empty() || ec != std::errc() || end != size.data() + size.size() || n < 0 || !extra.empty())
            return "error: expected 'clone-pool " + o.domain + " SIZE' with SIZE a whole number >= 0, got '" +
                   req.substr(0, 80) + "'\n";
          lull::Status r = pool.SetSize(n);
          if (!r.ok()) return "error: " + r.ToString() + "\n";
          return "ok " + o.domain + " pool size " + std::to_string(pool.size()) + "\n";
        }
        return "error: unknown request '" + verb + "' (clones, clone-pool, quit)\n";
      });
    }
    if (g_stop) break;
    StepRecord r;
    s = ctl.Step(&r);
    if (!s.ok()) {
      std::fprintf(stderr, "lull-clone: step: %s\n", s.ToString().c_str());
      continue;
    }
    if (r.active_after != r.active_before || r.activation_ms > 0) {
      std::printf("lull-clone: %.0f rps (forecast %.0f, conf %.2f): shadows %d -> %d %s%s\n",
                  r.measured_rps, r.forecast_rps, r.confidence, r.active_before, r.active_after,
                  r.reason.c_str(),
                  r.activation_ms > 0 ? (" (activated in " + std::to_string(r.activation_ms) +
                                         " ms)").c_str() : "");
      std::fflush(stdout);
    }
  }
  pool.Stop();
  return 0;
}

struct XenOptions {
  std::string domain, golden, shadow;
  int size = -1, shadow_vcpus = 0, shadow_memory = 0, vcpus = 0, memory = 0;
  bool no_warm = false;
};

int XenMain(const std::string& verb, const XenOptions& o) {
  using namespace lull::clone;
  if (verb == "memshr") {
    std::unique_ptr<XenHost> host;
    lull::Status s = XenHost::Open(&host);
    if (!s.ok()) return Fail(s);
    MemshrProbe p = host->ProbeMemshr();
    std::printf("memshr %s errno=%d %s\n", p.available ? "available" : "unavailable", p.err,
                p.detail.c_str());
    return 0;
  }
  XenPoolConfig pc;
  pc.domain = o.domain;
  pc.golden_path = o.golden;
  pc.shadow_vcpus = o.shadow_vcpus;
  pc.shadow_memory_mib = o.shadow_memory;
  pc.warm = !o.no_warm;
  XenShadowPool pool;
  lull::Status s = pool.Open(pc);
  if (!s.ok()) return Fail(s);
  std::string name;
  if (verb == "clone-pool") {
    if (!(s = pool.SetSize(o.size)).ok()) return Fail(s);
  } else if (verb == "activate") {
    double ms = 0;
    if (!(s = pool.Activate(&ms, &name)).ok()) return Fail(s);
    std::printf("activated %s in %.3f ms\n", name.c_str(), ms);
    return 0;
  } else if (verb == "deactivate") {
    if (!(s = pool.Deactivate(&name)).ok()) return Fail(s);
    std::printf("deactivated %s (paused)\n", name.c_str());
    return 0;
  } else if (verb == "resize") {
    if (o.vcpus <= 0 && o.memory <= 0)
      return Fail(lull::Status::InvalidArgument("resize needs --vcpus and/or --memory"));
    if (!(s = pool.Resize(o.shadow, o.vcpus, o.memory)).ok()) return Fail(s);
  }
  std::vector<XenDomainInfo> list;
  if (!(s = pool.List(&list)).ok()) return Fail(s);
  std::printf("DOMAIN SHADOW DOMID STATE VCPUS MAX_VCPUS MEMORY_MIB\n");
  for (const auto& d : list)
    std::printf("%s %s %u %s %d %d %llu\n", o.domain.c_str(), d.name.c_str(), d.domid,
                d.state.c_str(), d.vcpus_online, d.max_vcpus,
                static_cast<unsigned long long>(d.memory_kib / 1024));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"lull-clone: predictive cloning, a warm shadow pool behind HAProxy"};
  app.require_subcommand(1);
  const char* env = std::getenv("LULL_CLONE_SOCKET");
  std::string sock = env ? env : "/tmp/lull-clone/control.sock";
  app.add_option("--socket", sock, "control socket of `lull-clone serve`");

  ServeOptions so;
  auto* serve = app.add_subcommand("serve", "run the primary, the shadow pool and HAProxy");
  serve->add_option("--domain", so.domain, "primary's name");
  serve->add_option("--golden", so.golden, "golden config (TOML; default: one is written)");
  serve->add_option("--dir", so.dir, "work directory (sockets, logs, volume)");
  serve->add_option("--size", so.size, "warm shadows to keep")->check(CLI::Range(0, 64));
  serve->add_option("--shadow-vcpus", so.shadow_vcpus, "shadow profile (0 = golden vcpus)")
      ->check(CLI::Range(0, 128));
  // Checked here so a bad value is named, not found later as "haproxy exited at start".
  serve->add_option("--port", so.port, "HAProxy frontend port on 127.0.0.1 (0 = any)")
      ->check(CLI::Range(0, 65535));
  serve->add_option("--policy", so.policy, "predictive, reactive or none")
      ->check(CLI::IsMember({"predictive", "reactive", "none"}));
  // At least 10 ms: a smaller step only spins the loop (1e-300 never slept).
  serve->add_option("--step", so.step, "control step in seconds")->check(lull::dom0::FiniteRange(0.01, 3600));

  bool xen = false;
  app.add_flag("--xen", xen, "shadows are Xen domains (libxl), not processes; see the header");
  XenOptions xo;
  auto* cl = app.add_subcommand("clones", "list the shadows (state, vCPUs, last activation time)");
  cl->add_option("DOMAIN", xo.domain, "the primary (--xen only)");
  std::string domain;
  int size = -1;
  auto* cp = app.add_subcommand("clone-pool", "set the number of warm shadows of DOMAIN");
  cp->add_option("DOMAIN", domain, "the primary")->required();
  cp->add_option("--size", size, "shadows to keep warm")->required()->check(CLI::Range(0, 64));
  cp->add_option("--golden", xo.golden, "--xen: the golden xl config (needed to grow)");
  cp->add_option("--shadow-vcpus", xo.shadow_vcpus, "--xen: shadow vCPUs (0 = golden)")->check(CLI::Range(0, 128));
  cp->add_option("--shadow-memory", xo.shadow_memory, "--xen: shadow MiB (0 = golden)")->check(CLI::Range(0, 1 << 20));
  cp->add_flag("--no-warm", xo.no_warm, "--xen: leave new shadows paused before boot");
  auto* act = app.add_subcommand("activate", "--xen: unpause an idle shadow of DOMAIN");
  act->add_option("DOMAIN", xo.domain, "the primary")->required();
  auto* deact = app.add_subcommand("deactivate", "--xen: pause the newest active shadow of DOMAIN");
  deact->add_option("DOMAIN", xo.domain, "the primary")->required();
  auto* rs = app.add_subcommand("resize", "--xen: set a shadow's vCPUs and/or memory");
  rs->add_option("DOMAIN", xo.domain, "the primary")->required();
  rs->add_option("SHADOW", xo.shadow, "the shadow domain's name")->required();
  rs->add_option("--vcpus", xo.vcpus, "vCPUs online")->check(CLI::Range(1, 128));
  rs->add_option("--memory", xo.memory, "memory target in MiB")->check(CLI::Range(16, 1 << 20));
  auto* ms = app.add_subcommand("memshr", "--xen: report whether VM forks (xc_memshr_fork) work here");

  CLI11_PARSE(app, argc, argv);
  for (auto* sub : {act, deact, rs, ms}) {
    if (sub->parsed() && !xen)
      return Fail(lull::Status::InvalidArgument(sub->get_name() + " needs --xen (process shadows are "
                                                "activated by `serve`'s control loop)"));
  }
  if (xen) {
    if (serve->parsed())
      return Fail(lull::Status::InvalidArgument("serve is the process pool's; with --xen use "
                                                "clone-pool, clones, activate, deactivate, resize"));
    if (cp->parsed()) {
      xo.domain = domain;
      xo.size = size;
    }
    if (cl->parsed() && xo.domain.empty())
      return Fail(lull::Status::InvalidArgument("clones with --xen needs DOMAIN"));
    std::string verb = app.get_subcommands().front()->get_name();
    return XenMain(verb, xo);
  }
  if (serve->parsed()) {
    if (so.golden.empty() == false && !std::filesystem::exists(so.golden)) {
      return Fail(lull::Status::NotFound("golden config " + so.golden + " does not exist"));
    }
    if (so.dir.empty() == false) sock = so.dir + "/control.sock";
    return Serve(so);
  }
  // The protocol is words; a name with a space would smuggle words in.
  if (cp->parsed() && !lull::clone::ValidInstanceName(domain))
    return Fail(lull::Status::InvalidArgument("DOMAIN '" + domain + "' is not a name of 1-32 characters "
                                              "of [A-Za-z0-9_-]"));
  std::string req = app.got_subcommand("clones") ? "clones"
                                                 : "clone-pool " + domain + " " + std::to_string(size);
  std::string reply;
  lull::Status s = lull::clone::ControlCall(sock, req, &reply);
  if (!s.ok()) return Fail(s);
  std::fputs(reply.c_str(), reply.rfind("error: ", 0) == 0 ? stderr : stdout);
  return reply.rfind("error: ", 0) == 0 ? 1 : 0;
}
