// lull::snapshot::Store - base and incremental snapshots of a guest's memory.
//
// WriteSnapshot() turns the guest memory into the next generation in a directory (format
// in dom0/snapshot/format.h): the first generation, or one after `max_chain` increments,
// is a base holding every page; otherwise an increment holding only the pages whose
// content hash differs from the chain's. Chunks are deduplicated by content hash (within
// the file, and for increments against every chunk of the chain) and LZ4 compressed.
//
// Tiering: each page carries the number of generations in which it was written. In a
// base, chunks are laid out critical set first (predicted first-touch order), then cold
// pages, then hot pages (writes >= hot_writes) last: the cold tier is contiguous, the hot
// pages - which the next increments supersede anyway - are read last by the background
// fill. Increments hold exactly the pages written since their parent (the hot tier).
//
// SnapshotChain::Open() validates a generation and all its ancestors before anything is
// restored: magic, version, header and manifest checksums, file length (truncation), every
// chunk's extent and every page reference, and the parent ids (a file from another
// guest's chain is refused). Chunk payloads are verified as they are read (DecodeChunk):
// every error names the file, the chunk and its offset.
//
// Crash safety: write-new-then-rename with fsync of the file and the directory; readers
// ignore `*.tmp`. A SnapshotChain is immutable after Open and safe to share between
// threads (reads use pread).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dom0/snapshot/format.h"
#include "forecast/status.h"

namespace lull::snapshot {

struct Hash128 {
  uint64_t lo = 0, hi = 0;
  bool operator==(const Hash128&) const = default;
};
Hash128 PageHash(const uint8_t* page);  // xxh3-128 of kPageBytes bytes
bool IsZeroPage(const uint8_t* page);

struct WriteOptions {
  std::vector<uint64_t> critical;  // pages in predicted first-touch order, laid out first
  bool force_base = false;
  uint32_t max_chain = 8;          // increments after a base before the next base
  uint32_t hot_writes = 3;         // a page written in this many generations is hot
  // The critical set is on the resume's critical path, where the stream is bound either by
  // the disk or by the threads that decode it. Each critical page is stored LZ4 compressed
  // only if the read time that saves, (4096 - compressed bytes) at `critical_read_mib_s`,
  // exceeds the decode time it adds on one of `critical_decoders` threads, measured here
  // on a sample of the critical pages; otherwise raw (checked and installed straight from
  // the read buffer). 0 MiB/s (bandwidth unknown): every critical page raw.
  double critical_read_mib_s = 0;
  unsigned critical_decoders = 2;
};

struct WriteReport {
  std::string path;
  uint64_t generation = 0;
  bool base = false;
  uint64_t pages_listed = 0;    // PageEntries in the file
  uint64_t chunks_written = 0;  // new chunks stored
  uint64_t dedup_pages = 0;     // pages that referenced an existing chunk
  uint64_t zero_pages = 0;
  uint64_t file_bytes = 0;
  uint64_t raw_bytes = 0;       // uncompressed bytes of the chunks written
  uint64_t critical_chunks = 0;     // chunks written in the critical region
  uint64_t critical_lz4 = 0;        // of those, stored compressed
  double critical_decode_us = 0;    // measured LZ4 decode time per critical page (0: not measured)
};

// Mean LZ4 decode time of one of `pages` (a sample of up to 64 that LZ4 shrinks), in
// microseconds; 0 if none compresses. What WriteSnapshot weighs a critical page's saved
// read against, and what a cut's break-even can charge per compressed page.
double MeasureLz4DecodeUs(const uint8_t* mem, const std::vector<uint64_t>& pages);

// Writes the next generation of `dir` (created if missing) from `pages` pages at `mem`.
// The guest size must match the existing chain's (InvalidArgument otherwise).
Status WriteSnapshot(const std::string& dir, const uint8_t* mem, uint64_t pages,
                     const WriteOptions& opt, WriteReport* report);

// One validated file of a chain.
struct SnapshotFile {
  std::string path;
  int fd = -1;  // buffered, O_RDONLY; closed by the chain
  FileHeader header{};
  std::vector<ChunkEntry> chunks;
  std::vector<PageEntry> pages;
  std::vector<uint64_t> critical;
};

class SnapshotChain {
 public:
  struct Loc {
    uint32_t file = 0;             // index into files() (0 = base)
    uint32_t chunk = kZeroChunk;   // kZeroChunk: an all-zero page
  };

  // Opens the generation in `path` and its ancestors (found beside it by generation).
  static Status Open(const std::string& path, std::unique_ptr<SnapshotChain>* out);
  // The newest complete generation in `dir`; NotFound if there is none.
  static Status OpenLatest(const std::string& dir, std::unique_ptr<SnapshotChain>* out);
  ~SnapshotChain();
  SnapshotChain(const SnapshotChain&) = delete;
  SnapshotChain& operator=(const SnapshotChain&) = delete;

  uint64_t guest_pages() const { return files_.back().header.guest_pages; }
  size_t size() const { return files_.size(); }
  const SnapshotFile& file(size_t i) const { return files_[i]; }
  const SnapshotFile& newest() const { return files_.back(); }
  Loc loc(uint64_t page) const { return loc_[page]; }
  uint32_t writes(uint64_t page) const { return writes_[page]; }
  // Content hash the page must have after restore (xxh3-128 of zeros for zero pages).
  Hash128 page_hash(uint64_t page) const;
  // Critical pages (predicted first-touch order) of the newest generation that has some.
  const std::vector<uint64_t>& critical() const;
  // The file index and byte extent of the critical region holding critical()[0..n).
  uint32_t critical_file() const { return critical_file_; }

  // Decodes the stored bytes of a chunk into a page and checks its hash. Corruption names
  // the file, the chunk and its offset.
  Status DecodeChunk(uint32_t file, uint32_t chunk, const uint8_t* stored,
                     uint8_t* page_out) const;
  // Like DecodeChunk, but a raw chunk is checked in place: *page points at `stored` for a
  // raw chunk and at `scratch` (kPageBytes) for a compressed one.
  Status CheckChunk(uint32_t file, uint32_t chunk, const uint8_t* stored, uint8_t* scratch,
                    const uint8_t** page) const;
  // Reads one page with pread (zero pages need no I/O); *read_bytes gets the bytes read.
  Status ReadPage(uint64_t page, uint8_t* out, uint64_t* read_bytes) const;

 private:
  SnapshotChain() = default;
  std::vector<SnapshotFile> files_;
  std::vector<Loc> loc_;
  std::vector<uint32_t> writes_;
  uint32_t critical_file_ = 0;
};

// Path of generation `gen` in `dir`.
std::string GenerationPath(const std::string& dir, uint64_t gen);

}  // namespace lull::snapshot
