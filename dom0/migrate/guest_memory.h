// lull::migrate::GuestMemory - a running guest's memory, as the migration engine sees it.
//
// The engine needs four things from a guest, whatever runs it:
//   - its pages, readable in place (on Xen: a foreign mapping of the domain's frames,
//     xenforeignmemory_map; on Linux: a shared mapping of the process guest's memfd);
//   - the pages written since the last look (on Xen: log-dirty mode through
//     xc_shadow_control CLEAN; on Linux: userfaultfd asynchronous write-protect read
//     and re-armed with PAGEMAP_SCAN, or soft-dirty bits);
//   - pause and resume (xc_domain_pause/unpause; SIGSTOP/SIGCONT);
//   - a description of what it runs, so the target can start the same thing.
//
// CollectDirty(): the first call reports every page; each later call reports the pages
// written since the previous call, and re-arms tracking for them atomically with the
// read, so a write racing with it shows up in this call or the next, never in neither.
//
// Not thread-safe; the engine uses one guest from one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "forecast/status.h"

namespace lull::migrate {

class ResourceControl;  // resource_control.h

class GuestMemory {
 public:
  virtual ~GuestMemory() = default;
  virtual size_t page_size() const = 0;
  virtual size_t pages() const = 0;
  // The guest's memory, pages() * page_size() bytes, readable while the guest runs.
  virtual const uint8_t* data() const = 0;
  virtual lull::Status CollectDirty(std::vector<uint32_t>* dirty) = 0;
  virtual lull::Status Pause() = 0;
  virtual lull::Status Resume() = 0;
  // The migration committed: the guest runs on the target now; stop and free this one.
  virtual void Release() = 0;
  // Opaque to the engine; sent to the target, which hands it to its GuestFactory.
  virtual std::string Describe() const = 0;
};

// On the target: where incoming memory is written, and the guest that will run it.
class TargetGuest {
 public:
  virtual ~TargetGuest() = default;
  virtual size_t pages() const = 0;
  virtual size_t page_size() const = 0;
  virtual uint8_t* data() = 0;  // writable; starts zero-filled
  // Start the guest on the received memory (`description` from the source) and check,
  // briefly, that it runs. The guest stays running unless Destroy() follows.
  virtual lull::Status Start(const std::string& description) = 0;
  // The migration committed: the source is gone and this guest is the guest now.
  virtual void Commit() = 0;
  // Rollback: stop the guest (if started) and free its memory. Also what destroying an
  // uncommitted TargetGuest does.
  virtual void Destroy() = 0;
  // After Start(): what applies the provisioning plan to this guest (CPU, memory, I/O)
  // and measures its use; it outlives the TargetGuest (the guest keeps running after
  // Commit()). Unavailable where the guest cannot be limited.
  virtual lull::Status Control(std::unique_ptr<ResourceControl>* out) {
    (void)out;
    return lull::Status::Unavailable("this target guest has no resource control");
  }
};

class GuestFactory {
 public:
  virtual ~GuestFactory() = default;
  // Memory for a guest of `pages` pages, allocated and touched now (pre-warmed), so the
  // migration never waits for the allocator. Fails with Unavailable if it cannot.
  virtual lull::Status Create(size_t pages, size_t page_size, std::unique_ptr<TargetGuest>* out) = 0;
};

}  // namespace lull::migrate
