// lull::migrate codec - how one guest page travels: zero, raw, XBZRLE delta or LZ4.
//
// XBZRLE (QEMU's "XOR-based zero run-length encoding") sends a re-dirtied page as the
// difference from the copy sent last time: alternating runs of unchanged bytes (a length
// only) and changed bytes (a length, then the new bytes), lengths as ULEB128. A trailing
// unchanged run is left out. Runs are found a word at a time, so an almost unchanged page
// costs little more than reading it twice. Our format is our own; QEMU's idea.
//
// Contract:
//   XbzrleEncode returns the encoded length, or -1 when the delta would not be smaller
//   than `limit` (the caller then sends the page another way). An identical page encodes
//   to 0 bytes.
//   XbzrleDecode applies a delta to `page` in place; it returns false (page unspecified)
//   when the delta is malformed or runs past the page: the wire is not trusted.
//   Lz4Compress returns the compressed length or -1 when it would not be smaller than
//   `limit`; Lz4Decompress returns false unless exactly `page_size` bytes come out.
// All functions are pure and thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>

namespace lull::migrate {

// How a page is encoded on the wire (one byte per page record).
enum class PageEncoding : uint8_t { kRaw = 0, kZero = 1, kXbzrle = 2, kLz4 = 3 };
const char* PageEncodingName(PageEncoding e);

bool IsZeroPage(const uint8_t* page, size_t size);

// Worst case output for a page of `size` bytes (callers size buffers with it).
size_t XbzrleBound(size_t size);
long XbzrleEncode(const uint8_t* old_page, const uint8_t* new_page, size_t size,
                  uint8_t* out, size_t limit);
bool XbzrleDecode(const uint8_t* delta, size_t len, uint8_t* page, size_t size);

size_t Lz4Bound(size_t size);
long Lz4Compress(const uint8_t* page, size_t size, uint8_t* out, size_t limit,
                 int acceleration);
bool Lz4Decompress(const uint8_t* in, size_t len, uint8_t* page, size_t page_size);

}  // namespace lull::migrate
