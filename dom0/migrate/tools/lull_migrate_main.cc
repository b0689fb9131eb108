// lull-migrate: the migration module's command line (lullctl dispatches `lullctl migrate
// ...` here; see docs/migrate.md).
//
//   lull-migrate serve [--bind ADDR] [--port N] [--mem-limit MIB]   (prints the port)
//   lull-migrate guest --mib N [--workload "rate=2000 hot=0.1 write=64"]
//   lull-migrate migrate DOMAIN HOST[:PORT] [--when-idle] [--no-xbzrle] [--no-lz4]
//                        [--max-downtime MS] [--max-seconds S] [--rate-limit MBIT]
//                        [--redirect-haproxy SOCKET BACKEND/SERVER ADDR:PORT]
//   lull-migrate reserve HOST[:PORT] MIB [--ttl S]
//   lull-migrate release HOST[:PORT] ID
//
// DOMAIN is the pid of a process guest (started by `lull-migrate guest`); Xen domains
// need the Xen GuestMemory (log-dirty + foreign mapping), which is not written yet.
// Exit status: 0 done, 1 the operation failed (the message says why), 2 bad usage.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "dom0/migrate/process_guest.h"
#include "dom0/migrate/redirect.h"
#include "dom0/migrate/source.h"
#include "dom0/migrate/target.h"
#include "dom0/migrate/when_idle.h"
#include "dom0/migrate/wire.h"

namespace {

using namespace lull::migrate;

constexpr uint16_t kDefaultPort = 7411;
std::atomic<bool> g_stop{false};

int Usage(const char* why) {
  std::fprintf(stderr,
               "lull-migrate: %s\n"
               "usage:\n"
               "  lull-migrate serve [--bind ADDR] [--port N] [--mem-limit MIB]\n"
               "  lull-migrate guest --mib N [--workload \"rate=2000 hot=0.1 write=64\"]\n"
               "  lull-migrate migrate DOMAIN HOST[:PORT] [--when-idle] [--no-xbzrle] [--no-lz4]\n"
               "                       [--max-downtime MS] [--max-seconds S] [--rate-limit MBIT]\n"
               "                       [--redirect-haproxy SOCKET BACKEND/SERVER ADDR:PORT]\n"
               "  lull-migrate reserve HOST[:PORT] MIB [--ttl S]\n"
               "  lull-migrate release HOST[:PORT] ID\n",
               why);
  return 2;
}

int Fail(const lull::Status& s) {
  std::fprintf(stderr, "lull-migrate: %s\n", s.ToString().c_str());
  return 1;
}

// A non-negative number from argument `what`, or -1 (after a message).
double Number(const char* what, const char* v) {
  char* end = nullptr;
  double d = std::strtod(v, &end);
  if (!*v || *end || !(d >= 0)) {
    std::fprintf(stderr, "lull-migrate: %s '%s' is not a non-negative number\n", what, v);
    return -1;
  }
  return d;
}

int Serve(const std::vector<std::string>& a) {
  ServerOptions so;
  so.port = kDefaultPort;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] == "--bind" && i + 1 < a.size()) so.bind = a[++i];
    else if (a[i] == "--port" && i + 1 < a.size()) {
      double p = Number("--port", a[++i].c_str());
      if (p < 0 || p > 65535) return Usage("--port must be in 0..65535 (0: any free port)");
      so.port = static_cast<uint16_t>(p);
    } else if (a[i] == "--mem-limit" && i + 1 < a.size()) {
      double m = Number("--mem-limit", a[++i].c_str());
      if (m <= 0) return Usage("--mem-limit must be a positive number of MiB");
      so.memory_limit_bytes = static_cast<uint64_t>(m) << 20;
    } else {
      return Usage(("serve: unknown argument '" + a[i] + "'").c_str());
    }
  }
  ProcessGuestFactory factory;
  std::unique_ptr<MigrationServer> server;
  if (auto s = MigrationServer::Start(&factory, so, &server); !s.ok()) return Fail(s);
  std::printf("serving migrations on %s:%u (memory limit %llu MiB); guests that arrive run "
              "until this server stops\n",
              so.bind.c_str(), server->port(), (unsigned long long)(so.memory_limit_bytes >> 20));
  std::fflush(stdout);
  std::vector<std::unique_ptr<ProcessGuest>> running;
  ServerStats last;
  while (!g_stop) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    while (auto g = factory.TakeStarted()) {
      std::printf("guest arrived: pid %d, %zu MiB, workload \"%s\"\n", g->pid(),
                  g->pages() * g->page_size() >> 20, g->Describe().c_str());
      running.push_back(std::move(g));
    }
    ServerStats st = server->stats();
    if (st.failed != last.failed)
      std::printf("migration failed and rolled back: %s\n", st.last_error.c_str());
    last = st;
    std::fflush(stdout);
  }
  server->Stop();
  return 0;
}

int Guest(const std::vector<std::string>& a) {
  double mib = 0;
  std::string workload = "rate=2000 hot=0.1";
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] == "--mib" && i + 1 < a.size()) mib = Number("--mib", a[++i].c_str());
    else if (a[i] == "--workload" && i + 1 < a.size()) workload = a[++i];
    else return Usage(("guest: unknown argument '" + a[i] + "'").c_str());
  }
  if (mib <= 0) return Usage("guest: --mib N (N > 0) is required");
  WorkloadConfig w;
  if (auto s = WorkloadConfig::Parse(workload, &w); !s.ok()) return Fail(s);
  std::unique_ptr<ProcessGuest> g;
  if (auto s = ProcessGuest::Spawn(static_cast<size_t>(mib) << 20, w, FillConfig{}, &g); !s.ok())
    return Fail(s);
  std::printf("%d\n", g->pid());  // the DOMAIN to give `migrate`
  std::fflush(stdout);
  while (!g_stop && !g->Exited()) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  return 0;
}

int MigrateCmd(const std::vector<std::string>& a) {
  if (a.size() < 2) return Usage("migrate: DOMAIN and HOST[:PORT] are required");
  char* end = nullptr;
  long pid = std::strtol(a[0].c_str(), &end, 10);
  if (a[0].empty() || *end || pid <= 0)
    return Usage(("migrate: DOMAIN '" + a[0] + "' is not a process guest's pid").c_str());
  std::string host;
  uint16_t port;
  if (auto s = ParseHostPort(a[1], kDefaultPort, &host, &port); !s.ok()) return Fail(s);
  MigrateOptions o;
  bool when_idle = false;
  for (size_t i = 2; i < a.size(); ++i) {
    if (a[i] == "--when-idle") when_idle = true;
    else if (a[i] == "--no-xbzrle") o.xbzrle = false;
    else if (a[i] == "--no-lz4") o.lz4 = false;
    else if (a[i] == "--max-downtime" && i + 1 < a.size()) {
      if ((o.max_downtime_ms = Number("--max-downtime", a[++i].c_str())) < 0) return 2;
    } else if (a[i] == "--max-seconds" && i + 1 < a.size()) {
      if ((o.max_seconds = Number("--max-seconds", a[++i].c_str())) < 0) return 2;
    } else if (a[i] == "--rate-limit" && i + 1 < a.size()) {
      double m = Number("--rate-limit", a[++i].c_str());
      if (m < 0) return 2;
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
  std::unique_ptr<ProcessGuest> g;
  if (auto s = ProcessGuest::Attach(static_cast<pid_t>(pid), &g); !s.ok()) return Fail(s);
  if (when_idle) {
    WhenIdleOptions wo;
    wo.planner.max_rate = std::max<double>(1, double(g->workload().rate));
    for (const Phase& p : g->workload().phases)
      wo.planner.max_rate = std::max(wo.planner.max_rate, double(p.rate));
    wo.planner.max_wait_steps = 1500;  // 10 minutes at 400 ms
    wo.on_step = [](MigrationPlanner::Action act, double rate) {
      if (act != MigrationPlanner::Action::kWait)
        std::printf("when-idle: %s (dirty rate %.0f pages/s)\n", MigrationPlanner::ActionName(act), rate);
    };
    WhenIdleResult wr;
    std::printf("when-idle: learning the guest's dirty rate, waiting for a predicted lull\n");
    if (auto s = WaitForLull(g.get(), host, port, wo, &wr); !s.ok()) return Fail(s);
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
  lull::Status s = Migrate(g.get(), host, port, o, &st);
  std::printf("%s\n", st.ToString().c_str());
  if (!s.ok()) {
    std::fprintf(stderr, "lull-migrate: migration failed, the guest keeps running here: %s\n",
                 s.ToString().c_str());
    return 1;
  }
  if (!st.redirect_error.empty())
    std::fprintf(stderr, "lull-migrate: the guest moved, but redirecting clients failed: %s\n",
                 st.redirect_error.c_str());
  g->Kill();  // the source copy (already released by the engine)
  std::printf("migrated: guest %ld now runs on %s:%u\n", pid, host.c_str(), port);
  return 0;
}

int ReserveCmd(const std::vector<std::string>& a) {
  if (a.size() < 2) return Usage("reserve: HOST[:PORT] MIB are required");
  std::string host;
  uint16_t port;
  if (auto s = ParseHostPort(a[0], kDefaultPort, &host, &port); !s.ok()) return Fail(s);
  double mib = Number("MIB", a[1].c_str()), ttl = 60;
  if (mib <= 0) return 2;
  for (size_t i = 2; i < a.size(); ++i) {
    if (a[i] == "--ttl" && i + 1 < a.size()) {
      if ((ttl = Number("--ttl", a[++i].c_str())) < 0) return 2;
    } else {
      return Usage(("reserve: unknown argument '" + a[i] + "'").c_str());
    }
  }
  uint64_t id;
  if (auto s = Reserve(host, port, static_cast<uint64_t>(mib) << 20, static_cast<uint32_t>(ttl * 1000), &id);
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
  double id = Number("ID", a[1].c_str());
  if (id < 0) return 2;
  if (auto s = ReleaseReservation(host, port, static_cast<uint64_t>(id)); !s.ok()) return Fail(s);
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
  if (cmd == "reserve") return ReserveCmd(a);
  if (cmd == "release") return ReleaseCmd(a);
  return Usage(("unknown command '" + cmd + "'").c_str());
}
