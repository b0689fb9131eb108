// FakeXen - lull::xen::XenCalls over an in-process "machine" for host tests of the Xen
// backend (dom0/xen_memory.h, dom0/migrate/xen_guest.h, dom0/snapshot/xen_snapshot.h).
//
// Machine memory is a memfd of `frames` 4 KiB frames; MapAt maps frames of it with
// MAP_FIXED|MAP_SHARED, so a "foreign mapping" sees the guest's later writes as a real
// one does. A PV guest is built as Linux lays one out: data frames for its pfns in a
// shuffled (non-identity) order, holes as invalid p2m entries, and its p2m published
// either as the 3-level frame-list tree or as the linear list mapped by 4-level page
// tables (which Xen keeps read-only to writable mappings, as it does a real guest's).
// Guest writes go through Write(), which marks Xen's dirty bitmap in log-dirty mode.
// Thread-safe: the engine maps and cleans on its thread while a test thread writes.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <ostream>
#include <random>
#include <set>
#include <vector>

#include "dom0/xen_memory.h"

namespace lull::xen::testing {

class FakeXen : public XenCalls {
 public:
  struct Domain {
    DomainInfo info;
    P2mAnchor anchor;
    std::vector<uint64_t> p2m;          // what the guest's p2m says
    std::set<uint64_t> readonly;        // frames Xen will not map writable
    bool logdirty = false;
    std::vector<uint64_t> dirty;        // Xen's bitmap, by pfn
    int pause_count = 0;
  };
  enum class Layout { kTree, kLinear };
  // Readable parameters in test names ("GetParam() = tree", not a byte dump).
  friend void PrintTo(Layout l, std::ostream* os) { *os << (l == Layout::kTree ? "tree" : "linear"); }

  explicit FakeXen(uint64_t frames) : frames_(frames) {
    fd_ = memfd_create("fake-xen-machine", MFD_CLOEXEC);
    if (fd_ < 0 || ftruncate(fd_, static_cast<off_t>(frames * kPageSize)) != 0) abort();
    next_ = 16;  // low frames belong to "Xen"
  }
  ~FakeXen() override { close(fd_); }

  // A 64-bit PV guest of `pages` pfns; pfns in `holes` have no frame. Content: pfn p's
  // page is filled with byte (p * 7 + seed) & 0xff, every eighth page all zeros.
  uint32_t AddGuest(uint64_t pages, Layout layout, const std::set<uint64_t>& holes = {},
                    uint8_t seed = 1) {
    std::lock_guard<std::mutex> l(mu_);
    const uint32_t domid = next_domid_++;
    Domain& d = doms_[domid];
    d.info.domid = domid;
    d.info.guest_width = 8;
    d.info.max_pages = pages + 64;
    d.info.tot_pages = pages - holes.size();
    d.info.max_mfn = frames_ - 1;
    d.info.max_gpfn = pages - 1;
    d.info.shared_info_frame = Alloc(1)[0];
    std::vector<uint64_t> data = Alloc(pages);
    std::mt19937_64 rng(domid * 77 + pages);
    std::shuffle(data.begin(), data.end(), rng);
    d.p2m.assign(pages, kInvalidMfn);
    for (uint64_t p = 0; p < pages; ++p) {
      if (holes.count(p)) continue;
      d.p2m[p] = data[p];
      std::vector<uint8_t> page(kPageSize, p % 8 == 7 ? 0 : static_cast<uint8_t>(p * 7 + seed));
      PutFrame(data[p], page.data());
    }
    // The p2m frames themselves (entries past max_pfn are ~0, as Linux leaves them).
    const uint64_t n = (pages + kPfnEntries - 1) / kPfnEntries;
    std::vector<uint64_t> p2m_frames = Alloc(n);
    for (uint64_t i = 0; i < n; ++i) {
      std::vector<uint64_t> e(kPfnEntries, kInvalidMfn);
      for (uint64_t k = 0; k < kPfnEntries && i * kPfnEntries + k < pages; ++k) e[k] = d.p2m[i * kPfnEntries + k];
      PutFrame(p2m_frames[i], e.data());
    }
    d.anchor.max_pfn = pages;
    if (layout == Layout::kTree) {
      const uint64_t lists = (n + kPfnEntries - 1) / kPfnEntries;
      std::vector<uint64_t> fl_frames = Alloc(lists);
      std::vector<uint64_t> fll(kPfnEntries, 0);
      for (uint64_t j = 0; j < lists; ++j) {
        std::vector<uint64_t> fl(kPfnEntries, 0);
        for (uint64_t k = 0; k < kPfnEntries && j * kPfnEntries + k < n; ++k) fl[k] = p2m_frames[j * kPfnEntries + k];
        PutFrame(fl_frames[j], fl.data());
        fll[j] = fl_frames[j];
      }
      d.anchor.fll = Alloc(1)[0];
      PutFrame(d.anchor.fll, fll.data());
    } else {
      d.anchor.fll = ~0ull;  // SIF_VIRT_P2M_4TOOLS: the tree is not kept
      d.anchor.p2m_vaddr = 0xffffc90000000000ull + 0x200000ull * domid;
      const uint64_t root = Alloc(1)[0];
      d.readonly.insert(root);
      d.anchor.p2m_cr3 = root << 12;
      for (uint64_t i = 0; i < n; ++i) MapVa(&d, root, d.anchor.p2m_vaddr + i * kPageSize, p2m_frames[i]);
      // A guest's page tables are read-only to everyone but Xen; so is one data page
      // standing for a process page table.
      if (pages > 5 && !holes.count(5)) d.readonly.insert(d.p2m[5]);
    }
    d.dirty.assign((pages + 63) / 64, 0);
    return domid;
  }

  Domain& dom(uint32_t domid) { return doms_.at(domid); }  // single-threaded use only
  bool paused(uint32_t domid) {
    std::lock_guard<std::mutex> l(mu_);
    return doms_.at(domid).pause_count > 0;
  }
  uint64_t frames() const { return frames_; }

  // The guest writes `byte` at `offset` of pfn `pfn`.
  void Write(uint32_t domid, uint64_t pfn, size_t offset, uint8_t byte) {
    std::lock_guard<std::mutex> l(mu_);
    Domain& d = doms_.at(domid);
    const uint64_t mfn = d.p2m.at(pfn);
    if (pwrite(fd_, &byte, 1, static_cast<off_t>(mfn * kPageSize + offset)) != 1) abort();
    if (d.logdirty) d.dirty[pfn / 64] |= 1ull << (pfn % 64);
  }
  void ReadGuestPage(uint32_t domid, uint64_t pfn, uint8_t* out) {
    std::lock_guard<std::mutex> l(mu_);
    GetFrame(doms_.at(domid).p2m.at(pfn), out);
  }
  // Overwrites a p2m entry in the guest's own p2m frame (a corrupt or hostile guest).
  void SetP2mEntry(uint32_t domid, uint64_t pfn, uint64_t value) {
    std::lock_guard<std::mutex> l(mu_);
    Domain& d = doms_.at(domid);
    std::vector<uint64_t> frames;
    FindP2mFrames(d, &frames);
    const uint64_t off = frames.at(pfn / kPfnEntries) * kPageSize + (pfn % kPfnEntries) * 8;
    if (pwrite(fd_, &value, 8, static_cast<off_t>(off)) != 8) abort();
  }
  // Writes a 64-bit word of machine frame `mfn` (page-table corruption tests).
  void PokeFrame(uint64_t mfn, uint64_t index, uint64_t value) {
    std::lock_guard<std::mutex> l(mu_);
    if (pwrite(fd_, &value, 8, static_cast<off_t>(mfn * kPageSize + index * 8)) != 8) abort();
  }
  uint64_t PeekFrame(uint64_t mfn, uint64_t index) {
    std::lock_guard<std::mutex> l(mu_);
    uint64_t v = 0;
    if (pread(fd_, &v, 8, static_cast<off_t>(mfn * kPageSize + index * 8)) != 8) abort();
    return v;
  }
  int anchor_reads = 0;
  int bump_generation_at_read = -1;  // the Nth ReadAnchor sees a p2m_generation bump

  // ---- XenCalls ----
  lull::Status GetDomain(uint32_t domid, DomainInfo* out) override {
    std::lock_guard<std::mutex> l(mu_);
    auto it = doms_.find(domid);
    if (it == doms_.end()) return lull::Status::NotFound("domain " + std::to_string(domid) + ": no such domain");
    *out = it->second.info;
    out->paused = it->second.pause_count > 0;
    return lull::Status::Ok();
  }
  lull::Status ReadAnchor(uint32_t domid, uint64_t sif, P2mAnchor* out) override {
    std::lock_guard<std::mutex> l(mu_);
    Domain& d = doms_.at(domid);
    if (sif != d.info.shared_info_frame) return lull::Status::Unavailable("wrong shared_info frame");
    if (anchor_reads++ == bump_generation_at_read) d.anchor.p2m_generation += 2;
    *out = d.anchor;
    return lull::Status::Ok();
  }
  lull::Status ReadFrame(uint32_t domid, uint64_t mfn, uint8_t* page) override {
    std::lock_guard<std::mutex> l(mu_);
    (void)domid;
    if (mfn >= frames_) return lull::Status::Unavailable("mapping mfn beyond the machine");
    GetFrame(mfn, page);
    return lull::Status::Ok();
  }
  lull::Status MapAt(uint32_t domid, void* addr, bool writable, const uint64_t* mfns, size_t n,
                     int* err) override {
    std::lock_guard<std::mutex> l(mu_);
    Domain& d = doms_.at(domid);
    for (size_t i = 0; i < n; ++i) {
      uint8_t* at = static_cast<uint8_t*>(addr) + i * kPageSize;
      if (mfns[i] >= frames_) { err[i] = -EFAULT; continue; }
      if (writable && d.readonly.count(mfns[i])) {
        // Xen refuses; the privcmd range stays unmapped there (PROT_NONE here).
        mmap(at, kPageSize, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        err[i] = -EINVAL;
        continue;
      }
      void* p = mmap(at, kPageSize, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED | MAP_FIXED, fd_,
                     static_cast<off_t>(mfns[i] * kPageSize));
      err[i] = p == MAP_FAILED ? -errno : 0;
      if (writable && p != MAP_FAILED) ++writable_maps;
    }
    return lull::Status::Ok();
  }
  lull::Status Pause(uint32_t domid) override {
    std::lock_guard<std::mutex> l(mu_);
    ++doms_.at(domid).pause_count;
    return lull::Status::Ok();
  }
  lull::Status Unpause(uint32_t domid) override {
    std::lock_guard<std::mutex> l(mu_);
    Domain& d = doms_.at(domid);
    if (d.pause_count == 0) return lull::Status::Unavailable("unpausing a domain that is not paused");
    --d.pause_count;
    return lull::Status::Ok();
  }
  lull::Status Destroy(uint32_t domid) override {
    std::lock_guard<std::mutex> l(mu_);
    doms_.at(domid).info.dying = true;
    return lull::Status::Ok();
  }
  bool logdirty_supported = true;  // false: a hypervisor without shadow paging
  lull::Status LogDirty(uint32_t domid, bool enable) override {
    std::lock_guard<std::mutex> l(mu_);
    if (!logdirty_supported) return lull::Status::Unavailable("log-dirty mode is not available (fake)");
    Domain& d = doms_.at(domid);
    d.logdirty = enable;
    std::fill(d.dirty.begin(), d.dirty.end(), 0);
    return lull::Status::Ok();
  }
  lull::Status CleanDirty(uint32_t domid, uint64_t* bitmap, uint64_t pages) override {
    std::lock_guard<std::mutex> l(mu_);
    Domain& d = doms_.at(domid);
    if (!d.logdirty) return lull::Status::Unavailable("CLEAN without log-dirty mode");
    std::copy(d.dirty.begin(), d.dirty.begin() + static_cast<ptrdiff_t>((pages + 63) / 64), bitmap);
    std::fill(d.dirty.begin(), d.dirty.end(), 0);
    return lull::Status::Ok();
  }
  uint64_t writable_maps = 0;

 private:
  std::vector<uint64_t> Alloc(uint64_t n) {
    if (next_ + n > frames_) abort();
    std::vector<uint64_t> v(n);
    for (uint64_t i = 0; i < n; ++i) v[i] = next_++;
    return v;
  }
  void PutFrame(uint64_t mfn, const void* page) {
    if (pwrite(fd_, page, kPageSize, static_cast<off_t>(mfn * kPageSize)) != static_cast<ssize_t>(kPageSize)) abort();
  }
  void GetFrame(uint64_t mfn, void* page) {
    if (pread(fd_, page, kPageSize, static_cast<off_t>(mfn * kPageSize)) != static_cast<ssize_t>(kPageSize)) abort();
  }
  // Maps va -> mfn in the 4-level tables under root, allocating tables as needed.
  void MapVa(Domain* d, uint64_t root, uint64_t va, uint64_t mfn) {
    uint64_t table = root;
    for (int level = 4; level > 1; --level) {
      const uint64_t idx = (va >> (12 + 9 * (level - 1))) & 511;
      uint64_t pte = 0;
      if (pread(fd_, &pte, 8, static_cast<off_t>(table * kPageSize + idx * 8)) != 8) abort();
      if (!(pte & 1)) {
        const uint64_t t = Alloc(1)[0];
        d->readonly.insert(t);
        pte = (t << 12) | 0x67;
        if (pwrite(fd_, &pte, 8, static_cast<off_t>(table * kPageSize + idx * 8)) != 8) abort();
      }
      table = (pte >> 12) & 0xffffffffffull;
    }
    const uint64_t pte = (mfn << 12) | 0x63;
    if (pwrite(fd_, &pte, 8, static_cast<off_t>(table * kPageSize + ((va >> 12) & 511) * 8)) != 8) abort();
  }
  void FindP2mFrames(const Domain& d, std::vector<uint64_t>* out) {
    const uint64_t n = (d.anchor.max_pfn + kPfnEntries - 1) / kPfnEntries;
    for (uint64_t i = 0; i < n; ++i) {
      if (d.anchor.fll != ~0ull) {
        uint64_t fl = 0, f = 0;
        if (pread(fd_, &fl, 8, static_cast<off_t>(d.anchor.fll * kPageSize + (i / kPfnEntries) * 8)) != 8) abort();
        if (pread(fd_, &f, 8, static_cast<off_t>(fl * kPageSize + (i % kPfnEntries) * 8)) != 8) abort();
        out->push_back(f);
      } else {
        uint64_t table = d.anchor.p2m_cr3 >> 12, va = d.anchor.p2m_vaddr + i * kPageSize;
        for (int level = 4; level >= 1; --level) {
          uint64_t pte = 0;
          const uint64_t idx = (va >> (12 + 9 * (level - 1))) & 511;
          if (pread(fd_, &pte, 8, static_cast<off_t>(table * kPageSize + idx * 8)) != 8) abort();
          table = (pte >> 12) & 0xffffffffffull;
        }
        out->push_back(table);
      }
    }
  }

  std::mutex mu_;
  uint64_t frames_;
  int fd_ = -1;
  uint64_t next_ = 0;
  uint32_t next_domid_ = 1;
  std::map<uint32_t, Domain> doms_;
};

}  // namespace lull::xen::testing
