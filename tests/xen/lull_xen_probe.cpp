// lull-xen-probe - dom0 test tool for Xen in QEMU (tests/xen/xen-harness.sh).
//
//   lull-xen-probe cpu SECONDS INTERVAL_MS DOMID...
//       every INTERVAL_MS print "t_s cpu_s..." (CLOCK_MONOTONIC, i.e. dom0 uptime, and
//       each domain's cpu_time from xc_domain_getinfolist), for SECONDS: cheap enough
//       to sample a guest's on/off pattern at sub-second resolution, where `xl list`
//       takes seconds per call in emulation.
//   lull-xen-probe lull setup|query|teardown
//       XEN_SYSCTL_lull_op (xen-patches/0001); prints the region's fields.
//   lull-xen-probe lease LENDER BORROWER CREDIT LEASE_MS [now|busy-at=MS[,withdraw]]
//       waits until LENDER idles (or grants at once with `now`), grants it to BORROWER in lease slot 0 (CREDIT credits
//       per 30 ms accounting period, for LEASE_MS), and watches until Xen revokes it
//       (xen-patches/0003: once the lender's demand returns) or it expires. Prints the lease's fate,
//       the revocation's timing against the lender's WAKE telemetry, and BORROWER's CPU
//       rate before and during the lease, and LENDER's over the second after. Frees the slot at the end.
//       With busy-at=MS it also sends, through the command ring, what lulld's forecast
//       sends (xen-patches/0005): LEASE_CHANGED for the slot, then HINT_BUSY for LENDER
//       from MS after the grant (confidence 0.9): Xen must then revoke at LENDER's first
//       wake or run after that time, idle phase or not (hint_ns, hint_to_revoke_ms).
//       With ",withdraw" a HINT_IDLE for LENDER follows 100 ms later (before that time),
//       as when the forecast changes its mind: the grace rule applies again.
//   lull-xen-probe leases
//       every lease table entry's effective state (active / revoked / expired) on
//       Xen's clock, as the scheduler sees it.
//   lull-xen-probe tel SECONDS DOMID...
//       sets the region up, maps it from DOMID_XEN (as xentrace maps trace buffers),
//       drains the telemetry rings every 100 ms for SECONDS and prints totals; per
//       domain it compares the run time the telemetry reports with the domain's
//       cpu_time over the same window. For the first DOMID it also prints the run time
//       of its idle wakes (TelReader's AnalyzeIdleWakes), per wake and summed over any
//       window of 100, 200 and 400 ms: what xen-patches/0003's grace rule must let
//       pass as idle (IDLE lines).
// Output is "key=value" lines for the dom0 test script. Exit 0 on success, 1 on a
// failed call (with the reason on stderr), 2 on bad usage.
#include <time.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "tests/xen/tel_reader.h"
#include "dom0/xen_glue.h"

namespace {

double Now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

void SleepMs(long ms) {
  timespec ts{ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
  }
}

bool ParseLong(const char* s, long lo, long hi, long* out) {
  char* end = nullptr;
  errno = 0;
  long v = std::strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) return false;
  *out = v;
  return true;
}

constexpr size_t kPage = 4096;

// cpu_time in ns of each domain in `doms` (-1 where absent or on error).
std::vector<int64_t> CpuTimes(lull_xen* x, const std::vector<uint32_t>& doms) {
  std::vector<int64_t> out(doms.size(), -1);
  if (lull_xen_cpu_times(x, doms.data(), doms.size(), out.data()) < 0)
    out.assign(doms.size(), -1);
  return out;
}

// Opens the Xen interfaces or says why not.
lull_xen* Open() {
  lull_xen* x = nullptr;
  if (int rc = lull_xen_open(&x); rc < 0) {
    std::fprintf(stderr, "lull-xen-probe: opening libxenctrl/xencall/xenforeignmemory: %s\n",
                 std::strerror(-rc));
    return nullptr;
  }
  return x;
}

bool ParseDoms(int argc, char** argv, int first, std::vector<uint32_t>* doms) {
  for (int i = first; i < argc; i++) {
    long d;
    if (!ParseLong(argv[i], 0, LULL_DOMID_LIMIT - 1, &d)) {
      std::fprintf(stderr, "lull-xen-probe: '%s' is not a domain id\n", argv[i]);
      return false;
    }
    doms->push_back(static_cast<uint32_t>(d));
  }
  return !doms->empty();
}

int CmdCpu(int argc, char** argv) {
  long secs, interval;
  std::vector<uint32_t> doms;
  if (argc < 5 || !ParseLong(argv[2], 1, 3600, &secs) ||
      !ParseLong(argv[3], 10, 60000, &interval) || !ParseDoms(argc, argv, 4, &doms)) {
    std::fprintf(stderr, "usage: lull-xen-probe cpu SECONDS(1-3600) INTERVAL_MS(10-60000) DOMID...\n");
    return 2;
  }
  lull_xen* x = Open();
  if (!x) return 1;
  double end = Now() + static_cast<double>(secs);
  while (Now() < end) {
    double t = Now();
    std::vector<int64_t> c = CpuTimes(x, doms);
    std::printf("%.3f", t);
    for (int64_t v : c) std::printf(" %.3f", v < 0 ? -1.0 : static_cast<double>(v) * 1e-9);
    std::printf("\n");
    std::fflush(stdout);
    SleepMs(interval);
  }
  lull_xen_close(x);
  return 0;
}

void PrintOp(const lull_sysctl_op& op) {
  std::printf("mfn=0x%llx size=%u n_tel=%u tel_capacity=%u cmd_capacity=%u n_leases=%u "
              "active=%u published=%llu dropped=%llu\n",
              static_cast<unsigned long long>(op.mfn), op.size, op.n_tel, op.tel_capacity,
              op.cmd_capacity, op.n_leases, op.active,
              static_cast<unsigned long long>(op.published),
              static_cast<unsigned long long>(op.dropped));
}

// One XEN_SYSCTL_lull_op; on failure says which and why. 0 or -errno.
int LullOp(lull_xen* x, uint32_t cmd, const char* name, lull_sysctl_op* op) {
  *op = lull_sysctl_op{};
  op->cmd = cmd;
  int rc = lull_xen_lull_op(x, op);
  if (rc)
    std::fprintf(stderr, "lull-xen-probe: XEN_SYSCTL_lull_op %s: %s%s\n", name, std::strerror(-rc),
                 rc == -EOPNOTSUPP || rc == -ENOSYS ? " (hypervisor without the lull patches?)"
                                                    : "");
  return rc;
}

// The lull region set up (or resumed) and mapped from DOMID_XEN read-write: the
// consumer indices and dom0's half of the lease table live in it.
struct Region {
  lull_sysctl_op op{};
  void* mem = nullptr;
  size_t pages = 0;
};

bool SetUpAndMap(lull_xen* x, Region* r) {
  if (LullOp(x, LULL_SYSCTL_SETUP, "setup", &r->op)) return false;
  PrintOp(r->op);
  if (r->op.size == 0 || r->op.mfn == 0) {
    std::fprintf(stderr, "lull-xen-probe: Xen reported an empty region\n");
    return false;
  }
  r->pages = (r->op.size + kPage - 1) / kPage;
  if (int m = lull_xen_map(x, r->op.mfn, r->pages, &r->mem); m < 0) {
    std::fprintf(stderr, "lull-xen-probe: mapping %zu pages of DOMID_XEN at mfn 0x%llx: %s\n",
                 r->pages, static_cast<unsigned long long>(r->op.mfn), std::strerror(-m));
    return false;
  }
  return true;
}

int CmdLull(int argc, char** argv) {
  static const struct { const char* name; uint32_t cmd; } kCmds[] = {
      {"setup", LULL_SYSCTL_SETUP}, {"query", LULL_SYSCTL_QUERY},
      {"teardown", LULL_SYSCTL_TEARDOWN}};
  uint32_t cmd = 0;
  for (const auto& c : kCmds)
    if (argc == 3 && std::strcmp(argv[2], c.name) == 0) cmd = c.cmd;
  if (!cmd) {
    std::fprintf(stderr, "usage: lull-xen-probe lull setup|query|teardown\n");
    return 2;
  }
  lull_xen* x = Open();
  if (!x) return 1;
  lull_sysctl_op op;
  int rc = LullOp(x, cmd, argv[2], &op);
  lull_xen_close(x);
  if (rc) return 1;
  PrintOp(op);
  return 0;
}

int CmdTel(int argc, char** argv) {
  long secs;
  std::vector<uint32_t> doms;
  if (argc < 4 || !ParseLong(argv[2], 1, 3600, &secs) || !ParseDoms(argc, argv, 3, &doms)) {
    std::fprintf(stderr, "usage: lull-xen-probe tel SECONDS(1-3600) DOMID...\n");
    return 2;
  }
  lull_xen* x = Open();
  if (!x) return 1;
  Region region;
  if (!SetUpAndMap(x, &region)) return 1;
  void* mem = region.mem;
  lull::xentest::TelReader reader;
  if (reader.Attach(mem, region.op.size)) {
    std::fprintf(stderr, "lull-xen-probe: %s\n", reader.error().c_str());
    return 1;
  }
  // Drain what was published before the window, so the totals cover only the window.
  reader.Poll();
  lull::xentest::TelTotals before = reader.totals();
  std::vector<uint64_t> open0;
  for (uint32_t d : doms) open0.push_back(reader.OpenRunNs(static_cast<uint16_t>(d)));
  reader.Keep(static_cast<uint16_t>(doms[0]), 1 << 20);
  std::vector<int64_t> cpu0 = CpuTimes(x, doms);
  double t0 = Now(), end = t0 + static_cast<double>(secs);
  int64_t polls = 0, max_batch = 0;
  while (Now() < end) {
    SleepMs(100);
    int64_t n = reader.Poll();
    if (n < 0) {
      std::fprintf(stderr, "lull-xen-probe: %s\n", reader.error().c_str());
      return 1;
    }
    polls++;
    if (n > max_batch) max_batch = n;
  }
  std::vector<int64_t> cpu1 = CpuTimes(x, doms);
  double t1 = Now();
  const auto& t = reader.totals();
  std::printf("TEL window_s=%.2f polls=%lld records=%llu max_batch=%lld invalid=%llu errors=%llu "
              "skipped=%llu dropped=%llu out_of_order=%llu rings=%u\n",
              t1 - t0, static_cast<long long>(polls),
              static_cast<unsigned long long>(t.records - before.records),
              static_cast<long long>(max_batch), static_cast<unsigned long long>(t.invalid),
              static_cast<unsigned long long>(t.errors), static_cast<unsigned long long>(t.skipped),
              static_cast<unsigned long long>(t.dropped),
              static_cast<unsigned long long>(t.out_of_order), reader.rings());
  for (size_t k = 0; k < doms.size(); k++) {
    lull::xentest::DomTel d, d0;
    if (auto it = t.dom.find(static_cast<uint16_t>(doms[k])); it != t.dom.end()) d = it->second;
    if (auto it = before.dom.find(static_cast<uint16_t>(doms[k])); it != before.dom.end())
      d0 = it->second;
    std::printf("TELDOM dom=%u wake=%llu block=%llu run=%llu desched=%llu tel_ran_s=%.3f "
                "cpu_time_s=%.3f\n",
                doms[k], static_cast<unsigned long long>(d.wake - d0.wake),
                static_cast<unsigned long long>(d.block - d0.block),
                static_cast<unsigned long long>(d.run - d0.run),
                static_cast<unsigned long long>(d.desched - d0.desched),
                (static_cast<double>(d.ran_ns + reader.OpenRunNs(static_cast<uint16_t>(doms[k]))) -
                 static_cast<double>(d0.ran_ns + open0[k])) * 1e-9,
                cpu0[k] < 0 || cpu1[k] < 0 ? -1.0
                                           : static_cast<double>(cpu1[k] - cpu0[k]) * 1e-9);
  }
  for (uint64_t window_ms : {100, 200, 400}) {
    const auto s = lull::xentest::AnalyzeIdleWakes(reader.kept(), window_ms * 1000000);
    std::printf("IDLE dom=%u window_ms=%llu runs=%llu run_p50_us=%.0f run_p99_us=%.0f "
                "run_max_us=%.0f win_max_us=%.0f win_wakes_max=%llu\n",
                doms[0], static_cast<unsigned long long>(window_ms),
                static_cast<unsigned long long>(s.runs), static_cast<double>(s.run_p50_ns) * 1e-3,
                static_cast<double>(s.run_p99_ns) * 1e-3, static_cast<double>(s.run_max_ns) * 1e-3,
                static_cast<double>(s.win_max_ns) * 1e-3,
                static_cast<unsigned long long>(s.win_wakes_max));
  }
  lull_xen_unmap(x, mem, region.pages);
  lull_xen_close(x);
  return 0;
}

int CmdLease(int argc, char** argv) {
  long lender, borrower, credit, lease_ms;
  bool hint_bad = false;
  const bool at_once = argc == 7 && std::strcmp(argv[6], "now") == 0;
  long busy_at_ms = -1;
  const bool hint = argc == 7 && std::strncmp(argv[6], "busy-at=", 8) == 0;
  bool withdraw = false;
  if (hint) {
    std::string h = argv[6] + 8;
    if (const size_t comma = h.find(','); comma != std::string::npos) {
      withdraw = h.substr(comma) == ",withdraw";
      hint_bad = !withdraw;
      h.resize(comma);
    }
    if (!ParseLong(h.c_str(), 0, 600000, &busy_at_ms)) hint_bad = true;
  }
  if ((argc != 6 && !at_once && !hint) || hint_bad ||
      !ParseLong(argv[2], 0, LULL_DOMID_LIMIT - 1, &lender) ||
      !ParseLong(argv[3], 0, LULL_DOMID_LIMIT - 1, &borrower) || lender == borrower ||
      !ParseLong(argv[4], 1, LULL_LEASE_MAX_CREDIT, &credit) ||
      !ParseLong(argv[5], 100, 600000, &lease_ms)) {
    std::fprintf(stderr, "usage: lull-xen-probe lease LENDER BORROWER(!=LENDER) CREDIT(1-%u) "
                 "LEASE_MS(100-600000) [now|busy-at=MS(0-600000)[,withdraw]]\n", LULL_LEASE_MAX_CREDIT);
    return 2;
  }
  lull_xen* x = Open();
  if (!x) return 1;
  Region region;
  if (!SetUpAndMap(x, &region)) return 1;
  lull::xentest::TelReader reader;
  if (reader.Attach(region.mem, region.op.size)) {
    std::fprintf(stderr, "lull-xen-probe: %s\n", reader.error().c_str());
    return 1;
  }
  reader.Keep(static_cast<uint16_t>(lender), 4096);
  lull_shm_view view{};
  lull_lease* slot = nullptr;
  if (lull_shm_attach(region.mem, region.op.size, &view) || !(slot = lull_shm_lease(&view, 0))) {
    std::fprintf(stderr, "lull-xen-probe: the region has no lease table\n");
    return 1;
  }
  const std::vector<uint32_t> doms = {static_cast<uint32_t>(lender),
                                      static_cast<uint32_t>(borrower)};

  // Sleep in 100 ms steps, draining the rings meanwhile: a full ring drops the newest
  // records, and both Xen's time (below) and the lender's WAKE record must be fresh.
  auto nap = [&reader](long ms) {
    for (long left = ms; left > 0; left -= 100) {
      SleepMs(left < 100 ? left : 100);
      reader.Poll();
    }
  };
  reader.Poll();  // whatever piled up before we attached

  // The borrower's rate with no lease, over 3 s.
  std::vector<int64_t> b0 = CpuTimes(x, doms);
  double tb0 = Now();
  nap(3000);
  std::vector<int64_t> b1 = CpuTimes(x, doms);
  double tb1 = Now();
  if (b0[0] < 0 || b0[1] < 0 || b1[1] < 0) {
    std::fprintf(stderr, "lull-xen-probe: domain %ld or %ld does not exist\n", lender, borrower);
    return 1;
  }
  double rate_before = static_cast<double>(b1[1] - b0[1]) * 1e-9 / (tb1 - tb0);

  // Wait for the start of an idle phase of the lender: busy (over half a CPU in 200 ms,
  // five samples in a row), then idle (under 5 % in 200 ms, twice in a row), so the
  // lease gets most of an idle phase. On a loaded host a busy guest can get little CPU
  // for 200 ms; one quiet sample is not an idle phase.
  double give_up = Now() + 60;
  std::vector<int64_t> prev = CpuTimes(x, doms), cur;
  int busy_run = 0, idle_run = 0;
  bool seen_busy = false;
  while (!at_once) {
    nap(200);
    cur = CpuTimes(x, doms);
    int64_t used = cur[0] - prev[0];
    prev = cur;
    busy_run = used > 100000000 ? busy_run + 1 : 0;
    if (busy_run >= 5) seen_busy = true;
    idle_run = used < 10000000 ? idle_run + 1 : 0;
    if (seen_busy && idle_run >= 2) break;
    if (Now() > give_up) {
      std::fprintf(stderr, "lull-xen-probe: domain %ld did not go from busy to idle in 60 s\n",
                   lender);
      return 1;
    }
  }
  // Xen's NOW() is the newest telemetry timestamp: the rings were drained 100 ms ago,
  // so it is at most that old.
  reader.Poll();
  const uint64_t xen_now = reader.totals().latest_ns;
  if (xen_now == 0) {
    std::fprintf(stderr, "lull-xen-probe: no telemetry yet, so no idea of Xen's time\n");
    return 1;
  }
  lull_lease_val v{};
  v.id = xen_now;  // unique enough: a new lease never reuses an older timestamp
  v.state = LULL_LEASE_ACTIVE;
  v.lender = static_cast<uint16_t>(lender);
  v.borrower = static_cast<uint16_t>(borrower);
  v.credit = static_cast<uint32_t>(credit);
  v.granted_ns = xen_now;
  v.expires_ns = xen_now + static_cast<uint64_t>(lease_ms) * 1000000ull;
  lull_lease_write(slot, &v);
  std::vector<int64_t> g0 = CpuTimes(x, doms);
  double tg0 = Now();
  uint64_t hint_ns = 0;
  if (hint) {
    // As lulld does: LEASE_CHANGED makes Xen honour the slot at its next command poll
    // (not the next accounting), and a hint applies to leases Xen honours, so it
    // follows 100 ms later.
    lull_prod cmd{};
    if (lull_prod_init(&cmd, lull_shm_cmd_ring(&view),
                       lull_ring_bytes(view.geom.cmd_capacity, sizeof(lull_cmd_rec)),
                       view.geom.cmd_capacity, sizeof(lull_cmd_rec))) {
      std::fprintf(stderr, "lull-xen-probe: the command ring's header is not sane\n");
      return 1;
    }
    lull_cmd_rec c{};
    c.type = LULL_CMD_LEASE_CHANGED;
    c.slot = 0;
    if (lull_prod_push(&cmd, &c, sizeof(c))) {
      std::fprintf(stderr, "lull-xen-probe: command ring full\n");
      return 1;
    }
    lull_prod_publish(&cmd);
    nap(100);
    hint_ns = v.granted_ns + static_cast<uint64_t>(busy_at_ms) * 1000000ull;
    lull_cmd_rec h{};
    h.type = LULL_CMD_HINT_BUSY;
    h.domid = static_cast<uint16_t>(lender);
    h.until_ns = hint_ns;
    h.value = 900;
    if (!lull_cmd_valid(&h, view.geom.n_leases) || lull_prod_push(&cmd, &h, sizeof(h))) {
      std::fprintf(stderr, "lull-xen-probe: busy hint refused by lull_cmd_valid or ring full\n");
      return 1;
    }
    lull_prod_publish(&cmd);
    if (withdraw) {
      nap(100);
      h.type = LULL_CMD_HINT_IDLE;
      if (!lull_cmd_valid(&h, view.geom.n_leases) || lull_prod_push(&cmd, &h, sizeof(h))) {
        std::fprintf(stderr, "lull-xen-probe: idle hint refused by lull_cmd_valid or ring full\n");
        return 1;
      }
      lull_prod_publish(&cmd);
    }
  }

  // Watch: revoked (by Xen) or expired (by time). Poll telemetry meanwhile, so the
  // lender's wake is seen and Xen's time keeps moving.
  const char* fate = "expired";
  uint64_t revoked_ns = 0;
  double deadline = tg0 + static_cast<double>(lease_ms) / 1000.0 + 1.0;
  while (Now() < deadline) {
    SleepMs(20);
    reader.Poll();  // also keeps the rings from filling
    if (LULL_LOAD_ACQ(&slot->revoked_id) == v.id) {
      revoked_ns = LULL_LOAD_RLX(&slot->revoked_ns);
      fate = "revoked";
      break;
    }
  }
  double tg1 = Now();
  std::vector<int64_t> g1 = CpuTimes(x, doms);
  nap(200);
  double rate_lease = static_cast<double>(g1[1] - g0[1]) * 1e-9 / (tg1 - tg0);
  // The lender's CPU rate over the next second: a revocation at the return of its load
  // finds it busy; one inside an idle phase (a grace rule too tight) finds it idle.
  std::vector<int64_t> a0 = CpuTimes(x, doms);
  double ta0 = Now();
  nap(1000);
  std::vector<int64_t> a1 = CpuTimes(x, doms);
  double lender_rate_after = static_cast<double>(a1[0] - a0[0]) * 1e-9 / (Now() - ta0);

  // The lender's demand returned at its last wake at or before the revocation: the grace
  // rule (xen-patches/0003) then revokes once it has run long enough, in credit's own
  // accounting of that run (or in the wake path, for a burst of wakes: then the WAKE
  // record of the same call follows revoked_ns by microseconds). Wakes between the
  // grant and that one are the timer wakes the grace rule let pass. And Xen's
  // LEASE_REVOKED record.
  uint64_t wake_ns = 0, event_ns = 0, passed_wakes = 0;
  const uint64_t until = revoked_ns ? revoked_ns : ~0ull;
  for (const lull_tel_rec& r : reader.kept()) {
    if (r.type == LULL_TEL_WAKE && r.time_ns >= v.granted_ns && r.time_ns <= until) {
      if (wake_ns) passed_wakes++;
      if (r.time_ns > wake_ns) wake_ns = r.time_ns;
    }
    if (r.type == LULL_TEL_LEASE_REVOKED && r.arg == v.id) event_ns = r.time_ns;
  }
  std::printf("LEASE fate=%s lender=%ld borrower=%ld credit=%ld lease_ms=%ld held_s=%.3f "
              "granted_ns=%llu revoked_ns=%llu lender_wake_ns=%llu revoked_event_ns=%llu "
              "wake_to_revoke_us=%.1f grant_to_revoke_ms=%.1f passed_wakes=%llu "
              "borrower_rate_before=%.3f borrower_rate_lease=%.3f lender_rate_after=%.3f "
              "dropped=%llu hint_ns=%llu hint_to_revoke_ms=%.1f\n",
              fate, lender, borrower, credit, lease_ms, tg1 - tg0,
              static_cast<unsigned long long>(v.granted_ns),
              static_cast<unsigned long long>(revoked_ns),
              static_cast<unsigned long long>(wake_ns),
              static_cast<unsigned long long>(event_ns),
              revoked_ns && wake_ns ? (static_cast<double>(revoked_ns) - static_cast<double>(wake_ns)) / 1e3 : -1.0,
              revoked_ns ? (static_cast<double>(revoked_ns) - static_cast<double>(v.granted_ns)) / 1e6 : -1.0,
              static_cast<unsigned long long>(passed_wakes),
              rate_before, rate_lease, lender_rate_after,
              static_cast<unsigned long long>(reader.totals().dropped),
              static_cast<unsigned long long>(hint_ns),
              revoked_ns && hint_ns
                  ? (static_cast<double>(revoked_ns) - static_cast<double>(hint_ns)) / 1e6
                  : -1.0);

  lull_lease_val freed{};
  lull_lease_write(slot, &freed);
  lull_xen_unmap(x, region.mem, region.pages);
  lull_xen_close(x);
  return 0;
}


// Every lease table entry's effective state on Xen's clock (lull_shm.h, LEASES): the
// newest telemetry timestamp, the rings drained twice 100 ms apart, stands for NOW().
int CmdLeases() {
  lull_xen* x = Open();
  if (!x) return 1;
  Region region;
  if (!SetUpAndMap(x, &region)) return 1;
  lull::xentest::TelReader reader;
  lull_shm_view view{};
  if (reader.Attach(region.mem, region.op.size) || lull_shm_attach(region.mem, region.op.size, &view)) {
    std::fprintf(stderr, "lull-xen-probe: the region does not validate: %s\n", reader.error().c_str());
    return 1;
  }
  reader.Poll();
  SleepMs(100);
  reader.Poll();
  const uint64_t now = reader.totals().latest_ns;
  unsigned counts[4] = {0, 0, 0, 0}, torn = 0;
  static const char* kNames[4] = {"free", "active", "revoked", "expired"};
  for (uint32_t i = 0; i < view.geom.n_leases; i++) {
    lull_lease* l = lull_shm_lease(&view, i);
    lull_lease_val v{};
    if (lull_lease_read(l, &v)) {
      torn++;
      continue;
    }
    const enum lull_lease_state e = lull_lease_effective(l, &v, now);
    counts[e]++;
    if (e != LULL_LEASE_FREE)
      std::printf("LEASE slot=%u id=%llu lender=%u borrower=%u credit=%u state=%s expires_in_ms=%.1f\n", i,
                  static_cast<unsigned long long>(v.id), v.lender, v.borrower, v.credit, kNames[e],
                  (static_cast<double>(v.expires_ns) - static_cast<double>(now)) / 1e6);
  }
  std::printf("LEASES xen_now=%llu free=%u active=%u revoked=%u expired=%u unreadable=%u\n",
              static_cast<unsigned long long>(now), counts[0], counts[1], counts[2], counts[3], torn);
  lull_xen_unmap(x, region.mem, region.pages);
  lull_xen_close(x);
  return now ? 0 : 1;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "cpu") == 0) return CmdCpu(argc, argv);
  if (argc >= 2 && std::strcmp(argv[1], "lull") == 0) return CmdLull(argc, argv);
  if (argc >= 2 && std::strcmp(argv[1], "tel") == 0) return CmdTel(argc, argv);
  if (argc >= 2 && std::strcmp(argv[1], "lease") == 0) return CmdLease(argc, argv);
  if (argc == 2 && std::strcmp(argv[1], "leases") == 0) return CmdLeases();
  std::fprintf(stderr,
               "usage: lull-xen-probe cpu SECONDS INTERVAL_MS DOMID...\n"
               "       lull-xen-probe lull setup|query|teardown\n"
               "       lull-xen-probe tel SECONDS DOMID...\n"
               "       lull-xen-probe lease LENDER BORROWER CREDIT LEASE_MS\n"
               "       lull-xen-probe leases\n");
  return 2;
}
