#include "dom0/xen_memory.h"

#include <sys/mman.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <chrono>
#include <map>
#include <thread>

#include "dom0/xen_memory_xc.h"

namespace lull::xen {

namespace {

std::string Hex(uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%" PRIx64, v);
  return b;
}

std::string Dom(uint32_t domid) { return "domain " + std::to_string(domid); }

lull::Status Errno(const std::string& what, int neg) {
  std::string m = what + ": " + std::strerror(-neg);
  if (neg == -ESRCH) return lull::Status::NotFound(m);
  if (neg == -EPERM || neg == -EACCES) return lull::Status::PermissionDenied(m);
  return lull::Status::Unavailable(m);
}

// libxenctrl behind XenCalls.
class XcCalls : public XenCalls {
 public:
  explicit XcCalls(lull_xm* x) : x_(x) {}
  ~XcCalls() override { lull_xm_close(x_); }

  lull::Status GetDomain(uint32_t domid, DomainInfo* out) override {
    struct lull_xm_dominfo d;
    if (int rc = lull_xm_dominfo(x_, domid, &d); rc < 0)
      return Errno("reading " + Dom(domid) + "'s info (xc_domain_getinfolist)", rc);
    out->domid = d.domid;
    out->hvm = d.hvm;
    out->paused = d.paused;
    out->dying = d.dying;
    out->shutdown = d.shutdown;
    out->guest_width = d.guest_width;
    out->shared_info_frame = d.shared_info_frame;
    out->tot_pages = d.tot_pages;
    out->max_pages = d.max_pages;
    out->cpu_time_ns = d.cpu_time;
    out->max_gpfn = d.max_gpfn;
    out->max_mfn = d.max_mfn;
    return lull::Status::Ok();
  }
  lull::Status ReadAnchor(uint32_t domid, uint64_t sif, P2mAnchor* out) override {
    struct lull_xm_anchor a;
    if (int rc = lull_xm_anchor(x_, domid, sif, &a); rc < 0)
      return Errno("mapping " + Dom(domid) + "'s shared_info (mfn " + Hex(sif) + ")", rc);
    *out = {a.max_pfn, a.fll, a.p2m_cr3, a.p2m_vaddr, a.p2m_generation};
    return lull::Status::Ok();
  }
  lull::Status ReadFrame(uint32_t domid, uint64_t mfn, uint8_t* page) override {
    if (int rc = lull_xm_read_frame(x_, domid, mfn, page); rc < 0)
      return Errno("mapping mfn " + Hex(mfn) + " of " + Dom(domid), rc);
    return lull::Status::Ok();
  }
  lull::Status MapAt(uint32_t domid, void* addr, bool writable, const uint64_t* mfns, size_t n,
                     int* err) override {
    if (int rc = lull_xm_map_at(x_, domid, addr, writable, mfns, n, err); rc < 0)
      return Errno("foreign-mapping " + std::to_string(n) + " frames of " + Dom(domid), rc);
    return lull::Status::Ok();
  }
  lull::Status Pause(uint32_t domid) override {
    if (int rc = lull_xm_pause(x_, domid); rc < 0) return Errno("pausing " + Dom(domid), rc);
    return lull::Status::Ok();
  }
  lull::Status Unpause(uint32_t domid) override {
    if (int rc = lull_xm_unpause(x_, domid); rc < 0) return Errno("unpausing " + Dom(domid), rc);
    return lull::Status::Ok();
  }
  lull::Status Destroy(uint32_t domid) override {
    if (int rc = lull_xm_destroy(x_, domid); rc < 0) return Errno("destroying " + Dom(domid), rc);
    return lull::Status::Ok();
  }
  lull::Status LogDirty(uint32_t domid, bool enable) override {
    int rc = lull_xm_logdirty(x_, domid, enable);
    if (rc == -EOPNOTSUPP)
      return lull::Status::Unavailable(
          "log-dirty mode is not available for " + Dom(domid) +
          ": this hypervisor is built without shadow paging (CONFIG_SHADOW_PAGING, which Debian's "
          "Xen 4.17 leaves out), and a PV guest's log-dirty tracking needs it");
    if (rc < 0)
      return Errno(std::string(enable ? "enabling" : "disabling") + " log-dirty mode of " + Dom(domid) +
                       " (xc_shadow_control)", rc);
    return lull::Status::Ok();
  }
  lull::Status CleanDirty(uint32_t domid, uint64_t* bitmap, uint64_t pages) override {
    uint64_t count = 0;
    if (int rc = lull_xm_clean(x_, domid, bitmap, pages, &count); rc < 0)
      return Errno("reading " + Dom(domid) + "'s dirty bitmap (XEN_DOMCTL_SHADOW_OP_CLEAN)", rc);
    return lull::Status::Ok();
  }

 private:
  lull_xm* x_;
};

// A frame number read from the guest, checked before we map it.
lull::Status CheckFrame(const DomainInfo& d, uint64_t mfn, const std::string& where) {
  if (mfn == 0 || mfn > d.max_mfn)
    return lull::Status::Corruption(Dom(d.domid) + ": " + where + " is mfn " + Hex(mfn) +
                                    (mfn == 0 ? " (frame 0 belongs to Xen)"
                                              : ", beyond the host's highest frame " + Hex(d.max_mfn)));
  return lull::Status::Ok();
}

// Frames read during one walk, each read once.
class FrameCache {
 public:
  FrameCache(XenCalls* xc, uint32_t domid) : xc_(xc), domid_(domid) {}
  lull::Status Get(uint64_t mfn, const uint64_t** words) {
    auto it = frames_.find(mfn);
    if (it == frames_.end()) {
      std::vector<uint64_t> w(kPfnEntries);
      if (auto s = xc_->ReadFrame(domid_, mfn, reinterpret_cast<uint8_t*>(w.data())); !s.ok()) return s;
      it = frames_.emplace(mfn, std::move(w)).first;
    }
    *words = it->second.data();
    return lull::Status::Ok();
  }

 private:
  XenCalls* xc_;
  uint32_t domid_;
  std::map<uint64_t, std::vector<uint64_t>> frames_;
};

// The frames holding the p2m (frame i holds the entries of pfns [512 i, 512 i + 512)),
// from the 3-level tree: frame-list-list -> frame lists -> p2m frames.
lull::Status TreeFrames(const DomainInfo& d, const P2mAnchor& a, FrameCache* fc,
                        std::vector<uint64_t>* frames) {
  const uint64_t n = (a.max_pfn + kPfnEntries - 1) / kPfnEntries;
  const uint64_t lists = (n + kPfnEntries - 1) / kPfnEntries;
  if (lists > kPfnEntries)
    return lull::Status::Corruption(Dom(d.domid) + ": max_pfn " + std::to_string(a.max_pfn) +
                                    " needs " + std::to_string(lists) +
                                    " frame lists, more than a frame-list-list holds");
  if (auto s = CheckFrame(d, a.fll, "pfn_to_mfn_frame_list_list"); !s.ok()) return s;
  const uint64_t* fll;
  if (auto s = fc->Get(a.fll, &fll); !s.ok()) return s;
  std::vector<uint64_t> fll_copy(fll, fll + lists);
  for (uint64_t j = 0; j < lists; ++j) {
    if (auto s = CheckFrame(d, fll_copy[j], "frame-list-list slot " + std::to_string(j)); !s.ok())
      return s;
    const uint64_t* fl;
    if (auto s = fc->Get(fll_copy[j], &fl); !s.ok()) return s;
    for (uint64_t k = 0; k < kPfnEntries && j * kPfnEntries + k < n; ++k) {
      const uint64_t i = j * kPfnEntries + k;
      if (auto s = CheckFrame(d, fl[k], "frame list " + std::to_string(j) + " slot " +
                                            std::to_string(k) + " (p2m frame " + std::to_string(i) + ")");
          !s.ok())
        return s;
      frames->push_back(fl[k]);
    }
  }
  return lull::Status::Ok();
}

// The same from the linear p2m list: p2m frame i is the frame that the guest's page
// tables (root p2m_cr3) map at p2m_vaddr + 4096 i.
lull::Status LinearFrames(const DomainInfo& d, const P2mAnchor& a, FrameCache* fc,
                          std::vector<uint64_t>* frames) {
  constexpr uint64_t kPresent = 1, kPse = 1ull << 7, kAddr = 0x000ffffffffff000ull;
  const uint64_t n = (a.max_pfn + kPfnEntries - 1) / kPfnEntries;
  if (a.p2m_vaddr % kPageSize != 0)
    return lull::Status::Corruption(Dom(d.domid) + ": p2m_vaddr " + Hex(a.p2m_vaddr) +
                                    " is not page aligned");
  // Canonical 48-bit addresses only, and the list must not wrap.
  const uint64_t end = a.p2m_vaddr + n * kPageSize - 1;
  auto canonical = [](uint64_t v) { return (v >> 47) == 0 || (v >> 47) == 0x1ffff; };
  if (!canonical(a.p2m_vaddr) || !canonical(end) || end < a.p2m_vaddr || ((a.p2m_vaddr ^ end) >> 47))
    return lull::Status::Corruption(Dom(d.domid) + ": p2m list [" + Hex(a.p2m_vaddr) + ", " + Hex(end) +
                                    "] is not a canonical address range");
  const uint64_t root = a.p2m_cr3 >> 12;  // xen_cr3_to_pfn_x86_64
  if (auto s = CheckFrame(d, root, "p2m_cr3's root table"); !s.ok()) return s;
  for (uint64_t i = 0; i < n; ++i) {
    const uint64_t va = a.p2m_vaddr + i * kPageSize;
    uint64_t table = root, mfn = 0;
    for (int level = 4; level >= 1; --level) {
      const unsigned shift = 12 + 9 * (level - 1);
      const uint64_t idx = (va >> shift) & (kPfnEntries - 1);
      const uint64_t* t;
      if (auto s = fc->Get(table, &t); !s.ok()) return s;
      const uint64_t pte = t[idx];
      const std::string where = "p2m frame " + std::to_string(i) + " (va " + Hex(va) + "), level " +
                                std::to_string(level) + " slot " + std::to_string(idx);
      if (!(pte & kPresent))
        return lull::Status::Corruption(Dom(d.domid) + ": " + where + " is not present (pte " +
                                        Hex(pte) + ")");
      mfn = (pte & kAddr) >> 12;
      if ((level == 2 || level == 3) && (pte & kPse)) {  // a 2 MiB or 1 GiB page
        const uint64_t within = (va >> 12) & ((1ull << (9 * (level - 1))) - 1);
        mfn = (mfn & ~((1ull << (9 * (level - 1))) - 1)) + within;
        if (auto s = CheckFrame(d, mfn, where); !s.ok()) return s;
        break;
      }
      if (auto s = CheckFrame(d, mfn, where); !s.ok()) return s;
      table = mfn;
    }
    frames->push_back(mfn);
  }
  return lull::Status::Ok();
}

lull::Status ReadP2mOnce(XenCalls* xc, const DomainInfo& d, const P2mAnchor& a,
                         std::vector<uint64_t>* p2m) {
  FrameCache fc(xc, d.domid);
  std::vector<uint64_t> frames;
  lull::Status s;
  if (a.fll != 0 && a.fll != ~0ull) {
    s = TreeFrames(d, a, &fc, &frames);
  } else if (a.p2m_cr3 != 0) {
    s = LinearFrames(d, a, &fc, &frames);
  } else {
    return lull::Status::Unavailable(Dom(d.domid) + " has not published its p2m "
                                     "(frame-list-list " + Hex(a.fll) + ", p2m_cr3 0): still booting?");
  }
  if (!s.ok()) return s;
  p2m->assign(a.max_pfn, kInvalidMfn);
  uint64_t present = 0;
  for (uint64_t i = 0; i < frames.size(); ++i) {
    const uint64_t* e;
    if (auto st = fc.Get(frames[i], &e); !st.ok()) return st;
    for (uint64_t k = 0; k < kPfnEntries; ++k) {
      const uint64_t pfn = i * kPfnEntries + k;
      if (pfn >= a.max_pfn) break;
      const uint64_t m = e[k];
      if (m == kInvalidMfn || (m & kMfnFlagBits)) continue;
      if (auto st = CheckFrame(d, m, "the p2m entry of pfn " + Hex(pfn)); !st.ok()) return st;
      (*p2m)[pfn] = m;
      ++present;
    }
  }
  // Every present entry is a frame the domain owns, so there cannot be more of them
  // than the domain may have.
  if (d.max_pages && present > d.max_pages)
    return lull::Status::Corruption(Dom(d.domid) + ": the p2m maps " + std::to_string(present) +
                                    " pfns, more than the domain's " + std::to_string(d.max_pages) +
                                    " pages");
  return lull::Status::Ok();
}

}  // namespace

lull::Status OpenXen(std::unique_ptr<XenCalls>* out) {
  lull_xm* x = nullptr;
  if (int rc = lull_xm_open(&x); rc < 0)
    return Errno("opening libxenctrl/libxenforeignmemory (needs dom0 with /dev/xen/privcmd, as root)", rc);
  *out = std::make_unique<XcCalls>(x);
  return lull::Status::Ok();
}

lull::Status ParseDomid(const std::string& text, uint32_t* domid) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (text.empty() || *end || errno || text[0] == '-' || text[0] == '+' || v >= 0x7ff0)
    return lull::Status::InvalidArgument("'" + text + "' is not a Xen domain id (0..32751; `xl domid NAME` gives it)");
  *domid = static_cast<uint32_t>(v);
  return lull::Status::Ok();
}

lull::Status ReadP2m(XenCalls* xc, const DomainInfo& d, std::vector<uint64_t>* p2m,
                     P2mAnchor* anchor) {
  if (d.hvm)
    return lull::Status::InvalidArgument(Dom(d.domid) + " is an HVM guest; this backend reads "
                                         "PV guests' p2m only");
  if (d.dying || d.shutdown)
    return lull::Status::Unavailable(Dom(d.domid) + " is shutting down or dying");
  if (d.guest_width != 8)
    return lull::Status::InvalidArgument(Dom(d.domid) + " is a " + std::to_string(d.guest_width * 8) +
                                         "-bit PV guest; only 64-bit guests are supported");
  for (int attempt = 0; attempt < 5; ++attempt) {
    P2mAnchor a;
    if (auto s = xc->ReadAnchor(d.domid, d.shared_info_frame, &a); !s.ok()) return s;
    if (a.max_pfn == 0 || a.max_pfn > kMaxGuestPfns)
      return lull::Status::Corruption(Dom(d.domid) + ": shared_info max_pfn " + std::to_string(a.max_pfn) +
                                      (a.max_pfn ? " is beyond the supported " + std::to_string(kMaxGuestPfns)
                                                 : " (no p2m published)"));
    if (a.p2m_generation & 1) {  // the guest is changing its p2m right now
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      continue;
    }
    if (auto s = ReadP2mOnce(xc, d, a, p2m); !s.ok()) return s;
    P2mAnchor after;
    if (auto s = xc->ReadAnchor(d.domid, d.shared_info_frame, &after); !s.ok()) return s;
    if (after.p2m_generation == a.p2m_generation && after.max_pfn == a.max_pfn) {
      if (anchor) *anchor = a;
      return lull::Status::Ok();
    }
  }
  return lull::Status::Unavailable(Dom(d.domid) + " kept changing its p2m while it was read (5 tries)");
}

void BitmapToPages(const uint64_t* bitmap, uint64_t pages, std::vector<uint32_t>* out) {
  out->clear();
  const uint64_t words = (pages + 63) / 64;
  for (uint64_t w = 0; w < words; ++w) {
    uint64_t b = bitmap[w];
    if (w == words - 1 && pages % 64) b &= (1ull << (pages % 64)) - 1;  // bits past the end
    while (b) {
      out->push_back(static_cast<uint32_t>(w * 64 + static_cast<uint64_t>(__builtin_ctzll(b))));
      b &= b - 1;
    }
  }
}

lull::Status DomainMemory::Open(XenCalls* xc, uint32_t domid, Access access,
                                std::unique_ptr<DomainMemory>* out) {
  std::unique_ptr<DomainMemory> m(new DomainMemory);
  m->xc_ = xc;
  m->domid_ = domid;
  if (auto s = xc->GetDomain(domid, &m->info_); !s.ok()) return s;
  if (auto s = ReadP2m(xc, m->info_, &m->p2m_, &m->anchor_); !s.ok()) return s;
  if (m->p2m_.size() > UINT32_MAX)
    return lull::Status::InvalidArgument(Dom(domid) + ": too many pages for 32-bit page numbers");
  m->map_bytes_ = m->p2m_.size() * kPageSize;
  if (auto s = m->MapAll(false); !s.ok()) return s;
  if (access == Access::kWrite) {
    m->writable_.assign(m->p2m_.size(), 0);
    if (auto s = m->MapAll(true); !s.ok()) return s;
  }
  const uint64_t n = m->p2m_.size();
  m->bitmap_.assign((n + 63) / 64, 0);
  *out = std::move(m);
  return lull::Status::Ok();
}

// One range for the whole guest (zero pages where a pfn has no frame), the frames mapped
// over it in place, in runs of present pfns.
lull::Status DomainMemory::MapAll(bool write) {
  void* base = mmap(nullptr, map_bytes_, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED)
    return lull::Status::Unavailable("reserving " + std::to_string(map_bytes_ >> 20) +
                                     " MiB of address space for " + Dom(domid_) + ": " + std::strerror(errno));
  uint8_t* at = static_cast<uint8_t*>(base);
  (write ? wmem_ : mem_) = at;
  constexpr uint64_t kBatch = 16384;
  std::vector<int> err;
  const uint64_t n = p2m_.size();
  uint64_t mapped = 0;
  for (uint64_t pfn = 0; pfn < n;) {
    if (!present(pfn)) { ++pfn; continue; }
    uint64_t end = pfn;
    while (end < n && end - pfn < kBatch && present(end)) ++end;
    const uint64_t cnt = end - pfn;
    err.assign(cnt, 0);
    if (auto s = xc_->MapAt(domid_, at + pfn * kPageSize, write, &p2m_[pfn], cnt, err.data()); !s.ok())
      return s;
    for (uint64_t i = 0; i < cnt; ++i) {
      if (err[i] == 0) {
        if (write) writable_[pfn + i] = 1;
        ++mapped;
      } else if (!write) {  // a frame the p2m names but Xen will not map: a bad p2m
        return lull::Status::Unavailable(Dom(domid_) + ": Xen refused to map pfn " + Hex(pfn + i) + " (mfn " +
                                         Hex(p2m_[pfn + i]) + "): " + std::strerror(-err[i]));
      }
      // write: Xen keeps this frame read-only (a page table); it stays unmapped here.
    }
    pfn = end;
  }
  if (!write) present_ = mapped;
  return lull::Status::Ok();
}

DomainMemory::~DomainMemory() {
  StopLogDirty();
  if (mem_) munmap(mem_, map_bytes_);
  if (wmem_) munmap(wmem_, map_bytes_);
}

lull::Status DomainMemory::StartLogDirty() {
  if (logdirty_) return lull::Status::Ok();
  if (auto s = xc_->LogDirty(domid_, true); !s.ok()) return s;
  logdirty_ = true;
  return lull::Status::Ok();
}

lull::Status DomainMemory::CollectDirty(std::vector<uint32_t>* dirty) {
  if (!logdirty_) return lull::Status::Internal(Dom(domid_) + ": CollectDirty before StartLogDirty");
  std::fill(bitmap_.begin(), bitmap_.end(), 0);
  if (auto s = xc_->CleanDirty(domid_, bitmap_.data(), pages()); !s.ok()) return s;
  BitmapToPages(bitmap_.data(), pages(), dirty);
  // A write to a pfn without a frame cannot happen; a bit there is Xen's or the guest's
  // p2m having changed under us, which CheckP2mUnchanged reports.
  size_t k = 0;
  for (uint32_t p : *dirty)
    if (present(p)) (*dirty)[k++] = p;
  dirty->resize(k);
  return lull::Status::Ok();
}

void DomainMemory::StopLogDirty() {
  if (!logdirty_) return;
  (void)xc_->LogDirty(domid_, false);
  logdirty_ = false;
}

lull::Status DomainMemory::CheckP2mUnchanged() {
  P2mAnchor a;
  if (auto s = xc_->ReadAnchor(domid_, info_.shared_info_frame, &a); !s.ok()) return s;
  if (a.p2m_generation != anchor_.p2m_generation || a.max_pfn != anchor_.max_pfn)
    return lull::Status::Corruption(Dom(domid_) + " changed its p2m since it was mapped (generation " +
                                    std::to_string(anchor_.p2m_generation) + " -> " +
                                    std::to_string(a.p2m_generation) + ", max_pfn " +
                                    std::to_string(anchor_.max_pfn) + " -> " + std::to_string(a.max_pfn) +
                                    "); ballooning during a migration or snapshot is not supported");
  return lull::Status::Ok();
}

}  // namespace lull::xen
