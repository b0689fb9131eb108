// lull::shm::Segment - a shared-memory mapping between two processes on Linux.
//
// Backing for the lull region when both ends are Linux processes (tests, the simulated
// host, tools): an anonymous memfd that a child inherits or that is passed over a Unix
// socket, or a named POSIX shared-memory object (/dev/shm). On Xen the region is Xen's
// own pages instead, mapped by dom0 through foreign mapping; the ring code is the same.
//
// A Segment owns its file descriptor and mapping and releases both when destroyed. It is
// movable, not copyable. Errors are negative errno.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace lull::shm {

class Segment {
 public:
  Segment() = default;
  ~Segment();
  Segment(Segment&& o) noexcept;
  Segment& operator=(Segment&& o) noexcept;
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;

  // A new anonymous segment of `bytes`, zero-filled. The fd is close-on-exec unless
  // `inheritable` (for a child that execs and is told the fd number).
  static int CreateMemfd(uint64_t bytes, bool inheritable, Segment* out);
  // A new named POSIX object (`name` like "/lull-test"), created exclusively, mode 0600.
  static int CreateNamed(const std::string& name, uint64_t bytes, Segment* out);
  // Map an existing fd or named object; the size is the file's size. FromFd takes
  // ownership of the fd on success only.
  static int FromFd(int fd, Segment* out);
  static int OpenNamed(const std::string& name, Segment* out);
  static int Unlink(const std::string& name);

  void* data() const { return data_; }
  uint64_t size() const { return size_; }
  int fd() const { return fd_; }

 private:
  void Reset();
  int fd_ = -1;
  void* data_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace lull::shm
