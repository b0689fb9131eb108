// lull::migrate::MigrationServer - the receiving lulld's half of a migration.
//
// Listens on TCP and serves one connection at a time on its own thread: migrations
// (HELLO ... COMMIT) and reservations (RESERVE / RELEASE, see wire.h). Memory for a
// guest comes from a GuestFactory, pre-warmed; a reservation holds such memory until it
// is used by a migration naming it, released, or its ttl runs out (the predicted lull did
// not come). Everything a migration took is freed when it fails at any stage: ABORT,
// lost or timed-out connection, malformed page, checksum mismatch, guest that does not
// start. `memory_limit_bytes` caps guests + reservations: a HELLO or RESERVE past it is
// refused with "target out of memory" and nothing is taken.
//
// Provisioning: a HELLO may carry the source's provisioning plan (planner.h, wire.h). It
// is capped at `limits` (what this host gives one guest) and applied to the guest through
// its TargetGuest::Control(): step 0 as soon as the guest starts (the verification run
// runs under it), then one step every `provision_step_ms` after the commit, on the
// server thread, each step measured and the plan corrected (ProvisionStep). Steps are
// never skipped: a late server applies them in order. A guest that cannot be limited
// (no cgroups here) still moves; stats().provision_error says why it runs unlimited.
//
// Fault injection (tests and the benchmark's failure runs): corrupt one received page, or
// drop the connection after a number of received bytes.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "dom0/migrate/guest_memory.h"
#include "dom0/migrate/resource_control.h"
#include "dom0/migrate/wire.h"

namespace lull::migrate {

struct ServerOptions {
  std::string bind = "127.0.0.1";
  uint16_t port = 0;                   // 0: any free port (see port())
  uint64_t memory_limit_bytes = 1ull << 34;
  int io_timeout_ms = 10000;
  int64_t fault_corrupt_page = -1;     // flip a byte of this page after it arrives
  uint64_t fault_drop_after_bytes = 0; // close the connection after this many bytes
  // A received plan is capped at these (default: this machine's CPUs, the memory limit).
  Resources limits{static_cast<double>(std::thread::hardware_concurrency()),
                   static_cast<double>(memory_limit_bytes >> 20), 1e6};
  int provision_step_ms = 1000;
};

struct ServerStats {
  uint64_t committed = 0, failed = 0, reservations = 0, reservations_expired = 0;
  uint64_t memory_in_use = 0;  // guests being received + reservations
  std::string last_error;
  uint64_t provisioned = 0;      // committed guests running under a provisioning plan
  int provision_step = -1;       // the last plan step applied (the newest such guest)
  Resources provision_applied, provision_used;  // at that step
  std::string provision_error;   // why a plan could not be applied
};

class MigrationServer {
 public:
  static lull::Status Start(GuestFactory* factory, const ServerOptions& opt,
                            std::unique_ptr<MigrationServer>* out);
  ~MigrationServer();  // Stop()
  uint16_t port() const { return port_; }
  void Stop();
  ServerStats stats() const;

 private:
  struct Provisioned {
    Provisioner plan;
    std::unique_ptr<ResourceControl> rc;
    double start_ms = 0;
    int step = 0;
  };
  void Provision();
  void Provisioning(int step, const lull::Status& s, const Resources& applied, const Resources& used);
  struct Reservation {
    std::unique_ptr<TargetGuest> guest;
    uint64_t bytes = 0;
    double expires_ms = 0;
  };
  MigrationServer(GuestFactory* f, const ServerOptions& o) : factory_(f), opt_(o) {}
  void Loop();
  void Serve(Conn* c);
  lull::Status ServeMigration(Conn* c, const std::vector<uint8_t>& hello);
  lull::Status Receive(Conn* c, TargetGuest* g, const std::string& desc,
                       std::vector<uint64_t>* hashes);
  void ServeReserve(Conn* c, const std::vector<uint8_t>& in);
  void ServeRelease(Conn* c, const std::vector<uint8_t>& in);
  void Expire();
  void Fail(const lull::Status& s);

  GuestFactory* factory_;
  ServerOptions opt_;
  Listener listener_;
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;  // guards stats_, reservations_
  ServerStats stats_;
  std::map<uint64_t, Reservation> reservations_;
  uint64_t next_id_ = 1;
  std::vector<Provisioned> provisioned_;  // server thread only
};

}  // namespace lull::migrate
