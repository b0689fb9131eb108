#include "dom0/migrate/xen_guest.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include <xxhash.h>

namespace lull::migrate {

lull::Status XenGuestMemory::ParseDirtyMode(const std::string& text, DirtyMode* out) {
  if (text == "auto") *out = DirtyMode::kAuto;
  else if (text == "logdirty") *out = DirtyMode::kLogDirty;
  else if (text == "scan") *out = DirtyMode::kScan;
  else return lull::Status::InvalidArgument("dirty tracking '" + text + "' is not auto, logdirty or scan");
  return lull::Status::Ok();
}

lull::Status XenGuestMemory::Open(xen::XenCalls* xc, uint32_t domid, OnRelease on_release,
                                  std::unique_ptr<XenGuestMemory>* out, DirtyMode mode) {
  std::unique_ptr<XenGuestMemory> g(new XenGuestMemory);
  if (auto s = xen::DomainMemory::Open(xc, domid, xen::DomainMemory::Access::kRead, &g->mem_); !s.ok())
    return s;
  g->on_release_ = on_release;
  if (mode != DirtyMode::kScan) {
    lull::Status s = g->mem_->StartLogDirty();
    if (s.ok()) {
      g->note_ = "log-dirty (xc_shadow_control)";
    } else if (mode == DirtyMode::kLogDirty) {
      return s;
    } else {
      g->note_ = "page comparison (log-dirty refused: " + s.message() + ")";
      mode = DirtyMode::kScan;
    }
  } else {
    g->note_ = "page comparison (asked for)";
  }
  if (mode == DirtyMode::kScan) {
    const size_t bytes = g->pages() * xen::kPageSize;
    // Pre-faulted: in a PV dom0 every first touch is a page-table update through Xen,
    // which must not happen on the migration's clock.
    void* m = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (m == MAP_FAILED)
      return lull::Status::Unavailable("allocating the " + std::to_string(bytes >> 20) +
                                       " MiB copy for page-comparison tracking: " + std::strerror(errno));
    g->copy_ = static_cast<uint8_t*>(m);
  }
  *out = std::move(g);
  return lull::Status::Ok();
}

XenGuestMemory::~XenGuestMemory() {
  // A migration that failed resumed the guest already; never leave our pause behind.
  if (paused_ && !released_) (void)Resume();
  if (copy_) munmap(copy_, pages() * xen::kPageSize);
}

lull::Status XenGuestMemory::Scan(std::vector<uint32_t>* dirty) {
  dirty->clear();
  const uint8_t* live = mem_->data();
  const size_t ps = xen::kPageSize;
  for (size_t p = 0; p < pages(); ++p) {
    if (!tracking_ || std::memcmp(live + p * ps, copy_ + p * ps, ps) != 0) {
      std::memcpy(copy_ + p * ps, live + p * ps, ps);
      dirty->push_back(static_cast<uint32_t>(p));
    }
  }
  return lull::Status::Ok();
}

lull::Status XenGuestMemory::CollectDirty(std::vector<uint32_t>* dirty) {
  if (tracking_) {
    if (auto s = mem_->CheckP2mUnchanged(); !s.ok()) return s;
  }
  if (copy_) {
    lull::Status s = Scan(dirty);
    tracking_ = true;
    return s;
  }
  // Log-dirty: the bitmap is cleared now, so a page written during the full read the
  // caller does after the first call is reported by the next.
  if (auto s = mem_->CollectDirty(dirty); !s.ok()) return s;
  const uint8_t* live = mem_->data();
  const size_t ps = xen::kPageSize;
  if (!tracking_) {
    tracking_ = true;
    dirty->resize(pages());
    for (size_t i = 0; i < dirty->size(); ++i) (*dirty)[i] = static_cast<uint32_t>(i);
    hash_.assign(pages(), 0);
  } else if (paused_) {
    // The stop-and-copy: add what Xen wrote without marking (see the header).
    std::vector<bool> marked(pages());
    for (uint32_t p : *dirty)
      if (p < marked.size()) marked[p] = true;
    for (size_t p = 0; p < pages(); ++p) {
      if (!marked[p] && XXH3_64bits(live + p * ps, ps) != hash_[p]) {
        dirty->push_back(static_cast<uint32_t>(p));
        ++unmarked_;
      }
    }
  }
  for (uint32_t p : *dirty)
    if (p < hash_.size()) hash_[p] = XXH3_64bits(live + size_t{p} * ps, ps);
  return lull::Status::Ok();
}

lull::Status XenGuestMemory::Pause() {
  if (paused_) return lull::Status::Ok();
  if (auto s = mem_->Pause(); !s.ok()) return s;
  paused_ = true;
  return lull::Status::Ok();
}

lull::Status XenGuestMemory::Resume() {
  if (!paused_) return lull::Status::Ok();
  if (auto s = mem_->Unpause(); !s.ok()) return s;
  paused_ = false;
  return lull::Status::Ok();
}

void XenGuestMemory::Release() {
  if (released_) return;
  mem_->StopLogDirty();
  switch (on_release_) {
    case OnRelease::kDestroy:
      // Stays paused if the destroy fails: the guest must never run in two places.
      (void)mem_->Destroy();
      break;
    case OnRelease::kUnpause:
      (void)Resume();
      break;
    case OnRelease::kKeepPaused:
      break;
  }
  released_ = true;
}

std::string XenGuestMemory::Describe() const {
  return "xen-pv domid=" + std::to_string(mem_->domid()) + " pages=" + std::to_string(pages()) +
         " present=" + std::to_string(mem_->present_pages());
}

uint64_t MemoryHash(const uint8_t* data, size_t bytes) { return XXH3_64bits(data, bytes); }

// ---- target side ---------------------------------------------------------------------

ReceivedGuest::~ReceivedGuest() {
  if (data) munmap(data, pages * page_size);
}

class ReceivedTarget : public TargetGuest {
 public:
  ReceivedTarget(ReceivedMemoryFactory* f, std::unique_ptr<ReceivedGuest> g) : f_(f), g_(std::move(g)) {}
  size_t pages() const override { return g_ ? g_->pages : 0; }
  size_t page_size() const override { return g_ ? g_->page_size : 4096; }
  uint8_t* data() override { return g_ ? g_->data : nullptr; }
  lull::Status Start(const std::string& description) override {
    if (!g_) return lull::Status::Internal("target memory already destroyed");
    if (description.empty()) return lull::Status::InvalidArgument("the source sent no guest description");
    g_->description = description;
    return lull::Status::Ok();
  }
  void Commit() override {
    if (g_) f_->Add(std::move(g_));
  }
  void Destroy() override { g_.reset(); }

 private:
  ReceivedMemoryFactory* f_;
  std::unique_ptr<ReceivedGuest> g_;
};

lull::Status ReceivedMemoryFactory::Create(size_t pages, size_t page_size,
                                           std::unique_ptr<TargetGuest>* out) {
  if (page_size != xen::kPageSize)
    return lull::Status::InvalidArgument("page size " + std::to_string(page_size) + " is not 4096");
  auto g = std::make_unique<ReceivedGuest>();
  // Pre-faulted now, so the migration never waits for the allocator (or learns late
  // that the memory is not there).
  void* m = mmap(nullptr, pages * page_size, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (m == MAP_FAILED)
    return lull::Status::Unavailable("allocating " + std::to_string(pages * page_size >> 20) +
                                     " MiB for the incoming guest: " + std::strerror(errno));
  g->data = static_cast<uint8_t*>(m);
  g->pages = pages;
  g->page_size = page_size;
  *out = std::make_unique<ReceivedTarget>(this, std::move(g));
  return lull::Status::Ok();
}

void ReceivedMemoryFactory::Add(std::unique_ptr<ReceivedGuest> g) {
  std::lock_guard<std::mutex> l(mu_);
  committed_.push_back(std::move(g));
}

std::unique_ptr<ReceivedGuest> ReceivedMemoryFactory::TakeCommitted() {
  std::lock_guard<std::mutex> l(mu_);
  if (committed_.empty()) return nullptr;
  auto g = std::move(committed_.front());
  committed_.erase(committed_.begin());
  return g;
}

}  // namespace lull::migrate
