// lull-migrate: the migration module's command line (lullctl dispatches `lullctl migrate
// ...` here; see docs/migrate.md).
//
//   lull-migrate serve [--bind ADDR] [--port N] [--mem-limit MIB] [--memory-only] [--io-timeout S]
//                                                                   (prints the port)
//   lull-migrate guest --mib N [--workload "rate=2000 hot=0.1 write=64"]
//   lull-migrate migrate DOMAIN HOST[:PORT] [--when-idle] [--no-xbzrle] [--no-lz4]
//                        [--max-downtime MS] [--max-seconds S] [--rate-limit MBIT]
//                        [--redirect-haproxy SOCKET BACKEND/SERVER ADDR:PORT]
//                        [--verify-memory] [--io-timeout S]
//   lull-migrate migrate --xen DOMID HOST[:PORT] [--xen-release destroy|pause|unpause]
//                        [--dirty auto|logdirty|scan] ...
//   lull-migrate dirty --xen DOMID [--interval MS] [--count N] [--dirty auto|logdirty|scan]
//                        the engine's dirty tracking of a Xen domain: pages written and
//                        CPU time used in each interval, one line each
//   lull-migrate reserve HOST[:PORT] MIB [--ttl S]
//   lull-migrate release HOST[:PORT] ID
//
// DOMAIN is the pid of a process guest (started by `lull-migrate guest`); with --xen, a
// Xen PV domain's id (XenGuestMemory: log-dirty + foreign mapping, run in dom0 as root).
// After a committed Xen migration the source domain is paused by default (`xl destroy`
// it once the guest runs on the target), or destroyed / unpaused (--xen-release).
// `serve --memory-only` receives guests into plain memory and starts nothing: a target
// for Xen guests here, where no domain builder takes an incoming PV guest.
// Exit status: 0 done, 1 the operation failed (the message says why), 2 bad usage.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "dom0/migrate/process_guest.h"
#include "dom0/migrate/redirect.h"
#include "dom0/migrate/source.h"
#include "dom0/migrate/target.h"
#include "dom0/migrate/when_idle.h"
#include "dom0/migrate/wire.h"
#include "dom0/migrate/xen_guest.h"

namespace {

using namespace lull::migrate;

constexpr uint16_t kDefaultPort = 7411;
std::atomic<bool> g_stop{false};

int Usage(const char* why) {
  std::fprintf(stderr,
               "lull-migrate: %s\n"
               "usage:\n"
               "  lull-migrate serve [--bind ADDR] [--port N] [--mem-limit MIB] [--memory-only] [--io-timeout S]\n"
               "  lull-migrate guest --mib N [--workload \"rate=2000 hot=0.1 write=64\"]\n"
               "  lull-migrate migrate DOMAIN HOST[:PORT] [--when-idle] [--no-xbzrle] [--no-lz4]\n"
               "                       [--max-downtime MS] [--max-seconds S] [--rate-limit MBIT]\n"
               "                       [--redirect-haproxy SOCKET BACKEND/SERVER ADDR:PORT]\n"
               "                       [--verify-memory] [--io-timeout S]\n"
               "  lull-migrate migrate --xen DOMID HOST[:PORT] [--xen-release destroy|pause|unpause]\n"
               "                       [--dirty auto|logdirty|scan]\n"
               "                       [the options above]\n"
               "  lull-migrate dirty --xen DOMID [--interval MS] [--count N] [--dirty auto|logdirty|scan]\n"
               "  lull-migrate reserve HOST[:PORT] MIB [--ttl S]\n"
               "  lull-migrate release HOST[:PORT] ID\n",
               why);
  return 2;
}

int Fail(const lull::Status& s) {
  std::fprintf(stderr, "lull-migrate: %s\n", s.ToString().c_str());
  return 1;
}

// Argument `what`'s value as a finite decimal number in [lo, hi]; false after a message
// naming it. strtod alone took "inf", "0x10" (hex) and, cast to a count, truncated
// 7499.9 to 7499 and 0.5 MiB to 0.
bool Number(const char* what, const std::string& v, double lo, double hi, double* out) {
  char* end = nullptr;
  const double d = std::strtod(v.c_str(), &end);
  if (!v.empty() && !*end && v.find_first_of("xXnN") == std::string::npos && d >= lo && d <= hi) {
    *out = d;
    return true;
  }
  std::fprintf(stderr, "lull-migrate: %s '%s' is not a number in [%.10g, %.10g]\n", what, v.c_str(), lo, hi);
  return false;
}

// Argument `what`'s value as a whole number (digits only) in [lo, hi].
bool Whole(const char* what, const std::string& v, uint64_t lo, uint64_t hi, uint64_t* out) {
  uint64_t x = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
  if (!v.empty() && ec == std::errc() && end == v.data() + v.size() && x >= lo && x <= hi) {
    *out = x;
    return true;
  }
  std::fprintf(stderr, "lull-migrate: %s '%s' is not a whole number in [%llu, %llu]\n", what, v.c_str(),
               (unsigned long long)lo, (unsigned long long)hi);
  return false;
}

// Bounds. A timeout below 1 ms would truncate to 0 ms, which means "none"; MiB counts
// are shifted left by 20 into bytes, so 2^24 MiB (16 TiB) keeps them far inside 64 bits;
// a reservation's ttl travels in uint32 milliseconds (49 days).
constexpr double kMinTimeoutS = 0.001, kMaxTimeoutS = 86400;
constexpr uint64_t kMaxMib = uint64_t{1} << 24;
constexpr double kMaxTtlS = 4294967.295;

// Runs `factory`'s server until SIGINT/SIGTERM; `take_arrivals` reports and keeps the
// guests that arrived (called every 200 ms).
int RunServer(GuestFactory* factory, const ServerOptions& so, const char* what,
              const std::function<void()>& take_arrivals) {
  std::unique_ptr<MigrationServer> server;
  if (auto s = MigrationServer::Start(factory, so, &server); !s.ok()) return Fail(s);
  std::printf("serving migrations on %s:%u (memory limit %llu MiB); %s\n", so.bind.c_str(),
              server->port(), (unsigned long long)(so.memory_limit_bytes >> 20), what);
  std::fflush(stdout);
  ServerStats last;
  while (!g_stop) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    take_arrivals();
    ServerStats st = server->stats();
    if (st.failed != last.failed)
      std::printf("migration failed and rolled back: %s\n", st.last_error.c_str());
    last = st;
    std::fflush(stdout);
  }
  server->Stop();
  return 0;
}

int Serve(const std::vector<std::string>& a) {
  ServerOptions so;
  so.port = kDefaultPort;
  bool memory_only = false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] == "--bind" && i + 1 < a.size()) so.bind = a[++i];
    else if (a[i] == "--memory-only") memory_only = true;
    else if (a[i] == "--io-timeout" && i + 1 < a.size()) {
      double t = 0;
      if (!Number("--io-timeout (seconds)", a[++i], kMinTimeoutS, kMaxTimeoutS, &t)) return 2;
      so.io_timeout_ms = static_cast<int>(t * 1000);
    }
    else if (a[i] == "--port" && i + 1 < a.size()) {
      uint64_t p = 0;
      if (!Whole("--port (0: any free port)", a[++i], 0, 65535, &p)) return 2;
      so.port = static_cast<uint16_t>(p);
    } else if (a[i] == "--mem-limit" && i + 1 < a.size()) {
      uint64_t m = 0;
      if (!Whole("--mem-limit (MiB)", a[++i], 1, kMaxMib, &m)) return 2;
      so.memory_limit_bytes = m << 20;
    } else {
      return Usage(("serve: unknown argument '" + a[i] + "'").c_str());
    }
  }
  if (memory_only) {
    // Memory only, each guest checksummed on arrival (a target for Xen guests here).
    ReceivedMemoryFactory factory;
    std::vector<std::unique_ptr<ReceivedGuest>> kept;
    return RunServer(&factory, so, "memory only: guests that arrive are kept in memory, not started", [&] {
      while (auto g = factory.TakeCommitted()) {
        std::printf("guest arrived: %zu MiB, \"%s\", memory xxh3 %016llx\n",
                    g->pages * g->page_size >> 20, g->description.c_str(),
                    (unsigned long long)MemoryHash(g->data, g->pages * g->page_size));
        kept.push_back(std::move(g));
      }
    });
  }
  ProcessGuestFactory factory;
  std::vector<std::unique_ptr<ProcessGuest>> running;
  return RunServer(&factory, so, "guests that arrive run until this server stops", [&] {
    while (auto g = factory.TakeStarted()) {
      std::printf("guest arrived: pid %d, %zu MiB, workload \"%s\"\n", g->pid(),
                  g->pages() * g->page_size() >> 20, g->Describe().c_str());
      running.push_back(std::move(g));
    }
  });
}

int Guest(const std::vector<std::string>& a) {
  uint64_t mib = 0;
  std::string workload = "rate=2000 hot=0.1";
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] == "--mib" && i + 1 < a.size()) {
      if (!Whole("--mib", a[++i], 1, kMaxMib, &mib)) return 2;
    } else if (a[i] == "--workload" && i + 1 < a.size()) workload = a[++i];
    else return Usage(("guest: unknown argument '" + a[i] + "'").c_str());
  }
  if (mib == 0) return Usage("guest: --mib N (N > 0) is required");
  WorkloadConfig w;
  if (auto s = WorkloadConfig::Parse(workload, &w); !s.ok()) return Fail(s);
  std::unique_ptr<ProcessGuest> g;
  if (auto s = ProcessGuest::Spawn(static_cast<size_t>(mib << 20), w, FillConfig{}, &g); !s.ok())
    return Fail(s);
  std::printf("%d\n", g->pid());  // the DOMAIN to give `migrate`
  std::fflush(stdout);
  while (!g_stop && !g->Exited()) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  return 0;
}

int MigrateCmd(std::vector<std::string> a) {
  // --xen DOMID in place of DOMAIN: a Xen PV domain.
  bool xen = false;
  uint32_t domid = 0;
  if (!a.empty() && a[0] == "--xen") {
    if (a.size() < 2) return Usage("migrate: --xen needs a domain id");
    if (auto s = lull::xen::ParseDomid(a[1], &domid); !s.ok()) return Usage(s.message().c_str());
    xen = true;
    a.erase(a.begin());
  }
  if (a.size() < 2) return Usage("migrate: DOMAIN and HOST[:PORT] are required");
  char* end = nullptr;
  long pid = xen ? 0 : std::strtol(a[0].c_str(), &end, 10);
  if (!xen && (a[0].empty() || *end || pid <= 0))
    return Usage(("migrate: DOMAIN '" + a[0] + "' is not a process guest's pid").c_str());
  auto xen_release = XenGuestMemory::OnRelease::kKeepPaused;
  auto dirty_mode = XenGuestMemory::DirtyMode::kAuto;
  std::string host;
  uint16_t port;
  if (auto s = ParseHostPort(a[1], kDefaultPort, &host, &port); !s.ok()) return Fail(s);
  MigrateOptions o;
  bool when_idle = false;
  for (size_t i = 2; i < a.size(); ++i) {
    if (a[i] == "--when-idle") when_idle = true;
    else if (a[i] == "--verify-memory") o.verify_memory = true;
    else if (a[i] == "--io-timeout" && i + 1 < a.size()) {
      double t = 0;
      if (!Number("--io-timeout (seconds)", a[++i], kMinTimeoutS, kMaxTimeoutS, &t)) return 2;
      o.io_timeout_ms = static_cast<int>(t * 1000);
    }
    else if (a[i] == "--dirty" && i + 1 < a.size() && xen) {
      if (auto s = XenGuestMemory::ParseDirtyMode(a[++i], &dirty_mode); !s.ok()) return Usage(s.message().c_str());
    } else if (a[i] == "--xen-release" && i + 1 < a.size() && xen) {
      const std::string& r = a[++i];
      if (r == "destroy") xen_release = XenGuestMemory::OnRelease::kDestroy;
      else if (r == "pause") xen_release = XenGuestMemory::OnRelease::kKeepPaused;
      else if (r == "unpause") xen_release = XenGuestMemory::OnRelease::kUnpause;
      else return Usage(("--xen-release '" + r + "' is not destroy, pause or unpause").c_str());
    }
    else if (a[i] == "--no-xbzrle") o.xbzrle = false;
    else if (a[i] == "--no-lz4") o.lz4 = false;
    else if (a[i] == "--max-downtime" && i + 1 < a.size()) {
      if (!Number("--max-downtime (ms)", a[++i], 0, 1e7, &o.max_downtime_ms)) return 2;
    } else if (a[i] == "--max-seconds" && i + 1 < a.size()) {
      if (!Number("--max-seconds", a[++i], 0, 1e7, &o.max_seconds)) return 2;
    } else if (a[i] == "--rate-limit" && i + 1 < a.size()) {
      double m = 0;
      if (!Number("--rate-limit (Mbit/s)", a[++i], 0, 1e7, &m)) return 2;
      o.rate_limit_bytes_per_s = static_cast<uint64_t>(m * 1e6 / 8);
    } else if (a[i] == "--redirect-haproxy" && i + 3 < a.size()) {
      std::string sock = a[i + 1], server = a[i + 2], raddr;
      uint16_t rport;
      if (auto s = ParseHostPort(a[i + 3], 0, &raddr, &rport); !s.ok() || rport == 0)
        return Usage("--redirect-haproxy SOCKET BACKEND/SERVER ADDR:PORT");
      i += 3;
      o.redirect = [sock, server, raddr, rport] { return HaproxyRedirect(sock, server, raddr, rport); };
    } else {
      return Usage(("migrate: unknown argument '" + a[i] + "'").c_str());
    }
  }
  std::unique_ptr<ProcessGuest> pg;
  std::unique_ptr<lull::xen::XenCalls> xc;
  std::unique_ptr<XenGuestMemory> xg;
  GuestMemory* g = nullptr;
  if (xen) {
    if (auto s = lull::xen::OpenXen(&xc); !s.ok()) return Fail(s);
    // The engine leaves the source paused; what --xen-release asks for happens below,
    // after the source's memory hash is printed.
    if (auto s = XenGuestMemory::Open(xc.get(), domid, XenGuestMemory::OnRelease::kKeepPaused, &xg,
                                      dirty_mode);
        !s.ok())
      return Fail(s);
    g = xg.get();
    std::printf("xen domain %u: %zu pages mapped (%llu with a frame), dirty tracking: %s\n", domid,
                xg->pages(), (unsigned long long)xg->memory()->present_pages(), xg->tracking_note().c_str());
  } else {
    if (auto s = ProcessGuest::Attach(static_cast<pid_t>(pid), &pg); !s.ok()) return Fail(s);
    g = pg.get();
  }
  if (when_idle) {
    WhenIdleOptions wo;
    if (pg) {
      wo.planner.max_rate = std::max<double>(1, double(pg->workload().rate));
      for (const Phase& p : pg->workload().phases)
        wo.planner.max_rate = std::max(wo.planner.max_rate, double(p.rate));
    } else {
      // No workload description for a Xen guest: a quarter of its pages a second.
      wo.planner.max_rate = std::max<double>(1, double(g->pages()) / 4);
    }
    wo.planner.max_wait_steps = 1500;  // 10 minutes at 400 ms
    wo.on_step = [](MigrationPlanner::Action act, double rate) {
      if (act != MigrationPlanner::Action::kWait)
        std::printf("when-idle: %s (dirty rate %.0f pages/s)\n", MigrationPlanner::ActionName(act), rate);
    };
    WhenIdleResult wr;
    std::printf("when-idle: learning the guest's dirty rate, waiting for a predicted lull\n");
    if (auto s = WaitForLull(g, host, port, wo, &wr); !s.ok()) return Fail(s);
    std::printf("when-idle: %s after %.1f s\n", wr.deadline ? "deadline reached" : "lull predicted",
                wr.waited_s);
    o.reservation = wr.reservation;
  }
  o.progress = [](const Progress& p) {
    std::printf("%-9s round %2d  dirty %8llu pages  sent %8llu pages  %8.1f MiB  %7.2f s\n", p.phase,
                p.round, (unsigned long long)p.dirty_pages, (unsigned long long)p.pages_sent,
                double(p.wire_bytes) / (1 << 20), p.elapsed_ms / 1e3);
    std::fflush(stdout);
  };
  MigrateStats st;
  lull::Status s = Migrate(g, host, port, o, &st);
  std::printf("%s\n", st.ToString().c_str());
  if (!s.ok()) {
    std::fprintf(stderr, "lull-migrate: migration failed, the guest keeps running here: %s\n",
                 s.ToString().c_str());
    return 1;
  }
  if (!st.redirect_error.empty())
    std::fprintf(stderr, "lull-migrate: the guest moved, but redirecting clients failed: %s\n",
                 st.redirect_error.c_str());
  if (xen) {
    std::printf("source memory xxh3 %016llx\n",
                (unsigned long long)MemoryHash(xg->data(), xg->pages() * xg->page_size()));
    lull::Status r;
    if (xen_release == XenGuestMemory::OnRelease::kDestroy) r = xg->memory()->Destroy();
    else if (xen_release == XenGuestMemory::OnRelease::kUnpause) r = xg->memory()->Unpause();
    if (!r.ok()) std::fprintf(stderr, "lull-migrate: releasing the source: %s\n", r.ToString().c_str());
    std::printf("migrated: xen domain %u's memory is on %s:%u (source %s)\n", domid, host.c_str(), port,
                xen_release == XenGuestMemory::OnRelease::kDestroy ? "destroyed"
                : xen_release == XenGuestMemory::OnRelease::kUnpause ? "unpaused" : "left paused");
    return 0;
  }
  pg->Kill();  // the source copy (already released by the engine)
  std::printf("migrated: guest %ld now runs on %s:%u\n", pid, host.c_str(), port);
  return 0;
}

// What the engine's dirty tracking sees of a Xen domain, interval by interval.
int DirtyCmd(const std::vector<std::string>& a) {
  uint32_t domid = 0;
  bool have = false;
  double interval_ms = 1000;
  uint64_t count = 10;
  auto mode = XenGuestMemory::DirtyMode::kAuto;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] == "--xen" && i + 1 < a.size()) {
      if (auto s = lull::xen::ParseDomid(a[++i], &domid); !s.ok()) return Usage(s.message().c_str());
      have = true;
    } else if (a[i] == "--interval" && i + 1 < a.size()) {
      if (!Number("--interval (ms)", a[++i], 1, 3.6e6, &interval_ms)) return 2;
    } else if (a[i] == "--dirty" && i + 1 < a.size()) {
      if (auto s = XenGuestMemory::ParseDirtyMode(a[++i], &mode); !s.ok()) return Usage(s.message().c_str());
    } else if (a[i] == "--count" && i + 1 < a.size()) {
      if (!Whole("--count", a[++i], 1, 1000000, &count)) return 2;
    } else {
      return Usage(("dirty: unknown argument '" + a[i] + "'").c_str());
    }
  }
  if (!have) return Usage("dirty: --xen DOMID is required");
  std::unique_ptr<lull::xen::XenCalls> xc;
  if (auto s = lull::xen::OpenXen(&xc); !s.ok()) return Fail(s);
  std::unique_ptr<XenGuestMemory> g;
  if (auto s = XenGuestMemory::Open(xc.get(), domid, XenGuestMemory::OnRelease::kUnpause, &g, mode); !s.ok())
    return Fail(s);
  std::printf("dirty tracking of xen domain %u: %s\n", domid, g->tracking_note().c_str());
  std::vector<uint32_t> dirty;
  if (auto s = g->CollectDirty(&dirty); !s.ok()) return Fail(s);  // starts tracking
  lull::xen::DomainInfo before, after;
  if (auto s = g->memory()->Info(&before); !s.ok()) return Fail(s);
  auto last = std::chrono::steady_clock::now();
  for (uint64_t i = 0; i < count && !g_stop; ++i) {
    std::this_thread::sleep_for(std::chrono::microseconds(int64_t(interval_ms * 1000)));
    if (auto s = g->CollectDirty(&dirty); !s.ok()) return Fail(s);
    if (auto s = g->memory()->Info(&after); !s.ok()) return Fail(s);
    const auto now = std::chrono::steady_clock::now();
    std::printf("interval %llu: dirty %zu pages, cpu %.0f ms, wall %.0f ms%s\n", (unsigned long long)i, dirty.size(),
                double(after.cpu_time_ns - before.cpu_time_ns) / 1e6,
                std::chrono::duration<double, std::milli>(now - last).count(), after.paused ? " (paused)" : "");
    last = now;
    std::fflush(stdout);
    before = after;
  }
  return 0;
}

int ReserveCmd(const std::vector<std::string>& a) {
  if (a.size() < 2) return Usage("reserve: HOST[:PORT] MIB are required");
  std::string host;
  uint16_t port;
  if (auto s = ParseHostPort(a[0], kDefaultPort, &host, &port); !s.ok()) return Fail(s);
  uint64_t mib = 0;
  double ttl = 60;
  if (!Whole("MIB", a[1], 1, kMaxMib, &mib)) return 2;
  for (size_t i = 2; i < a.size(); ++i) {
    if (a[i] == "--ttl" && i + 1 < a.size()) {
      if (!Number("--ttl (seconds)", a[++i], 0, kMaxTtlS, &ttl)) return 2;
    } else {
      return Usage(("reserve: unknown argument '" + a[i] + "'").c_str());
    }
  }
  uint64_t id;
  if (auto s = Reserve(host, port, mib << 20, static_cast<uint32_t>(ttl * 1000), &id);
      !s.ok())
    return Fail(s);
  std::printf("%llu\n", (unsigned long long)id);
  return 0;
}

int ReleaseCmd(const std::vector<std::string>& a) {
  if (a.size() != 2) return Usage("release: HOST[:PORT] ID are required");
  std::string host;
  uint16_t port;
  if (auto s = ParseHostPort(a[0], kDefaultPort, &host, &port); !s.ok()) return Fail(s);
  uint64_t id = 0;
  if (!Whole("ID", a[1], 0, UINT64_MAX, &id)) return 2;
  if (auto s = ReleaseReservation(host, port, id); !s.ok()) return Fail(s);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return Usage("no command");
  signal(SIGINT, [](int) { g_stop = true; });
  signal(SIGTERM, [](int) { g_stop = true; });
  std::string cmd = argv[1];
  std::vector<std::string> a(argv + 2, argv + argc);
  if (cmd == "serve") return Serve(a);
  if (cmd == "guest") return Guest(a);
  if (cmd == "migrate") return MigrateCmd(a);
  if (cmd == "dirty") return DirtyCmd(a);
  if (cmd == "reserve") return ReserveCmd(a);
  if (cmd == "release") return ReleaseCmd(a);
  return Usage(("unknown command '" + cmd + "'").c_str());
}
