#include "dom0/migrate/when_idle.h"

#include <time.h>

#include <vector>

#include "dom0/migrate/clock.h"
#include "dom0/migrate/source.h"

namespace lull::migrate {

lull::Status WaitForLull(GuestMemory* g, const std::string& host, uint16_t port,
                         const WhenIdleOptions& opt, WhenIdleResult* out) {
  *out = WhenIdleResult();
  if (auto s = opt.planner.Check(); !s.ok()) return s;
  if (opt.step_ms <= 0) return lull::Status::InvalidArgument("when-idle: step_ms must be > 0");
  MigrationPlanner planner(opt.planner);
  std::vector<uint32_t> dirty;
  if (auto s = g->CollectDirty(&dirty); !s.ok()) return s;  // arm
  const double t0 = MonoMs();
  double reserved_ms = 0;
  int64_t next = MonoNs();
  const uint64_t bytes = uint64_t(g->pages()) * g->page_size();
  for (;;) {
    next += int64_t(opt.step_ms) * 1000000;
    timespec ts{static_cast<time_t>(next / 1000000000), static_cast<long>(next % 1000000000)};
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr);
    if (auto s = g->CollectDirty(&dirty); !s.ok()) return s;
    double rate = double(dirty.size()) * 1000.0 / opt.step_ms;
    if (auto s = planner.Observe(rate); !s.ok()) return s;
    out->steps++;
    if (out->reservation && MonoMs() - reserved_ms > 0.8 * opt.reservation_ttl_ms) {
      out->reservation = 0;  // about to expire on the target: count it gone
      planner.Released();
    }
    MigrationPlanner::Action a = planner.Decide();
    if (opt.on_step) opt.on_step(a, rate);
    if (a == MigrationPlanner::Action::kReserve) {
      uint64_t id = 0;
      if (Reserve(host, port, bytes, opt.reservation_ttl_ms, &id).ok()) {
        out->reservation = id;
        out->reserves++;
        reserved_ms = MonoMs();
      } else {
        out->reservation_errors++;
      }
      planner.Reserved();  // also on failure: do not retry every step
    } else if (a == MigrationPlanner::Action::kRelease) {
      if (out->reservation) {
        if (ReleaseReservation(host, port, out->reservation).ok()) out->releases++;
        out->reservation = 0;
      }
      planner.Released();
    } else if (a == MigrationPlanner::Action::kMigrate) {
      out->deadline = opt.planner.max_wait_steps &&
                      planner.steps() >= static_cast<size_t>(opt.planner.max_wait_steps);
      break;
    }
  }
  out->waited_s = (MonoMs() - t0) / 1e3;
  return lull::Status::Ok();
}

}  // namespace lull::migrate
