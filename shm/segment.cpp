#include "shm/segment.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace lull::shm {

Segment::~Segment() { Reset(); }

Segment::Segment(Segment&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)),
      data_(std::exchange(o.data_, nullptr)),
      size_(std::exchange(o.size_, 0)) {}

Segment& Segment::operator=(Segment&& o) noexcept {
  if (this != &o) {
    Reset();
    fd_ = std::exchange(o.fd_, -1);
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

void Segment::Reset() {
  if (data_ != nullptr) munmap(data_, size_);
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  data_ = nullptr;
  size_ = 0;
}

static int MapFd(int fd, Segment* out) {
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  if (st.st_size <= 0) {
    close(fd);
    return -EINVAL;
  }
  return Segment::FromFd(fd, out);
}

int Segment::FromFd(int fd, Segment* out) {
  struct stat st;
  if (fd < 0) return -EBADF;
  if (fstat(fd, &st) != 0) return -errno;
  if (st.st_size <= 0) return -EINVAL;
  void* p = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ | PROT_WRITE,
                 MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return -errno;
  Segment s;
  s.fd_ = fd;
  s.data_ = p;
  s.size_ = static_cast<uint64_t>(st.st_size);
  *out = std::move(s);
  return 0;
}

int Segment::CreateMemfd(uint64_t bytes, bool inheritable, Segment* out) {
  if (bytes == 0) return -EINVAL;
  int fd = memfd_create("lull-shm", inheritable ? 0 : MFD_CLOEXEC);
  if (fd < 0) return -errno;
  if (ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  int rc = FromFd(fd, out);
  if (rc != 0) close(fd);
  return rc;
}

int Segment::CreateNamed(const std::string& name, uint64_t bytes, Segment* out) {
  if (bytes == 0 || name.size() < 2 || name[0] != '/') return -EINVAL;
  int fd = shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return -errno;
  if (ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
    int e = errno;
    close(fd);
    shm_unlink(name.c_str());
    return -e;
  }
  int rc = FromFd(fd, out);
  if (rc != 0) {
    close(fd);
    shm_unlink(name.c_str());
  }
  return rc;
}

int Segment::OpenNamed(const std::string& name, Segment* out) {
  if (name.size() < 2 || name[0] != '/') return -EINVAL;
  int fd = shm_open(name.c_str(), O_RDWR | O_CLOEXEC, 0);
  if (fd < 0) return -errno;
  return MapFd(fd, out);
}

int Segment::Unlink(const std::string& name) {
  return shm_unlink(name.c_str()) == 0 ? 0 : -errno;
}

}  // namespace lull::shm
