// lull::snapshot on-disk format - one file per snapshot generation (`NNNNNNNN.lsnap`).
//
// A guest's snapshots live in one directory: generation 1 is a base (every page), each
// later generation is either an increment (only the pages whose content changed since its
// parent, plus references into ancestors for content it already has) or a new base.
// A file is self-describing and checked end to end before anything is restored:
//
//   offset 0         FileHeader (kHeaderBytes, padded; its own xxh3 checksum)
//   data_offset      data region: chunks back to back. A chunk is one page, LZ4
//                    compressed (or stored raw when LZ4 does not shrink it). The first
//                    `critical_bytes` of the region hold the critical set's chunks in
//                    predicted first-touch order, so a prefetch of the critical set is one
//                    sequential read (REAP's working-set file, inside the snapshot).
//   manifest_offset  manifest (checksum in the header):
//                      ChunkEntry  x n_chunks     where each chunk of this file is
//                      PageEntry   x n_pages      page -> (generation, chunk), sorted by page
//                      uint64      x n_critical   critical pages in predicted touch order
//
// A chunk is deduplicated by its content hash (xxh3-128 of the uncompressed page), which
// also serves as the chunk's checksum: every chunk read is verified before it reaches
// guest memory. A PageEntry may point into an ancestor generation (dedup across the chain)
// or be kZeroChunk (an all-zero page, nothing stored).
//
// Crash safety: a file is written as `NNNNNNNN.lsnap.tmp`, fsynced, renamed, and the
// directory fsynced; readers ignore `.tmp` files, so a crash at any point leaves every
// earlier generation whole. Each increment names its parent by the parent's snapshot_id
// (a hash of the parent's header), so a file from another guest's chain is refused.
//
// All integers little-endian (the format is only read on the host that wrote it; a
// big-endian host refuses it through the magic).
#pragma once

#include <cstdint>

namespace lull::snapshot {

inline constexpr char kMagic[8] = {'L', 'U', 'L', 'L', 'S', 'N', 'P', '1'};
inline constexpr uint32_t kVersion = 1;
inline constexpr uint32_t kPageBytes = 4096;
inline constexpr uint64_t kHeaderBytes = 4096;       // O_DIRECT-aligned data start
inline constexpr uint32_t kZeroChunk = 0xffffffffu;  // page is all zeros, no chunk

enum FileKind : uint32_t { kBase = 1, kIncrement = 2 };
enum ChunkCodec : uint32_t { kRaw = 0, kLz4 = 1 };

struct FileHeader {
  char magic[8];
  uint32_t version;
  uint32_t kind;            // FileKind
  uint32_t page_bytes;      // kPageBytes
  uint32_t reserved0;
  uint64_t guest_pages;     // size of the guest's memory, in pages
  uint64_t generation;      // 1, 2, ... ; the file name carries the same number
  uint64_t snapshot_id;     // xxh3-64 of this header with snapshot_id and header_hash zeroed
  uint64_t parent_id;       // snapshot_id of generation-1 (increments), else 0
  uint64_t base_generation; // generation of the base this chain starts from
  uint64_t data_offset;     // kHeaderBytes
  uint64_t data_bytes;
  uint64_t critical_bytes;  // prefix of the data region holding critical chunks
  uint64_t n_chunks;
  uint64_t n_pages;         // PageEntries in this file (all pages for a base)
  uint64_t n_critical;
  uint64_t manifest_offset;
  uint64_t manifest_bytes;
  uint64_t manifest_hash;   // xxh3-64 of the manifest bytes
  uint64_t file_bytes;      // total size; a shorter file is truncated
  uint64_t created_unix_ns;
  uint64_t header_hash;     // xxh3-64 of the header with header_hash zeroed
};
static_assert(sizeof(FileHeader) == 160);

struct ChunkEntry {
  uint64_t offset;          // absolute file offset
  uint32_t stored_bytes;    // bytes on disk
  uint32_t codec;           // ChunkCodec
  uint64_t hash_lo, hash_hi;  // xxh3-128 of the uncompressed page
};
static_assert(sizeof(ChunkEntry) == 32);

struct PageEntry {
  uint64_t page;
  uint32_t generation;      // file holding the chunk (this one or an ancestor)
  uint32_t chunk;           // index in that file's chunk table, or kZeroChunk
  uint32_t writes;          // generations in which this page's content changed (tiering)
  uint32_t reserved;
};
static_assert(sizeof(PageEntry) == 24);

}  // namespace lull::snapshot
