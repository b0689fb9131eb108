#include "dom0/migrate/page_sender.h"

#include <xxhash.h>

#include <cstring>

namespace lull::migrate {

namespace {

void PutRecord(std::vector<uint8_t>* out, uint32_t page, PageEncoding e, const uint8_t* data,
               size_t len) {
  size_t at = out->size();
  out->resize(at + 8 + len);
  uint32_t w = (uint32_t(e) << 24) | static_cast<uint32_t>(len);
  std::memcpy(out->data() + at, &page, 4);
  std::memcpy(out->data() + at + 4, &w, 4);
  if (len) std::memcpy(out->data() + at + 8, data, len);
}

}  // namespace

PageSender::PageSender(size_t pages, size_t page_size, bool xbzrle, bool lz4, int accel,
                       uint64_t cache_bytes)
    : pages_(pages), ps_(page_size), xbzrle_(xbzrle), lz4_(lz4), accel_(accel),
      hashes_(pages, XXH3_64bits(nullptr, 0)), copy_(page_size) {
  if (xbzrle_) {
    uint64_t want = cache_bytes ? cache_bytes : uint64_t(pages) * page_size;
    slots_ = static_cast<size_t>(want / page_size);
    if (slots_ > pages) slots_ = pages;
    if (slots_ == 0) slots_ = 1;
    cache_.resize(slots_ * page_size);
    tags_.assign(slots_, 0);
  } else {
    slots_ = 0;
  }
  tmp_.resize(std::max(XbzrleBound(page_size), Lz4Bound(page_size)));
}

PageEncoding PageSender::Encode(const uint8_t* guest, uint32_t page, std::vector<uint8_t>* out) {
  const uint8_t* src = guest + size_t(page) * ps_;
  std::memcpy(copy_.data(), src, ps_);
  const uint8_t* p = copy_.data();
  hashes_[page] = XXH3_64bits(p, ps_);
  PageEncoding enc = PageEncoding::kRaw;
  long n = -1;
  uint8_t* slot = nullptr;
  bool cached = false;
  if (xbzrle_) {
    size_t s = page % slots_;
    slot = cache_.data() + s * ps_;
    cached = tags_[s] == page + 1;
    tags_[s] = page + 1;
  }
  if (IsZeroPage(p, ps_)) {
    enc = PageEncoding::kZero;
    n = 0;
  } else if (cached) {
    n = XbzrleEncode(slot, p, ps_, tmp_.data(), ps_ / 2);
    if (n >= 0) enc = PageEncoding::kXbzrle;
  }
  if (n < 0 && lz4_) {
    n = Lz4Compress(p, ps_, tmp_.data(), ps_ - 64, accel_);
    if (n >= 0) enc = PageEncoding::kLz4;
  }
  if (slot) std::memcpy(slot, p, ps_);
  if (enc == PageEncoding::kRaw) PutRecord(out, page, enc, p, ps_);
  else PutRecord(out, page, enc, tmp_.data(), static_cast<size_t>(n));
  return enc;
}

uint64_t PageSender::Checksum() const {
  return XXH3_64bits(hashes_.data(), hashes_.size() * sizeof(uint64_t));
}

}  // namespace lull::migrate
