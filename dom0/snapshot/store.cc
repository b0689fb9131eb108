#include "dom0/snapshot/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <lz4.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <string_view>
#include <unordered_map>

namespace lull::snapshot {
namespace {

std::string Errno(std::string_view what, const std::string& path) {
  return std::string(what) + " " + path + ": " + std::strerror(errno);
}

struct HashKey {
  size_t operator()(const Hash128& h) const { return static_cast<size_t>(h.lo ^ (h.hi * 31)); }
};

// Buffers appends to the tmp file; tracks the file offset.
class Appender {
 public:
  Appender(int fd, uint64_t offset) : fd_(fd), off_(offset) { buf_.reserve(kCap); }
  Status Append(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    buf_.insert(buf_.end(), b, b + n);
    off_ += n;
    return buf_.size() >= kCap ? Flush() : Status::Ok();
  }
  Status Flush() {
    size_t done = 0;
    while (done < buf_.size()) {
      ssize_t w = ::pwrite(fd_, buf_.data() + done, buf_.size() - done,
                           static_cast<off_t>(off_ - buf_.size() + done));
      if (w < 0) {
        if (errno == EINTR) continue;
        return Status::IoError(std::string("write snapshot: ") + std::strerror(errno));
      }
      done += static_cast<size_t>(w);
    }
    buf_.clear();
    return Status::Ok();
  }
  uint64_t offset() const { return off_; }

 private:
  static constexpr size_t kCap = 1 << 20;
  int fd_;
  uint64_t off_;
  std::vector<uint8_t> buf_;
};

uint64_t HeaderChecksum(FileHeader h) {
  h.header_hash = 0;
  return XXH3_64bits(&h, sizeof(h));
}
uint64_t SnapshotId(FileHeader h) {
  h.snapshot_id = 0;
  h.header_hash = 0;
  return XXH3_64bits(&h, sizeof(h));
}

Status ReadExact(int fd, void* dst, size_t n, uint64_t off, const std::string& path,
                 std::string_view what) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd, static_cast<uint8_t*>(dst) + done, n - done,
                        static_cast<off_t>(off + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status::IoError(Errno("read", path));
    if (r == 0) {
      return Status::Corruption("snapshot " + path + ": truncated: " + std::string(what) +
                                " at offset " + std::to_string(off + done) +
                                " lies past the end of the file");
    }
    done += static_cast<size_t>(r);
  }
  return Status::Ok();
}

// Loads and validates one file (not its chain links).
Status LoadFile(const std::string& path, SnapshotFile* f) {
  f->path = path;
  f->fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f->fd < 0) {
    return errno == ENOENT ? Status::NotFound(Errno("open", path))
                           : Status::IoError(Errno("open", path));
  }
  struct stat st;
  if (::fstat(f->fd, &st) != 0) return Status::IoError(Errno("stat", path));
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < sizeof(FileHeader)) {
    return Status::Corruption("snapshot " + path + ": truncated: " + std::to_string(size) +
                              " bytes, shorter than the header (" +
                              std::to_string(sizeof(FileHeader)) + " bytes at offset 0)");
  }
  FileHeader& h = f->header;
  if (Status s = ReadExact(f->fd, &h, sizeof(h), 0, path, "header"); !s.ok()) return s;
  if (std::memcmp(h.magic, kMagic, sizeof(kMagic)) != 0) {
    return Status::Corruption("snapshot " + path +
                              ": not a lull snapshot (bad magic at offset 0, expected "
                              "'LULLSNP1')");
  }
  if (h.version != kVersion) {
    return Status::Corruption("snapshot " + path + ": format version " +
                              std::to_string(h.version) + " at offset 8, this build reads " +
                              std::to_string(kVersion));
  }
  if (HeaderChecksum(h) != h.header_hash) {
    return Status::Corruption("snapshot " + path + ": header checksum mismatch (header at "
                              "offset 0, " + std::to_string(sizeof(h)) + " bytes)");
  }
  if (h.page_bytes != kPageBytes || (h.kind != kBase && h.kind != kIncrement)) {
    return Status::Corruption("snapshot " + path + ": unsupported page size or kind in header");
  }
  if (size < h.file_bytes) {
    return Status::Corruption("snapshot " + path + ": truncated at offset " +
                              std::to_string(size) + ": header says the file is " +
                              std::to_string(h.file_bytes) + " bytes");
  }
  if (size > h.file_bytes) {
    return Status::Corruption("snapshot " + path + ": " + std::to_string(size - h.file_bytes) +
                              " unexpected bytes after offset " + std::to_string(h.file_bytes));
  }
  const uint64_t expect = h.n_chunks * sizeof(ChunkEntry) + h.n_pages * sizeof(PageEntry) +
                          h.n_critical * sizeof(uint64_t);
  if (h.data_offset != kHeaderBytes || h.manifest_bytes != expect ||
      h.data_offset + h.data_bytes != h.manifest_offset ||
      h.manifest_offset + h.manifest_bytes != h.file_bytes || h.critical_bytes > h.data_bytes ||
      h.n_pages > h.guest_pages || h.n_critical > h.guest_pages) {
    return Status::Corruption("snapshot " + path + ": inconsistent geometry in header (manifest "
                              "at offset " + std::to_string(h.manifest_offset) + ")");
  }
  std::vector<uint8_t> man(h.manifest_bytes);
  if (Status s = ReadExact(f->fd, man.data(), man.size(), h.manifest_offset, path, "manifest");
      !s.ok()) {
    return s;
  }
  if (XXH3_64bits(man.data(), man.size()) != h.manifest_hash) {
    return Status::Corruption("snapshot " + path + ": manifest checksum mismatch (manifest at "
                              "offset " + std::to_string(h.manifest_offset) + ", " +
                              std::to_string(h.manifest_bytes) + " bytes)");
  }
  f->chunks.resize(h.n_chunks);
  f->pages.resize(h.n_pages);
  f->critical.resize(h.n_critical);
  const uint8_t* p = man.data();
  auto take = [&p](void* dst, size_t n) {  // memcpy with an empty vector's null is UB
    if (n) std::memcpy(dst, p, n);
    p += n;
  };
  take(f->chunks.data(), h.n_chunks * sizeof(ChunkEntry));
  take(f->pages.data(), h.n_pages * sizeof(PageEntry));
  take(f->critical.data(), h.n_critical * sizeof(uint64_t));

  for (size_t i = 0; i < f->chunks.size(); ++i) {
    const ChunkEntry& c = f->chunks[i];
    const bool sane = c.offset >= h.data_offset && c.stored_bytes > 0 &&
                      c.offset + c.stored_bytes <= h.data_offset + h.data_bytes &&
                      (c.codec == kLz4 || (c.codec == kRaw && c.stored_bytes == kPageBytes)) &&
                      c.stored_bytes <= kPageBytes;
    if (!sane) {
      return Status::Corruption("snapshot " + path + ": chunk " + std::to_string(i) +
                                " at offset " + std::to_string(c.offset) + " (" +
                                std::to_string(c.stored_bytes) +
                                " bytes) lies outside the data region or has a bad codec");
    }
  }
  for (size_t i = 0; i < f->pages.size(); ++i) {
    const PageEntry& e = f->pages[i];
    const bool sane = e.page < h.guest_pages && (i == 0 || f->pages[i - 1].page < e.page) &&
                      e.generation <= h.generation && e.generation >= h.base_generation &&
                      (e.generation != h.generation || e.chunk == kZeroChunk ||
                       e.chunk < h.n_chunks);
    if (!sane) {
      return Status::Corruption("snapshot " + path + ": page entry " + std::to_string(i) +
                                " (page " + std::to_string(e.page) +
                                ") is out of range or out of order");
    }
  }
  if (h.kind == kBase && h.n_pages != h.guest_pages) {
    return Status::Corruption("snapshot " + path + ": base lists " + std::to_string(h.n_pages) +
                              " of " + std::to_string(h.guest_pages) + " pages");
  }
  for (uint64_t c : f->critical) {
    if (c >= h.guest_pages) {
      return Status::Corruption("snapshot " + path + ": critical page " + std::to_string(c) +
                                " beyond the guest");
    }
  }
  return Status::Ok();
}

Status FsyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::IoError(Errno("open directory", dir));
  int rc = ::fsync(fd);
  ::close(fd);
  return rc == 0 ? Status::Ok() : Status::IoError(Errno("fsync directory", dir));
}

// Highest generation with a complete file in dir (0 if none).
uint64_t LatestGeneration(const std::string& dir) {
  uint64_t best = 0;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return 0;
  while (dirent* e = ::readdir(d)) {
    std::string_view n(e->d_name);
    if (n.size() != 14 || n.substr(8) != ".lsnap") continue;  // skips *.tmp
    uint64_t g = 0;
    bool digits = true;
    for (char ch : n.substr(0, 8)) {
      if (ch < '0' || ch > '9') digits = false;
      g = g * 10 + static_cast<uint64_t>(ch - '0');
    }
    if (digits) best = std::max(best, g);
  }
  ::closedir(d);
  return best;
}

}  // namespace

Hash128 PageHash(const uint8_t* page) {
  XXH128_hash_t h = XXH3_128bits(page, kPageBytes);
  return {h.low64, h.high64};
}

bool IsZeroPage(const uint8_t* page) {
  static const uint8_t kZeros[kPageBytes] = {};
  return std::memcmp(page, kZeros, kPageBytes) == 0;
}

std::string GenerationPath(const std::string& dir, uint64_t gen) {
  char name[32];
  std::snprintf(name, sizeof(name), "/%08llu.lsnap", static_cast<unsigned long long>(gen));
  return dir + name;
}

SnapshotChain::~SnapshotChain() {
  for (auto& f : files_) {
    if (f.fd >= 0) ::close(f.fd);
  }
}

Status SnapshotChain::OpenLatest(const std::string& dir, std::unique_ptr<SnapshotChain>* out) {
  uint64_t g = LatestGeneration(dir);
  if (g == 0) return Status::NotFound("no snapshot in " + dir);
  return Open(GenerationPath(dir, g), out);
}

Status SnapshotChain::Open(const std::string& path, std::unique_ptr<SnapshotChain>* out) {
  std::unique_ptr<SnapshotChain> c(new SnapshotChain());
  SnapshotFile top;
  Status s = LoadFile(path, &top);
  c->files_.push_back(std::move(top));
  if (!s.ok()) return s;
  const std::string dir = path.substr(0, path.find_last_of('/') == std::string::npos
                                             ? 0 : path.find_last_of('/'));
  const std::string d = dir.empty() ? "." : dir;
  // Walk back to the base; files_ is newest first until reversed below.
  while (c->files_.back().header.kind == kIncrement) {
    const FileHeader child = c->files_.back().header;  // a copy: push_back reallocates
    if (child.generation <= child.base_generation) {
      return Status::Corruption("snapshot " + c->files_.back().path +
                                ": increment without a parent generation");
    }
    SnapshotFile parent;
    s = LoadFile(GenerationPath(d, child.generation - 1), &parent);
    c->files_.push_back(std::move(parent));
    if (!s.ok()) return s;
    const FileHeader& ph = c->files_.back().header;
    if (ph.snapshot_id != child.parent_id || ph.guest_pages != child.guest_pages ||
        ph.base_generation != child.base_generation) {
      return Status::Corruption("snapshot " + c->files_[c->files_.size() - 2].path +
                                ": foreign parent: " + c->files_.back().path +
                                " is not the generation it was written against");
    }
  }
  std::reverse(c->files_.begin(), c->files_.end());
  // Resolve page -> newest (file, chunk), checking cross-file references.
  const uint64_t n = c->guest_pages();
  c->loc_.assign(n, Loc{});
  c->writes_.assign(n, 0);
  const uint64_t base_gen = c->files_[0].header.generation;
  for (uint32_t fi = 0; fi < c->files_.size(); ++fi) {
    const SnapshotFile& f = c->files_[fi];
    for (size_t i = 0; i < f.pages.size(); ++i) {
      const PageEntry& e = f.pages[i];
      const uint32_t target = static_cast<uint32_t>(e.generation - base_gen);
      if (e.chunk != kZeroChunk && e.chunk >= c->files_[target].chunks.size()) {
        return Status::Corruption("snapshot " + f.path + ": page entry " + std::to_string(i) +
                                  " refers to chunk " + std::to_string(e.chunk) +
                                  " of generation " + std::to_string(e.generation) +
                                  ", which has " +
                                  std::to_string(c->files_[target].chunks.size()));
      }
      c->loc_[e.page] = Loc{target, e.chunk};
      c->writes_[e.page] = e.writes;
    }
    if (!f.critical.empty()) c->critical_file_ = fi;
  }
  *out = std::move(c);
  return Status::Ok();
}

const std::vector<uint64_t>& SnapshotChain::critical() const {
  return files_[critical_file_].critical;
}

Hash128 SnapshotChain::page_hash(uint64_t page) const {
  const Loc l = loc_[page];
  if (l.chunk == kZeroChunk) {
    static const Hash128 kZeroHash = [] {
      static const uint8_t z[kPageBytes] = {};
      return PageHash(z);
    }();
    return kZeroHash;
  }
  const ChunkEntry& c = files_[l.file].chunks[l.chunk];
  return {c.hash_lo, c.hash_hi};
}

Status SnapshotChain::CheckChunk(uint32_t file, uint32_t chunk, const uint8_t* stored,
                                 uint8_t* scratch, const uint8_t** page) const {
  const SnapshotFile& f = files_[file];
  const ChunkEntry& c = f.chunks[chunk];
  auto where = [&] {
    return "snapshot " + f.path + ": chunk " + std::to_string(chunk) + " at offset " +
           std::to_string(c.offset) + " (" + std::to_string(c.stored_bytes) + " bytes): ";
  };
  if (c.codec == kRaw) {
    *page = stored;
  } else {
    int n = LZ4_decompress_safe(reinterpret_cast<const char*>(stored),
                                reinterpret_cast<char*>(scratch),
                                static_cast<int>(c.stored_bytes), kPageBytes);
    if (n != static_cast<int>(kPageBytes)) return Status::Corruption(where() + "LZ4 data is corrupt");
    *page = scratch;
  }
  if (PageHash(*page) != Hash128{c.hash_lo, c.hash_hi}) {
    return Status::Corruption(where() + "checksum mismatch");
  }
  return Status::Ok();
}

Status SnapshotChain::DecodeChunk(uint32_t file, uint32_t chunk, const uint8_t* stored,
                                  uint8_t* page_out) const {
  const uint8_t* page = nullptr;
  Status s = CheckChunk(file, chunk, stored, page_out, &page);
  if (s.ok() && page != page_out) std::memcpy(page_out, page, kPageBytes);
  return s;
}

Status SnapshotChain::ReadPage(uint64_t page, uint8_t* out, uint64_t* read_bytes) const {
  const Loc l = loc_[page];
  *read_bytes = 0;
  if (l.chunk == kZeroChunk) {
    std::memset(out, 0, kPageBytes);
    return Status::Ok();
  }
  const SnapshotFile& f = files_[l.file];
  const ChunkEntry& c = f.chunks[l.chunk];
  uint8_t buf[kPageBytes];
  if (Status s = ReadExact(f.fd, buf, c.stored_bytes, c.offset, f.path,
                           "chunk " + std::to_string(l.chunk));
      !s.ok()) {
    return s;
  }
  *read_bytes = c.stored_bytes;
  return DecodeChunk(l.file, l.chunk, buf, out);
}

// Up to 64 pages spread over the set, each compressed once and decoded 4 times (the
// repeats run from warm caches, which the restore's stream, reading fresh data, does not
// have: the mean errs low).
double MeasureLz4DecodeUs(const uint8_t* mem, const std::vector<uint64_t>& pages) {
  constexpr size_t kSample = 64;
  constexpr int kRounds = 4;
  std::vector<std::vector<char>> packed;
  const size_t step = std::max<size_t>(1, pages.size() / kSample);
  for (size_t i = 0; i < pages.size() && packed.size() < kSample; i += step) {
    const uint8_t* src = mem + pages[i] * kPageBytes;
    if (IsZeroPage(src)) continue;
    std::vector<char> c(LZ4_COMPRESSBOUND(kPageBytes));
    const int n = LZ4_compress_default(reinterpret_cast<const char*>(src), c.data(),
                                       kPageBytes, static_cast<int>(c.size()));
    if (n <= 0 || n >= static_cast<int>(kPageBytes)) continue;  // stored raw anyway
    c.resize(static_cast<size_t>(n));
    packed.push_back(std::move(c));
  }
  if (packed.empty()) return 0;
  char out[kPageBytes];
  const auto t0 = std::chrono::steady_clock::now();
  for (int r = 0; r < kRounds; ++r) {
    for (const auto& c : packed) {
      (void)LZ4_decompress_safe(c.data(), out, static_cast<int>(c.size()), kPageBytes);
    }
  }
  const double us = std::chrono::duration<double, std::micro>(
                        std::chrono::steady_clock::now() - t0).count();
  return us / static_cast<double>(kRounds * packed.size());
}

Status WriteSnapshot(const std::string& dir, const uint8_t* mem, uint64_t pages,
                     const WriteOptions& opt, WriteReport* report) {
  if (pages == 0 || pages >= kZeroChunk) {
    return Status::InvalidArgument("snapshot: guest size of " + std::to_string(pages) +
                                   " pages is not supported");
  }
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return Status::IoError(Errno("mkdir", dir));
  }
  if (!(opt.critical_read_mib_s >= 0) || std::isinf(opt.critical_read_mib_s)) {
    return Status::InvalidArgument("snapshot: critical_read_mib_s must be a finite bandwidth "
                                   ">= 0 MiB/s, not " + std::to_string(opt.critical_read_mib_s));
  }
  for (uint64_t c : opt.critical) {
    if (c >= pages) {
      return Status::InvalidArgument("snapshot: critical page " + std::to_string(c) +
                                     " is beyond the guest's " + std::to_string(pages) + " pages");
    }
  }
  std::unique_ptr<SnapshotChain> chain;
  Status s = SnapshotChain::OpenLatest(dir, &chain);
  if (!s.ok() && s.code() != Status::Code::kNotFound) return s;
  if (chain && chain->guest_pages() != pages) {
    return Status::InvalidArgument("snapshot: guest has " + std::to_string(pages) +
                                   " pages but the chain in " + dir + " has " +
                                   std::to_string(chain->guest_pages()));
  }
  const bool base = !chain || opt.force_base || chain->size() > opt.max_chain;

  FileHeader h{};
  std::memcpy(h.magic, kMagic, sizeof(kMagic));
  h.version = kVersion;
  h.kind = base ? kBase : kIncrement;
  h.page_bytes = kPageBytes;
  h.guest_pages = pages;
  h.generation = chain ? chain->newest().header.generation + 1 : 1;
  h.parent_id = base ? 0 : chain->newest().header.snapshot_id;
  h.base_generation = base ? h.generation : chain->file(0).header.generation;
  h.data_offset = kHeaderBytes;
  h.created_unix_ns = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(
          std::chrono::system_clock::now().time_since_epoch()).count());

  // Which pages go in this file, and each page's write count.
  std::vector<uint8_t> listed(pages, 0);
  std::vector<uint32_t> writes(pages, 0);
  std::vector<Hash128> hashes(pages);
  for (uint64_t p = 0; p < pages; ++p) {
    hashes[p] = PageHash(mem + p * kPageBytes);
    const bool changed = !chain || hashes[p] != chain->page_hash(p);
    writes[p] = (chain ? chain->writes(p) : 0) + (changed ? 1 : 0);
    listed[p] = base || changed;
  }
  // Existing content this file may reference instead of storing (increments only).
  std::unordered_map<Hash128, std::pair<uint32_t, uint32_t>, HashKey> known;
  if (!base) {
    for (size_t fi = 0; fi < chain->size(); ++fi) {
      const SnapshotFile& f = chain->file(fi);
      for (uint32_t ci = 0; ci < f.chunks.size(); ++ci) {
        known[{f.chunks[ci].hash_lo, f.chunks[ci].hash_hi}] = {
            static_cast<uint32_t>(f.header.generation), ci};
      }
    }
  }

  const std::string path = GenerationPath(dir, h.generation);
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IoError(Errno("create", tmp));
  struct Closer { int fd; ~Closer() { if (fd >= 0) ::close(fd); } } closer{fd};

  Appender out(fd, kHeaderBytes);
  std::vector<ChunkEntry> chunks;
  std::vector<PageEntry> entries(pages);  // indexed by page; only listed ones are written
  std::vector<uint8_t> placed(pages, 0);
  std::vector<uint64_t> critical;
  WriteReport rep;
  char cbuf[LZ4_COMPRESSBOUND(kPageBytes)];

  bool critical_phase = true;
  auto place = [&](uint64_t p) -> Status {
    if (placed[p] || !listed[p]) return Status::Ok();
    placed[p] = 1;
    PageEntry& e = entries[p];
    e.page = p;
    e.writes = writes[p];
    e.generation = static_cast<uint32_t>(h.generation);
    const uint8_t* src = mem + p * kPageBytes;
    if (IsZeroPage(src)) {
      e.chunk = kZeroChunk;
      ++rep.zero_pages;
      return Status::Ok();
    }
    auto it = known.find(hashes[p]);
    if (it != known.end()) {
      e.generation = it->second.first;
      e.chunk = it->second.second;
      ++rep.dedup_pages;
      return Status::Ok();
    }
    ChunkEntry c{};
    c.offset = out.offset();
    c.hash_lo = hashes[p].lo;
    c.hash_hi = hashes[p].hi;
    int n = (critical_phase && !(opt.critical_read_mib_s > 0))
                ? 0
                : LZ4_compress_default(reinterpret_cast<const char*>(src), cbuf, kPageBytes,
                                       sizeof(cbuf));
    bool lz4 = n > 0 && n < static_cast<int>(kPageBytes);
    if (critical_phase && lz4) {
      // Keep the compression only where the read time it saves beats the decode it adds.
      const double saved_us = static_cast<double>(kPageBytes - static_cast<uint64_t>(n)) /
                              (opt.critical_read_mib_s * 1.048576);
      lz4 = saved_us > rep.critical_decode_us / std::max(1u, opt.critical_decoders);
    }
    if (critical_phase) {
      ++rep.critical_chunks;
      if (lz4) ++rep.critical_lz4;
    }
    Status st;
    if (lz4) {
      c.codec = kLz4;
      c.stored_bytes = static_cast<uint32_t>(n);
      st = out.Append(cbuf, static_cast<size_t>(n));
    } else {
      c.codec = kRaw;
      c.stored_bytes = kPageBytes;
      st = out.Append(src, kPageBytes);
    }
    if (!st.ok()) return st;
    e.chunk = static_cast<uint32_t>(chunks.size());
    known[hashes[p]] = {static_cast<uint32_t>(h.generation), e.chunk};
    chunks.push_back(c);
    ++rep.chunks_written;
    rep.raw_bytes += kPageBytes;
    return Status::Ok();
  };

  // 1. Critical set, in predicted first-touch order.
  if (opt.critical_read_mib_s > 0) rep.critical_decode_us = MeasureLz4DecodeUs(mem, opt.critical);
  for (uint64_t p : opt.critical) {
    if (!placed[p]) critical.push_back(p);
    if (Status st = place(p); !st.ok()) return st;
  }
  h.critical_bytes = out.offset() - kHeaderBytes;
  critical_phase = false;
  // 2. Cold tier, then 3. hot tier (read last by the background fill).
  for (int hot = 0; hot < 2; ++hot) {
    for (uint64_t p = 0; p < pages; ++p) {
      if ((writes[p] >= opt.hot_writes) == (hot == 1)) {
        if (Status st = place(p); !st.ok()) return st;
      }
    }
  }
  h.data_bytes = out.offset() - kHeaderBytes;

  // Manifest.
  h.manifest_offset = out.offset();
  std::vector<uint8_t> man;
  auto put = [&](const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    man.insert(man.end(), b, b + n);
  };
  put(chunks.data(), chunks.size() * sizeof(ChunkEntry));
  uint64_t n_pages = 0;
  for (uint64_t p = 0; p < pages; ++p) {
    if (listed[p]) {
      put(&entries[p], sizeof(PageEntry));
      ++n_pages;
    }
  }
  put(critical.data(), critical.size() * sizeof(uint64_t));
  if (Status st = out.Append(man.data(), man.size()); !st.ok()) return st;
  if (Status st = out.Flush(); !st.ok()) return st;

  h.n_chunks = chunks.size();
  h.n_pages = n_pages;
  h.n_critical = critical.size();
  h.manifest_bytes = man.size();
  h.manifest_hash = XXH3_64bits(man.data(), man.size());
  h.file_bytes = out.offset();
  h.snapshot_id = SnapshotId(h);
  h.header_hash = HeaderChecksum(h);
  uint8_t hdr[kHeaderBytes] = {};
  std::memcpy(hdr, &h, sizeof(h));
  if (::pwrite(fd, hdr, kHeaderBytes, 0) != static_cast<ssize_t>(kHeaderBytes)) {
    return Status::IoError(Errno("write header", tmp));
  }
  // The data must be durable before the name points at it.
  if (::fsync(fd) != 0) return Status::IoError(Errno("fsync", tmp));
  ::close(fd);
  closer.fd = -1;
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Status::IoError(Errno("rename", tmp));
  if (Status st = FsyncDir(dir); !st.ok()) return st;

  rep.path = path;
  rep.generation = h.generation;
  rep.base = base;
  rep.pages_listed = n_pages;
  rep.file_bytes = h.file_bytes;
  if (report) *report = rep;
  return Status::Ok();
}

}  // namespace lull::snapshot
