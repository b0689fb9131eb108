#include "dom0/clone/block_cache.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace lull::clone {

BlockCache::~BlockCache() {
  if (fd_ >= 0) close(fd_);
}

Status BlockCache::Open(const std::string& path, size_t block_size, size_t capacity) {
  if (block_size == 0) return Status::InvalidArgument("block cache: block size 0");
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Status::IoError("volume " + path + ": " + std::strerror(errno));
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size <= 0 ||
      static_cast<size_t>(st.st_size) % block_size != 0) {
    close(fd);
    return Status::InvalidArgument("volume " + path + ": size " + std::to_string(st.st_size) +
                                   " is not a non-zero multiple of the block size " +
                                   std::to_string(block_size));
  }
  std::lock_guard<std::mutex> l(mu_);
  if (fd_ >= 0) close(fd_);
  fd_ = fd;
  block_size_ = block_size;
  blocks_ = static_cast<size_t>(st.st_size) / block_size;
  capacity_ = capacity;
  lru_.clear();
  map_.clear();
  return Status::Ok();
}

Status BlockCache::Read(uint64_t index, std::vector<uint8_t>* out) {
  if (fd_ < 0) return Status::Unavailable("block cache: no volume open");
  index %= blocks_;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = map_.find(index);
    if (it != map_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
      *out = it->second->second;
      ++hits_;
      return Status::Ok();
    }
    ++volume_reads_;
  }
  // The read happens outside the lock so that misses do not serialise the hits.
  out->resize(block_size_);
  ssize_t n = pread(fd_, out->data(), block_size_, static_cast<off_t>(index * block_size_));
  if (n != static_cast<ssize_t>(block_size_)) {
    return Status::IoError("volume read of block " + std::to_string(index) + " failed: " +
                           (n < 0 ? std::strerror(errno) : "short read"));
  }
  if (capacity_ == 0) return Status::Ok();
  std::lock_guard<std::mutex> l(mu_);
  if (map_.count(index)) return Status::Ok();  // another thread cached it meanwhile
  lru_.emplace_front(index, *out);
  map_[index] = lru_.begin();
  if (lru_.size() > capacity_) {
    map_.erase(lru_.back().first);
    lru_.pop_back();
  }
  return Status::Ok();
}

uint64_t BlockCache::hits() const {
  std::lock_guard<std::mutex> l(mu_);
  return hits_;
}

uint64_t BlockCache::volume_reads() const {
  std::lock_guard<std::mutex> l(mu_);
  return volume_reads_;
}

Status EnsureVolume(const std::string& path, size_t block_size, size_t blocks) {
  struct stat st;
  size_t want = block_size * blocks;
  if (stat(path.c_str(), &st) == 0 && static_cast<size_t>(st.st_size) == want) {
    return Status::Ok();
  }
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IoError("volume " + tmp + ": " + std::strerror(errno));
  std::vector<uint8_t> buf(block_size);
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (size_t b = 0; b < blocks; ++b) {
    for (auto& c : buf) {  // xorshift: cheap bytes that do not compress to nothing
      x ^= x << 13; x ^= x >> 7; x ^= x << 17;
      c = static_cast<uint8_t>(x);
    }
    if (write(fd, buf.data(), buf.size()) != static_cast<ssize_t>(buf.size())) {
      int e = errno;
      close(fd);
      unlink(tmp.c_str());
      return Status::IoError("volume " + tmp + ": " + std::strerror(e));
    }
  }
  close(fd);
  // rename is atomic: concurrent creators never see a half-written volume.
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    unlink(tmp.c_str());
    return Status::IoError("volume " + path + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

}  // namespace lull::clone
