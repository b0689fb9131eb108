// lull::clone::BlockCache - an LRU block cache in front of the shared volume.
//
// Shadows and the primary read the same shared volume (on Xen: the primary's disk,
// shared read-only with its clones). Every extra instance adds reads to that volume; the
// cache absorbs the repeats, and because the load balancer sends each key to the same
// instance (consistent hashing) each instance's cache holds a disjoint share of the hot
// set. Read() returns a block's bytes, reading the volume only on a miss.
//
// Thread-safe (one mutex: the hit path is a hash lookup and a list splice). capacity 0
// disables caching: every Read() goes to the volume.
#pragma once

#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "forecast/status.h"

namespace lull::clone {

class BlockCache {
 public:
  BlockCache() = default;
  ~BlockCache();
  BlockCache(const BlockCache&) = delete;
  BlockCache& operator=(const BlockCache&) = delete;

  // Opens the volume read-only. Its size must be a non-zero multiple of block_size.
  Status Open(const std::string& volume_path, size_t block_size, size_t capacity_blocks);
  // Copies block `index % blocks()` into *out (resized to block_size).
  Status Read(uint64_t index, std::vector<uint8_t>* out);

  size_t blocks() const { return blocks_; }
  uint64_t hits() const;
  uint64_t volume_reads() const;

 private:
  int fd_ = -1;
  size_t block_size_ = 0, blocks_ = 0, capacity_ = 0;
  mutable std::mutex mu_;
  std::list<std::pair<uint64_t, std::vector<uint8_t>>> lru_;  // front = most recent
  std::unordered_map<uint64_t, decltype(lru_)::iterator> map_;
  uint64_t hits_ = 0, volume_reads_ = 0;
};

// Creates (or keeps, if it has the size) a volume of `blocks` blocks of pseudo-random
// bytes, so that a test or a pool has a shared volume to read.
Status EnsureVolume(const std::string& path, size_t block_size, size_t blocks);

}  // namespace lull::clone
