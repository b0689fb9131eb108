// lull::migrate::Migrate - move a running guest to another host (the source's half).
//
// Iterative pre-copy: round 0 sends every page; each later round sends the pages written
// during the previous one. When the pages still dirty would take less than
// `max_downtime_ms` at the throughput measured in the last round, the guest is paused,
// the rest is sent (stop-and-copy), the target checks the end-to-end checksum, starts
// the guest and runs it briefly (verification run); only then is the source released.
//
// Encodings, each switchable so its effect can be measured: zero pages are always a
// header only; with `xbzrle` a page sent before goes as a delta against the copy kept in
// a direct-mapped cache of `xbzrle_cache_bytes` (QEMU's scheme); with `lz4` a page that
// goes whole is LZ4-compressed when that is smaller.
//
// Checksum: every page sent is hashed (XXH3) as sent, the target hashes it as decoded,
// and both hash the per-page hash array at the end; with `verify_memory` both also hash
// the whole memory while the guest is paused (this also checks the dirty tracking, at
// the price of downtime: tests turn it on).
//
// Failure at any stage (connection lost, target out of memory, checksum mismatch, no
// convergence) rolls back: the guest is resumed on the source if it was paused, an ABORT
// is sent when the connection still works, and the error is returned. Only an OK return
// means the guest moved (then the source guest has been Release()d).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "dom0/migrate/guest_memory.h"
#include "dom0/migrate/planner.h"
#include "forecast/status.h"

namespace lull::migrate {

struct Progress {
  const char* phase = "";   // "connect", "precopy", "stop-copy", "verify", "committed"
  int round = 0;
  uint64_t dirty_pages = 0;  // found dirty at the start of this round
  uint64_t pages_sent = 0;   // so far, all rounds
  uint64_t wire_bytes = 0;
  double elapsed_ms = 0;
};

struct MigrateOptions {
  bool xbzrle = true;
  bool lz4 = true;
  int lz4_acceleration = 1;
  uint64_t xbzrle_cache_bytes = 0;  // 0: as large as the guest
  double max_downtime_ms = 100;
  int max_rounds = 30;
  double max_seconds = 300;
  // When the rounds or the time run out with too much still dirty: give up (rollback,
  // the guest keeps running here) or stop and copy anyway (a long downtime).
  bool force_stop_copy = false;
  uint64_t rate_limit_bytes_per_s = 0;  // 0: none (tc shapes the link instead)
  uint64_t reservation = 0;             // from Reserve(), 0: none
  bool verify_memory = false;
  // The target's resources over time (planner.h), sent in the HELLO; the target caps it
  // at its limits and applies it. Null: the target gives the guest what it has.
  const Provisioner* plan = nullptr;
  int io_timeout_ms = 10000;
  std::function<void(const Progress&)> progress;
  // After the commit: point clients at the new host (e.g. the cloning module's load
  // balancer). Its failure is reported in the stats; the guest has moved regardless.
  std::function<lull::Status()> redirect;
};

struct MigrateStats {
  double total_ms = 0;
  double downtime_ms = 0;     // guest paused on the source until it runs on the target
  uint64_t wire_bytes = 0;    // both directions, headers included
  uint64_t pages_sent = 0;
  uint64_t pages_by_encoding[4] = {};  // indexed by PageEncoding
  int rounds = 0;             // pre-copy rounds (the stop-and-copy not counted)
  uint64_t stop_copy_pages = 0;
  bool converged = false;     // the estimate fell under max_downtime_ms
  double encode_seconds = 0;  // CPU time spent hashing and encoding pages
  std::string redirect_error;
  std::string ToString() const;
};

lull::Status Migrate(GuestMemory* guest, const std::string& host, uint16_t port,
                     const MigrateOptions& opt, MigrateStats* stats);

// Ask the target to pre-warm `bytes` of memory for `ttl_ms` (the predicted lull is near).
lull::Status Reserve(const std::string& host, uint16_t port, uint64_t bytes, uint32_t ttl_ms,
                     uint64_t* id);
// The lull did not come: free the reservation.
lull::Status ReleaseReservation(const std::string& host, uint16_t port, uint64_t id);

}  // namespace lull::migrate
