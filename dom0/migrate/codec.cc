#include "dom0/migrate/codec.h"

#include <lz4.h>

#include <cstring>

namespace lull::migrate {

namespace {

inline uint64_t Load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline size_t PutUleb(uint8_t* out, size_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    out[n++] = static_cast<uint8_t>(v | 0x80);
    v >>= 7;
  }
  out[n++] = static_cast<uint8_t>(v);
  return n;
}

inline bool GetUleb(const uint8_t* in, size_t len, size_t* pos, size_t* v) {
  size_t r = 0;
  for (int shift = 0; shift < 35; shift += 7) {
    if (*pos >= len) return false;
    uint8_t b = in[(*pos)++];
    r |= static_cast<size_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *v = r;
      return true;
    }
  }
  return false;
}

// A changed run ends only where at least this many bytes in a row are unchanged: a
// shorter gap costs more in two lengths than the bytes it would save.
constexpr size_t kMinGap = 3;

}  // namespace

const char* PageEncodingName(PageEncoding e) {
  switch (e) {
    case PageEncoding::kRaw: return "raw";
    case PageEncoding::kZero: return "zero";
    case PageEncoding::kXbzrle: return "xbzrle";
    case PageEncoding::kLz4: return "lz4";
  }
  return "unknown";
}

bool IsZeroPage(const uint8_t* page, size_t size) {
  size_t i = 0;
  uint64_t acc = 0;
  for (; i + 32 <= size; i += 32) {
    acc |= Load64(page + i) | Load64(page + i + 8) | Load64(page + i + 16) |
           Load64(page + i + 24);
    if (acc) return false;
  }
  for (; i < size; ++i) acc |= page[i];
  return acc == 0;
}

size_t XbzrleBound(size_t size) { return size + 2 * 5 * (size / (kMinGap + 1) + 1); }

long XbzrleEncode(const uint8_t* a, const uint8_t* b, size_t size, uint8_t* out,
                  size_t limit) {
  size_t i = 0, o = 0;
  while (i < size) {
    // Unchanged run: whole words first, then bytes.
    size_t start = i;
    while (i + 8 <= size && Load64(a + i) == Load64(b + i)) i += 8;
    while (i < size && a[i] == b[i]) ++i;
    if (i == size) break;  // trailing unchanged run is implied
    size_t zrun = i - start;
    // Changed run: until kMinGap equal bytes in a row (or the end).
    size_t cstart = i;
    while (i < size) {
      if (a[i] != b[i]) {
        ++i;
        continue;
      }
      size_t j = i;
      while (j < size && j - i < kMinGap && a[j] == b[j]) ++j;
      if (j - i >= kMinGap || j == size) break;
      i = j;
    }
    size_t crun = i - cstart;
    if (o + 10 + crun >= limit) return -1;
    o += PutUleb(out + o, zrun);
    o += PutUleb(out + o, crun);
    std::memcpy(out + o, b + cstart, crun);
    o += crun;
  }
  return static_cast<long>(o);
}

bool XbzrleDecode(const uint8_t* d, size_t len, uint8_t* page, size_t size) {
  size_t pos = 0, at = 0;
  while (pos < len) {
    size_t zrun, crun;
    if (!GetUleb(d, len, &pos, &zrun) || !GetUleb(d, len, &pos, &crun)) return false;
    if (crun == 0 || zrun > size - at || crun > size - at - zrun || crun > len - pos)
      return false;
    at += zrun;
    std::memcpy(page + at, d + pos, crun);
    at += crun;
    pos += crun;
  }
  return true;
}

size_t Lz4Bound(size_t size) { return static_cast<size_t>(LZ4_compressBound(static_cast<int>(size))); }

long Lz4Compress(const uint8_t* page, size_t size, uint8_t* out, size_t limit,
                 int acceleration) {
  int n = LZ4_compress_fast(reinterpret_cast<const char*>(page), reinterpret_cast<char*>(out),
                            static_cast<int>(size), static_cast<int>(limit), acceleration);
  if (n <= 0 || static_cast<size_t>(n) >= limit) return -1;
  return n;
}

bool Lz4Decompress(const uint8_t* in, size_t len, uint8_t* page, size_t page_size) {
  int n = LZ4_decompress_safe(reinterpret_cast<const char*>(in), reinterpret_cast<char*>(page),
                              static_cast<int>(len), static_cast<int>(page_size));
  return n >= 0 && static_cast<size_t>(n) == page_size;
}

}  // namespace lull::migrate
