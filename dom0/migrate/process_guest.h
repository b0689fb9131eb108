// lull::migrate::ProcessGuest - a Linux process standing in for a Xen guest, for real.
//
// The guest is a child process whose "RAM" is a memfd mapped shared at the same address
// in the child and in lulld (lulld's mapping plays the part of Xen's foreign mapping).
// A workload in the child writes `write_bytes` pseudo-random bytes at a random offset of
// a random page of its hot set, `rate` times a second (or following `phases`, a repeating
// schedule of rates, like a guest with busy spells and lulls).
//
// Dirty tracking (what Xen's log-dirty mode gives) comes from the kernel: the child
// registers its memory with userfaultfd in asynchronous write-protect mode (Linux >= 6.7,
// no fault handler needed); lulld reads the written pages and write-protects them again
// in one atomic PAGEMAP_SCAN ioctl on /proc/PID/pagemap. Soft-dirty bits were the other
// candidate, but reading and clearing them are two steps (a write in between is lost
// unless the guest is frozen) and many kernels (this one) lack CONFIG_MEM_SOFT_DIRTY.
// Pause() is SIGSTOP, Resume() SIGCONT: the child freezes mid-write as a paused VM would.
//
// The memfd is named "lull-guest <description>" so another process (lull-migrate run
// by hand) can Attach() to a guest by pid. Destroying a ProcessGuest kills the child if
// it spawned it (or adopted it); an attached guest is left alone unless Kill() is called.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "dom0/migrate/guest_memory.h"

namespace lull::migrate {

struct Phase {
  uint32_t ms = 0;      // duration
  uint64_t rate = 0;    // page writes per second during it
};

struct WorkloadConfig {
  uint64_t rate = 1000;          // page writes per second (when phases is empty)
  uint32_t write_bytes = 64;     // bytes changed per write (a cache line by default)
  double hot_fraction = 1.0;     // writes go to the first hot_fraction of the pages
  uint64_t seed = 1;
  std::vector<Phase> phases;     // repeating schedule; overrides rate when not empty

  // "rate=1000 write=64 hot=0.25 seed=1 phases=500:20000/1500:200"
  std::string ToString() const;
  static lull::Status Parse(const std::string& s, WorkloadConfig* out);
};

// Initial content: fractions of zero pages and of text-like (compressible) pages; the
// rest is random (incompressible), in a pseudo-random layout.
struct FillConfig {
  double zero_fraction = 0.3;
  double text_fraction = 0.4;
  uint64_t seed = 7;
};

class ProcessGuest : public GuestMemory {
 public:
  static lull::Status Spawn(size_t bytes, const WorkloadConfig& w, const FillConfig& f,
                            std::unique_ptr<ProcessGuest>* out);
  // Take a pre-filled memfd (the target's received memory) and start a guest on it.
  // Takes ownership of `memfd` (and of `mem`, its shared mapping of `bytes`), also on
  // failure.
  static lull::Status Adopt(int memfd, uint8_t* mem, size_t bytes, const WorkloadConfig& w,
                            std::unique_ptr<ProcessGuest>* out);
  // Two halves of Adopt: fork the guest process and set up its dirty tracking, with the
  // workload not yet running; then start it (returns once it ran its first tick).
  static lull::Status Prepare(int memfd, uint8_t* mem, size_t bytes,
                              std::unique_ptr<ProcessGuest>* out);
  lull::Status Go(const WorkloadConfig& w);
  // A guest spawned by another process (e.g. `lull-migrate guest`), found by its pid.
  static lull::Status Attach(pid_t pid, std::unique_ptr<ProcessGuest>* out);
  // Whether this kernel supports the dirty tracking (probed once, in a throwaway child).
  static lull::Status Probe();

  ~ProcessGuest() override;

  size_t page_size() const override { return page_size_; }
  size_t pages() const override { return bytes_ / page_size_; }
  const uint8_t* data() const override { return mem_; }
  uint8_t* mutable_data() { return mem_; }
  lull::Status CollectDirty(std::vector<uint32_t>* dirty) override;
  lull::Status Pause() override;
  lull::Status Resume() override;
  void Release() override;
  std::string Describe() const override { return workload_.ToString(); }

  pid_t pid() const { return pid_; }
  const WorkloadConfig& workload() const { return workload_; }
  bool paused() const { return paused_; }
  // Whether the guest process has ended (killed by a migration's release, or crashed).
  bool Exited();
  // Ends the guest process now (the source after a committed migration).
  void Kill();
  // Lets the process run on after this object is gone.
  void Detach() { owned_ = false; }

 private:
  ProcessGuest() = default;

  pid_t pid_ = -1;
  bool owned_ = true;
  bool paused_ = false;
  int memfd_ = -1;
  int pagemap_fd_ = -1;
  int ready_fd_ = -1, go_fd_ = -1;  // to the child until it runs
  uint8_t* mem_ = nullptr;
  size_t bytes_ = 0;
  size_t page_size_ = 4096;
  uintptr_t child_addr_ = 0;  // where the memory is mapped in the guest process
  WorkloadConfig workload_;
  std::vector<uint64_t> regions_;  // PAGEMAP_SCAN output buffer
};

// Target side: memfd-backed memory that becomes a ProcessGuest when started.
// Started guests are kept here until taken; thread-safe (the server runs on its own
// thread). Guests die with the thread that started them (PR_SET_PDEATHSIG), so a
// crashed lulld or test leaves no process behind.
class ProcessGuestFactory : public GuestFactory {
 public:
  lull::Status Create(size_t pages, size_t page_size, std::unique_ptr<TargetGuest>* out) override;
  // The oldest guest started by a committed migration and not yet taken, or null.
  std::unique_ptr<ProcessGuest> TakeStarted();
  size_t started() const;

 private:
  friend class ProcessTarget;
  void Add(std::unique_ptr<ProcessGuest> g);
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<ProcessGuest>> started_;
};

}  // namespace lull::migrate
