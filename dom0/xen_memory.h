// lull::xen - a Xen PV domain's memory, seen from dom0 (the migration and snapshot
// modules' Xen backend).
//
// What it gives:
//   - the guest's p2m (pfn -> mfn), read as a PV save reads it: from the domain's
//     shared_info (xc_domain_getinfolist's shared_info_frame), either the 3-level tree
//     anchored at arch.pfn_to_mfn_frame_list_list or, when the guest marked that invalid
//     (~0, which Linux does when the domain builder sets SIF_VIRT_P2M_4TOOLS, as libxl's
//     always does), the virtually mapped linear list at arch.p2m_vaddr, found by walking
//     the guest's 4-level page tables from arch.p2m_cr3. arch.p2m_generation is read
//     before and after; a walk that raced with a p2m change is retried.
//   - one contiguous read-only mapping of all pages()*4096 bytes of guest memory, pfn
//     order: frames foreign-mapped (xenforeignmemory_map2), pfns without a frame (invalid
//     p2m entries) as zero pages; for restore a second, writable mapping of the same
//     frames, where Xen allows it (not a PV guest's page tables);
//   - log-dirty tracking (xc_shadow_control ENABLE_LOGDIRTY / CLEAN / OFF), pause and
//     unpause.
//
// Everything read from the guest is validated before it is used: the domain must be a
// 64-bit PV guest, max_pfn within what Xen says the domain can have, every frame of the
// tree or page-table walk and every p2m entry below the host's highest frame
// (xc_maximum_ram_page), no entry pointing at frame 0. Errors name the domain, the pfn
// or the table slot, and the value found.
//
// The Xen calls go through XenCalls so that the parsing, the mapping and the dirty
// bitmap handling run on a host without Xen against a fake (tests/migrate/fake_xen.h).
// Not thread-safe: one user at a time (the engine drives a guest from one thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "forecast/status.h"

namespace lull::xen {

inline constexpr size_t kPageSize = 4096;
inline constexpr uint64_t kPfnEntries = kPageSize / 8;  // 64-bit entries per page
inline constexpr uint64_t kInvalidMfn = ~0ull;
// Linux PV marks p2m entries with these bits (FOREIGN_FRAME_BIT 63, IDENTITY_FRAME_BIT
// 62): such a pfn has no frame of its own to save.
inline constexpr uint64_t kMfnFlagBits = 3ull << 62;
// 2^28 pfns = 1 TiB of guest: far beyond what dom0 here will map, and a bound that keeps
// a corrupted max_pfn from making us allocate without limit.
inline constexpr uint64_t kMaxGuestPfns = 1ull << 28;

struct DomainInfo {
  uint32_t domid = 0;
  bool hvm = false, paused = false, dying = false, shutdown = false;
  uint32_t guest_width = 0;  // bytes
  uint64_t shared_info_frame = 0;
  uint64_t tot_pages = 0, max_pages = 0;
  uint64_t cpu_time_ns = 0;
  uint64_t max_gpfn = 0;   // the domain's highest pfn, per Xen
  uint64_t max_mfn = 0;    // the host's highest frame
};

struct P2mAnchor {  // arch_shared_info's p2m fields
  uint64_t max_pfn = 0;  // entries
  uint64_t fll = 0;      // pfn_to_mfn_frame_list_list
  uint64_t p2m_cr3 = 0, p2m_vaddr = 0, p2m_generation = 0;
};

// The hypervisor, as the functions below need it. Every call returns a Status naming
// the failed operation.
class XenCalls {
 public:
  virtual ~XenCalls() = default;
  virtual lull::Status GetDomain(uint32_t domid, DomainInfo* out) = 0;
  virtual lull::Status ReadAnchor(uint32_t domid, uint64_t shared_info_mfn, P2mAnchor* out) = 0;
  virtual lull::Status ReadFrame(uint32_t domid, uint64_t mfn, uint8_t* page) = 0;
  // Maps n frames at addr (over a range the caller reserved, MAP_FIXED). err[i]: 0 or a
  // negative errno per frame (Xen refuses a writable mapping of a PV page table).
  virtual lull::Status MapAt(uint32_t domid, void* addr, bool writable, const uint64_t* mfns,
                             size_t n, int* err) = 0;
  virtual lull::Status Pause(uint32_t domid) = 0;
  virtual lull::Status Unpause(uint32_t domid) = 0;
  virtual lull::Status Destroy(uint32_t domid) = 0;
  virtual lull::Status LogDirty(uint32_t domid, bool enable) = 0;
  // Pages written since the last clean: bit p of bitmap[p / 64]; clears them in Xen.
  virtual lull::Status CleanDirty(uint32_t domid, uint64_t* bitmap, uint64_t pages) = 0;
};

// libxenctrl + libxenforeignmemory (needs /dev/xen/privcmd: dom0, as root).
lull::Status OpenXen(std::unique_ptr<XenCalls>* out);

// Reads and validates the p2m of a 64-bit PV domain: (*p2m)[pfn] is the pfn's mfn, or
// kInvalidMfn for a pfn without a frame of its own.
lull::Status ReadP2m(XenCalls* xc, const DomainInfo& d, std::vector<uint64_t>* p2m,
                     P2mAnchor* anchor);

// The set bits among the first `pages` bits of `bitmap`, ascending.
void BitmapToPages(const uint64_t* bitmap, uint64_t pages, std::vector<uint32_t>* out);

// "12" -> 12; a domain id, with an error naming the text otherwise.
lull::Status ParseDomid(const std::string& text, uint32_t* domid);

// A mapped PV domain. Destroying it unmaps, and turns log-dirty off if it turned it on.
class DomainMemory {
 public:
  enum class Access { kRead, kWrite };
  static lull::Status Open(XenCalls* xc, uint32_t domid, Access access,
                           std::unique_ptr<DomainMemory>* out);
  ~DomainMemory();
  DomainMemory(const DomainMemory&) = delete;
  DomainMemory& operator=(const DomainMemory&) = delete;

  uint32_t domid() const { return domid_; }
  uint64_t pages() const { return p2m_.size(); }
  const uint8_t* data() const { return mem_; }  // every pfn, read-only
  // Access::kWrite: the same frames mapped writable; touch only pfns with writable(pfn).
  uint8_t* writable_data() const { return wmem_; }
  const std::vector<uint64_t>& p2m() const { return p2m_; }
  bool present(uint64_t pfn) const { return p2m_[pfn] != kInvalidMfn; }
  // Access::kWrite: whether Xen let us map this pfn writable (a PV guest's page tables
  // and descriptor tables stay read-only to everyone but Xen).
  bool writable(uint64_t pfn) const { return writable_.empty() ? false : writable_[pfn] != 0; }
  uint64_t present_pages() const { return present_; }
  uint64_t p2m_generation() const { return anchor_.p2m_generation; }

  lull::Status Info(DomainInfo* out) const { return xc_->GetDomain(domid_, out); }
  lull::Status Pause() { return xc_->Pause(domid_); }
  lull::Status Unpause() { return xc_->Unpause(domid_); }
  // xc_domain_destroy: the hypervisor's half only; xenstore entries and backends stay
  // for the toolstack (`xl destroy`) to clean up.
  lull::Status Destroy() { return xc_->Destroy(domid_); }
  // Turns log-dirty mode on (Xen's bitmap starts empty then).
  lull::Status StartLogDirty();
  // The pfns written since the last call (or since StartLogDirty), cleared in Xen.
  lull::Status CollectDirty(std::vector<uint32_t>* dirty);
  void StopLogDirty();
  // Checks that the guest did not remap its p2m since Open (the mapping
  // would be stale): Corruption with both generations otherwise.
  lull::Status CheckP2mUnchanged();

 private:
  DomainMemory() = default;
  lull::Status MapAll(bool write);
  XenCalls* xc_ = nullptr;
  uint32_t domid_ = 0;
  DomainInfo info_;
  P2mAnchor anchor_;
  std::vector<uint64_t> p2m_;
  std::vector<uint8_t> writable_;
  std::vector<uint64_t> bitmap_;
  uint64_t present_ = 0;
  uint8_t* mem_ = nullptr;
  uint8_t* wmem_ = nullptr;
  size_t map_bytes_ = 0;
  bool logdirty_ = false;
};

}  // namespace lull::xen
