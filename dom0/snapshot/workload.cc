#include "dom0/snapshot/workload.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

namespace lull::snapshot {
namespace {

constexpr uint64_t kMagic = 0x31564b4c4c554cull;  // "LULLKV1"
constexpr uint64_t kSlot = 256;
constexpr uint64_t kPage = 4096;

// The program's own pages: request handlers ("code" and their runtime data), one path of
// kPathPages pages per request type, shared by every query of that type - the part of a
// resumed guest's first touches that is the same from one resume to the next.
constexpr uint64_t kTypes = 48;
constexpr uint64_t kPathPages = 32;
constexpr uint64_t kRuntimePages = 2048;  // 8 MiB of code, libraries, runtime heap

struct Header {
  uint64_t magic, nbuckets, buckets_off, nrecords, heap_off, heap_bytes;
  uint64_t runtime_off, runtime_pages;
};
struct Record {
  uint64_t key, next;
  uint32_t vlen, pad;
  // value bytes follow
};

uint64_t Mix(uint64_t x) {  // splitmix64 finalizer
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
uint64_t KeyOf(uint64_t index) { return Mix(index * 0x2545f4914f6cdd1dull + 17); }

// Text-like bytes: words from a small vocabulary, so pages compress like real memory.
void FillText(uint8_t* p, size_t n, uint64_t seed) {
  static const char* kWords[] = {"the ", "guest ", "memory ", "page ", "lull ", "of ", "and ",
                                 "snapshot ", "kernel ", "0x7f3a ", "error ", "data ", "in ",
                                 "request ", "user ", "cache ", "{\"id\": ", "null, ", "true ",
                                 "buffer ", "time ", "=", "\n", "    ", "42 ", "1024 "};
  constexpr size_t kN = sizeof(kWords) / sizeof(kWords[0]);
  uint64_t s = Mix(seed);
  size_t i = 0;
  while (i < n) {
    s ^= s << 13; s ^= s >> 7; s ^= s << 17;
    if ((s & 7) == 0) {  // some entropy, as real data has
      p[i++] = static_cast<uint8_t>(s >> 24);
      continue;
    }
    const char* w = kWords[(s >> 8) % kN];
    for (; *w && i < n; ++w) p[i++] = static_cast<uint8_t>(*w);
  }
}

}  // namespace

Status KvBuild(uint8_t* mem, uint64_t bytes, const KvConfig& cfg, uint64_t* records) {
  if (bytes < 64 * kPage || bytes % kPage != 0 || !(cfg.store_fraction > 0) ||
      cfg.store_fraction > 0.9 || cfg.zero_fraction < 0 || cfg.zero_fraction > 1) {
    return Status::InvalidArgument("kv guest: memory must be >= 256 KiB and page aligned, "
                                   "store_fraction in (0, 0.9], zero_fraction in [0, 1]");
  }
  const uint64_t pages = bytes / kPage;
  const uint64_t store = static_cast<uint64_t>(static_cast<double>(bytes) * cfg.store_fraction);
  uint64_t nrec = store / (kSlot + 8) * 9 / 10;
  uint64_t nb = 1;
  while (nb < nrec / 2) nb <<= 1;
  Header h{kMagic, nb, kPage, nrec, 0, 0, 0, 0};
  h.runtime_pages = std::min<uint64_t>(kRuntimePages, pages / 16);
  h.runtime_off = kPage;
  h.buckets_off = h.runtime_off + h.runtime_pages * kPage;
  h.heap_off = h.buckets_off + ((nb * 8 + kPage - 1) / kPage) * kPage;
  h.heap_bytes = ((nrec * kSlot * 10 / 9 + kPage - 1) / kPage) * kPage;  // slack: fragmentation
  if (h.heap_off + h.heap_bytes > bytes) return Status::Internal("kv guest: store does not fit");
  std::memset(mem, 0, h.heap_off + h.heap_bytes);
  std::memcpy(mem, &h, sizeof(h));
  FillText(mem + h.runtime_off, h.runtime_pages * kPage, cfg.seed ^ 0xc0de);

  // Shuffled slot order: the heap of a long-lived process.
  const uint64_t nslots = h.heap_bytes / kSlot;
  std::vector<uint32_t> slot(nslots);
  std::iota(slot.begin(), slot.end(), 0u);
  std::mt19937_64 rng(cfg.seed);
  std::shuffle(slot.begin(), slot.end(), rng);
  auto* buckets = reinterpret_cast<uint64_t*>(mem + h.buckets_off);
  for (uint64_t i = 0; i < nrec; ++i) {
    const uint64_t off = h.heap_off + static_cast<uint64_t>(slot[i]) * kSlot;
    auto* r = reinterpret_cast<Record*>(mem + off);
    r->key = KeyOf(i);
    r->vlen = static_cast<uint32_t>(32 + Mix(r->key) % (kSlot - sizeof(Record) - 32));
    FillText(mem + off + sizeof(Record), r->vlen, r->key);
    uint64_t& head = buckets[r->key & (nb - 1)];
    r->next = head;
    head = off;
  }
  // The rest: text-like pages with some zero pages among them.
  for (uint64_t p = (h.heap_off + h.heap_bytes) / kPage; p < pages; ++p) {
    if (static_cast<double>(Mix(p ^ cfg.seed) % 10000) < cfg.zero_fraction * 10000) {
      std::memset(mem + p * kPage, 0, kPage);
    } else {
      FillText(mem + p * kPage, kPage, p ^ cfg.seed);
    }
  }
  if (records) *records = nrec;
  return Status::Ok();
}

Status KvQuery(const uint8_t* mem, uint64_t bytes, uint64_t n, double zipf_s, uint64_t seed,
               uint64_t first_batch, const std::function<void()>& first_work, KvResult* out) {
  if (!(zipf_s > 0) || zipf_s == 1.0) {
    return Status::InvalidArgument("kv guest: zipf exponent must be > 0 and != 1");
  }
  Header h;
  std::memcpy(&h, mem, sizeof(h));
  if (h.magic != kMagic || h.nbuckets == 0 || (h.nbuckets & (h.nbuckets - 1)) != 0 ||
      h.buckets_off + h.nbuckets * 8 > bytes || h.heap_off + h.heap_bytes > bytes ||
      h.nrecords == 0 || h.runtime_pages == 0 ||
      h.runtime_off + h.runtime_pages * kPage > bytes) {
    return Status::Corruption("kv guest: header at offset 0 is not a kv store");
  }
  const auto* buckets = reinterpret_cast<const uint64_t*>(mem + h.buckets_off);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  // Inverse CDF of the continuous Zipf on [1, N+1): O(1) per draw, no table to build.
  const double a = 1 - zipf_s;
  const double top = std::pow(static_cast<double>(h.nrecords) + 1, a) - 1;
  KvResult res;
  for (uint64_t q = 0; q < n; ++q) {
    // The handler of this request's type runs first (reads its code path).
    const uint64_t type = rng() % kTypes;
    uint64_t code = 0;
    for (uint64_t j = 0; j < kPathPages; ++j) {
      const uint64_t pg = Mix(type * kPathPages + j) % h.runtime_pages;
      code += mem[h.runtime_off + pg * kPage + (j * 64) % kPage];
    }
    res.checksum += code;
    const double x = std::pow(top * u(rng) + 1, 1 / a);
    const uint64_t rank = std::min<uint64_t>(static_cast<uint64_t>(x) - 1, h.nrecords - 1);
    const uint64_t key = KeyOf(Mix(rank) % h.nrecords);  // hot keys scattered over the heap
    uint64_t off = buckets[key & (h.nbuckets - 1)];
    for (int hops = 0; off != 0; ++hops) {
      if (off < h.heap_off || off + kSlot > h.heap_off + h.heap_bytes || hops > 1000) {
        return Status::Corruption("kv guest: record offset " + std::to_string(off) +
                                  " out of the heap");
      }
      const auto* r = reinterpret_cast<const Record*>(mem + off);
      if (r->key == key) {
        const uint32_t vlen = std::min<uint32_t>(r->vlen, kSlot - sizeof(Record));
        const uint8_t* v = mem + off + sizeof(Record);
        uint64_t sum = 0;
        for (uint32_t i = 0; i < vlen; ++i) sum = sum * 131 + v[i];
        res.checksum ^= Mix(sum + q);
        ++res.found;
        break;
      }
      off = r->next;
    }
    if (q + 1 == first_batch && first_work) first_work();
  }
  if (first_work && n < first_batch) first_work();
  *out = res;
  return Status::Ok();
}

}  // namespace lull::snapshot
