// lull::migrate::PageSender - encodes guest pages into PAGES messages (source side).
//
// Keeps the XBZRLE cache (direct-mapped: slot = page mod slots, tagged with the page
// number, QEMU's layout) and the per-page hashes of what was sent. Each page is copied
// out of the running guest once, then hashed, encoded and cached from that copy, so a
// write racing with the send cannot make the delta and the hash disagree. Also used
// on its own by the encoding benchmark. Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "dom0/migrate/codec.h"

namespace lull::migrate {

class PageSender {
 public:
  PageSender(size_t pages, size_t page_size, bool xbzrle, bool lz4, int lz4_acceleration,
             uint64_t cache_bytes);
  // Appends one page record to `out` (a PAGES payload), reading the page from `guest`.
  PageEncoding Encode(const uint8_t* guest, uint32_t page, std::vector<uint8_t>* out);
  // XXH3 over the per-page hashes of everything sent.
  uint64_t Checksum() const;
  size_t page_size() const { return ps_; }

 private:
  size_t pages_, ps_;
  bool xbzrle_, lz4_;
  int accel_;
  size_t slots_;
  std::vector<uint8_t> cache_;
  std::vector<uint32_t> tags_;  // page + 1 in each slot, 0 = empty
  std::vector<uint64_t> hashes_;
  std::vector<uint8_t> copy_, tmp_;
};

}  // namespace lull::migrate
