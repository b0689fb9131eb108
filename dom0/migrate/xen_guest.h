// lull::migrate::XenGuestMemory - a running Xen PV domain as the migration engine's
// GuestMemory; ReceivedMemoryFactory - a target that only receives memory.
//
// XenGuestMemory (source side) sits on lull::xen::DomainMemory (dom0/xen_memory.h), a
// read-only foreign mapping of the whole domain in pfn order (pfns without a frame read
// as zero pages). Two ways to find the pages written (DirtyMode):
//   - kLogDirty: Xen's log-dirty mode, turned on at Open; data() is the live mapping.
//     The first CollectDirty() reports every page (the engine's contract) and clears
//     Xen's bitmap; later calls read and clear it in one XEN_DOMCTL_SHADOW_OP_CLEAN, so a
//     write racing with the call lands in this bitmap or the next. Xen does not mark
//     every write of its own: a PV vCPU's runstate and vcpu_info areas, which it
//     updates when the vCPU is descheduled (as Pause() does), and pages dom0's backends
//     write through long-lived mappings. So the hash of each page is kept as reported,
//     and the call made while the guest is paused (the stop-and-copy) also reports
//     every page whose content no longer matches (counted in unmarked_pages()): the
//     real hypervisor showed this as a checksum mismatch after a log-dirty migration.
//   - kScan: for hypervisors that cannot track a PV guest (log-dirty of a PV guest needs
//     shadow paging, which Debian's Xen 4.17 is built without). data() is then a copy
//     in dom0 of what was last reported; CollectDirty() compares the live mapping with
//     it page by page, copies the pages that differ and reports them. The engine sends
//     from the copy, so what the next scan compares against is exactly what was sent: a
//     write racing with the scan, or a page written and written back, is never lost
//     (it differs from the copy at a later scan, at the latest at the stop-and-copy,
//     when the guest is paused). Costs a full read of guest memory per round and a
//     second copy of it in dom0.
//   - kAuto: log-dirty if Xen accepts it, else scan (the reason is in tracking_note()).
// Before each later call the guest's p2m generation is checked: a guest that remapped
// its memory (ballooning) fails the migration, which rolls back, instead of sending
// stale frames. Pause()/Resume() are xc_domain_pause /
// unpause (reference counted in Xen, so a domain the admin paused stays paused).
// Release() after a commit destroys the domain, or, for a target that cannot run a Xen
// guest (the Xen-in-QEMU test migrates into dom0 memory), unpauses or leaves it paused.
//
// ReceivedMemoryFactory (target side): zero-filled anonymous memory, pre-faulted, that
// the engine writes the guest's pages into; Start() runs nothing - it accepts the
// source's description - and a committed guest's memory is kept until taken. It is for
// hosts that cannot start the guest (no Xen domain builder for an incoming PV guest
// here: its page tables would need rewriting for new frames, as a PV restore does).
#pragma once

#include <sys/types.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "dom0/migrate/guest_memory.h"
#include "dom0/xen_memory.h"

namespace lull::migrate {

class XenGuestMemory : public GuestMemory {
 public:
  enum class OnRelease { kDestroy, kUnpause, kKeepPaused };
  enum class DirtyMode { kAuto, kLogDirty, kScan };
  // Maps domain `domid` through `xc` (not owned; must outlive the guest).
  static lull::Status Open(xen::XenCalls* xc, uint32_t domid, OnRelease on_release,
                           std::unique_ptr<XenGuestMemory>* out, DirtyMode mode = DirtyMode::kAuto);
  static lull::Status ParseDirtyMode(const std::string& text, DirtyMode* out);
  ~XenGuestMemory() override;

  size_t page_size() const override { return xen::kPageSize; }
  size_t pages() const override { return mem_->pages(); }
  const uint8_t* data() const override { return copy_ ? copy_ : mem_->data(); }
  lull::Status CollectDirty(std::vector<uint32_t>* dirty) override;
  lull::Status Pause() override;
  lull::Status Resume() override;
  void Release() override;
  std::string Describe() const override;

  xen::DomainMemory* memory() { return mem_.get(); }
  bool paused() const { return paused_; }
  DirtyMode mode() const { return copy_ ? DirtyMode::kScan : DirtyMode::kLogDirty; }
  const std::string& tracking_note() const { return note_; }
  // kLogDirty: pages found written at the paused round without a log-dirty mark.
  uint64_t unmarked_pages() const { return unmarked_; }

 private:
  XenGuestMemory() = default;
  lull::Status Scan(std::vector<uint32_t>* dirty);
  std::unique_ptr<xen::DomainMemory> mem_;
  uint8_t* copy_ = nullptr;  // kScan: what was last reported (mmap'ed, pages() pages)
  std::vector<uint64_t> hash_;  // kLogDirty: XXH3 of each page when last reported
  uint64_t unmarked_ = 0;
  std::string note_;
  OnRelease on_release_ = OnRelease::kDestroy;
  bool tracking_ = false;
  bool paused_ = false;
  bool released_ = false;
};

// XXH3-64 of a whole memory image (the CLI prints it on both sides as a cross-check).
uint64_t MemoryHash(const uint8_t* data, size_t bytes);

// A guest's memory received by a ReceivedMemoryFactory target and committed.
struct ReceivedGuest {
  std::string description;
  size_t pages = 0, page_size = 0;
  uint8_t* data = nullptr;  // owned: munmap(data, pages * page_size)
  ReceivedGuest() = default;
  ReceivedGuest(const ReceivedGuest&) = delete;
  ReceivedGuest& operator=(const ReceivedGuest&) = delete;
  ~ReceivedGuest();
};

class ReceivedMemoryFactory : public GuestFactory {
 public:
  lull::Status Create(size_t pages, size_t page_size, std::unique_ptr<TargetGuest>* out) override;
  // The oldest committed guest not yet taken, or null. Thread-safe.
  std::unique_ptr<ReceivedGuest> TakeCommitted();

 private:
  friend class ReceivedTarget;
  void Add(std::unique_ptr<ReceivedGuest> g);
  std::mutex mu_;
  std::vector<std::unique_ptr<ReceivedGuest>> committed_;
};

}  // namespace lull::migrate
