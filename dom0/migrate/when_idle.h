// lull::migrate::WaitForLull - `migrate --when-idle`: watch the guest, wait for the lull.
//
// Every `step_ms` the guest's dirty pages are collected (the same tracking the engine
// uses; the engine's bulk round sends everything regardless) and their rate goes to a
// MigrationPlanner. On kReserve the target is asked to pre-warm memory for the guest
// (RESERVE, `reservation_ttl_ms`); on kRelease that reservation is given back; on
// kMigrate this returns, with the reservation to hand to Migrate(). Reservation errors
// are not fatal (the migration can still allocate at HELLO); they are counted.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "dom0/migrate/guest_memory.h"
#include "dom0/migrate/planner.h"

namespace lull::migrate {

struct WhenIdleOptions {
  PlannerConfig planner;
  int step_ms = 400;
  uint32_t reservation_ttl_ms = 30000;
  // Called once a step: the planner's action and the measured dirty rate (pages/s).
  std::function<void(MigrationPlanner::Action, double)> on_step;
};

struct WhenIdleResult {
  double waited_s = 0;
  int steps = 0;
  bool deadline = false;     // the wait ran out rather than a lull being predicted
  uint64_t reservation = 0;  // held for the migration, 0 if none
  int reserves = 0, releases = 0, reservation_errors = 0;
};

lull::Status WaitForLull(GuestMemory* guest, const std::string& host, uint16_t port,
                         const WhenIdleOptions& opt, WhenIdleResult* out);

}  // namespace lull::migrate
