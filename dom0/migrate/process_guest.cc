#include "dom0/migrate/process_guest.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "dom0/migrate/clock.h"
#include "dom0/migrate/resource_control.h"

namespace lull::migrate {

namespace {

// From Linux 6.7 uapi (Debian 12's headers are older): asynchronous userfaultfd
// write-protect and the PAGEMAP_SCAN ioctl.
constexpr uint64_t kUffdFeatureWpUnpopulated = 1ull << 13;
constexpr uint64_t kUffdFeatureWpAsync = 1ull << 15;
constexpr uint64_t kPageIsWritten = 1ull << 1;
constexpr uint64_t kPmScanWpMatching = 1ull << 0;
constexpr uint64_t kPmScanCheckWpAsync = 1ull << 1;
struct PageRegion { uint64_t start, end, categories; };
struct PmScanArg {
  uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages, category_inverted,
      category_mask, category_anyof_mask, return_mask;
};
constexpr unsigned long kPagemapScan = _IOWR('f', 16, PmScanArg);

std::string Errno(const char* what) {
  return std::string(what) + ": " + std::strerror(errno);
}

inline uint64_t Next(uint64_t* x) {  // xorshift64*
  *x ^= *x >> 12;
  *x ^= *x << 25;
  *x ^= *x >> 27;
  return *x * 0x2545F4914F6CDD1Dull;
}

// What the parent hands the prepared child to start its workload: plain data, since the
// child may not allocate.
constexpr int kMaxPhases = 16;
struct ChildGo {
  uint64_t rate, seed;
  uint32_t write_bytes, nphases;
  double hot;
  Phase phases[kMaxPhases];
  char name[200];  // of the description memfd
};

// Runs in the forked child: only system calls and plain arithmetic, no allocation (the
// parent may be multi-threaded). Sets up dirty tracking, reports 'u' (or an error
// letter), waits for a ChildGo, reports 'g' after its first tick and runs on.
[[noreturn]] void ChildMain(uint8_t* mem, size_t bytes, size_t ps, int ready_fd, int go_fd) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  int uffd = static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY));
  char ok = 'u';
  if (uffd < 0) ok = 'e';
  uffdio_api api{};
  api.api = UFFD_API;
  api.features = kUffdFeatureWpAsync | kUffdFeatureWpUnpopulated;
  if (ok == 'u' && ioctl(uffd, UFFDIO_API, &api) != 0) ok = 'a';
  uffdio_register reg{};
  reg.range.start = reinterpret_cast<uintptr_t>(mem);
  reg.range.len = bytes;
  reg.mode = UFFDIO_REGISTER_MODE_WP;
  if (ok == 'u' && ioctl(uffd, UFFDIO_REGISTER, &reg) != 0) ok = 'r';
  if (write(ready_fd, &ok, 1) != 1 || ok != 'u') _exit(1);
  ChildGo w;
  size_t got = 0;
  while (got < sizeof w) {
    ssize_t n = read(go_fd, reinterpret_cast<char*>(&w) + got, sizeof w - got);
    if (n <= 0) _exit(0);  // never started: the parent went away or gave up
    got += static_cast<size_t>(n);
  }
  close(go_fd);
  w.name[sizeof w.name - 1] = 0;
  memfd_create(w.name, MFD_CLOEXEC);  // kept open: its name describes this guest

  const size_t pages = bytes / ps;
  size_t hot = static_cast<size_t>(static_cast<double>(pages) * w.hot);
  if (hot < 1) hot = 1;
  if (hot > pages) hot = pages;
  const size_t wb = w.write_bytes < ps ? w.write_bytes : ps;
  uint64_t x = w.seed * 0x9E3779B97F4A7C15ull + 1;
  uint64_t cycle_ms = 0;
  for (uint32_t i = 0; i < w.nphases; ++i) cycle_ms += w.phases[i].ms;
  const int64_t start = MonoNs();
  int64_t next = start;
  double due = 0;
  bool reported = false;
  for (;;) {
    int64_t now = MonoNs();
    if (now - next > 20'000'000) next = now;  // resumed after SIGSTOP: do not catch up
    uint64_t rate = w.rate;
    if (cycle_ms) {
      uint64_t t = static_cast<uint64_t>((now - start) / 1'000'000) % cycle_ms;
      for (uint32_t i = 0; i < w.nphases; ++i) {
        if (t < w.phases[i].ms) { rate = w.phases[i].rate; break; }
        t -= w.phases[i].ms;
      }
    }
    due += static_cast<double>(rate) / 1000.0;
    while (due >= 1.0) {
      due -= 1.0;
      uint8_t* page = mem + (Next(&x) % hot) * ps;
      size_t off = wb < ps ? (Next(&x) % (ps - wb + 1)) & ~size_t{7} : 0;
      for (size_t i = 0; i < wb; i += 8) {
        uint64_t v = Next(&x);
        std::memcpy(page + off + i, &v, wb - i < 8 ? wb - i : 8);
      }
    }
    if (!reported) {  // the verification run: one tick of the workload went through
      reported = true;
      if (write(ready_fd, "g", 1) != 1) _exit(1);
      close(ready_fd);
    }
    next += 1'000'000;
    timespec ts{static_cast<time_t>(next / 1000000000), static_cast<long>(next % 1000000000)};
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr);
  }
}

// Reads one status byte from the child, waiting up to timeout_ms.
char ReadByte(int fd, int timeout_ms) {
  pollfd pfd{fd, POLLIN, 0};
  char c = 0;
  if (poll(&pfd, 1, timeout_ms) != 1 || read(fd, &c, 1) != 1) return 0;
  return c;
}

void FillMemory(uint8_t* mem, size_t bytes, size_t ps, const FillConfig& f) {
  static const char* kWords[] = {"the ", "guest ", "page ", "lull ", "memory ", "dirty ",
                                 "xen ", "migrate ", "of ", "and ", "a ", "cpu ", "idle ",
                                 "load\n", "0x7f3a ", "ok "};
  uint64_t x = f.seed * 0x9E3779B97F4A7C15ull + 3;
  for (size_t p = 0; p < bytes / ps; ++p) {
    uint8_t* pg = mem + p * ps;
    double u = static_cast<double>(Next(&x) >> 11) / 9007199254740992.0;
    if (u < f.zero_fraction) continue;  // memfd pages start zero
    if (u < f.zero_fraction + f.text_fraction) {
      size_t i = 0;
      while (i < ps) {
        const char* wd = kWords[Next(&x) & 15];
        for (; *wd && i < ps; ++wd) pg[i++] = static_cast<uint8_t>(*wd);
      }
    } else {
      for (size_t i = 0; i < ps; i += 8) {
        uint64_t v = Next(&x);
        std::memcpy(pg + i, &v, 8);
      }
    }
  }
}

}  // namespace

std::string WorkloadConfig::ToString() const {
  std::ostringstream o;
  o << "rate=" << rate << " write=" << write_bytes << " hot=" << hot_fraction
    << " seed=" << seed;
  if (!phases.empty()) {
    o << " phases=";
    for (size_t i = 0; i < phases.size(); ++i)
      o << (i ? "/" : "") << phases[i].ms << ":" << phases[i].rate;
  }
  return o.str();
}

lull::Status WorkloadConfig::Parse(const std::string& s, WorkloadConfig* out) {
  WorkloadConfig w;
  std::istringstream in(s);
  std::string tok;
  while (in >> tok) {
    auto eq = tok.find('=');
    if (eq == std::string::npos)
      return lull::Status::InvalidArgument("workload '" + s + "': '" + tok + "' is not key=value");
    std::string k = tok.substr(0, eq), v = tok.substr(eq + 1);
    char* end = nullptr;
    errno = 0;
    if (k == "rate" || k == "write" || k == "seed") {
      unsigned long long n = std::strtoull(v.c_str(), &end, 10);
      if (v.empty() || *end || errno || v[0] == '-')
        return lull::Status::InvalidArgument("workload: " + k + " '" + v + "' is not a count");
      if (k == "rate") w.rate = n;
      else if (k == "seed") w.seed = n;
      else if (n == 0 || n > 65536)
        return lull::Status::InvalidArgument("workload: write '" + v + "' not in 1..65536");
      else w.write_bytes = static_cast<uint32_t>(n);
    } else if (k == "hot") {
      double d = std::strtod(v.c_str(), &end);
      if (v.empty() || *end || !(d > 0 && d <= 1))
        return lull::Status::InvalidArgument("workload: hot '" + v + "' not in (0, 1]");
      w.hot_fraction = d;
    } else if (k == "phases") {
      std::istringstream ps(v);
      std::string ph;
      while (std::getline(ps, ph, '/')) {
        unsigned ms = 0;
        unsigned long long r = 0;
        int used = 0;
        if (std::sscanf(ph.c_str(), "%u:%llu%n", &ms, &r, &used) != 2 ||
            used != static_cast<int>(ph.size()) || ms == 0)
          return lull::Status::InvalidArgument("workload: phase '" + ph + "' is not MS:RATE");
        if (w.phases.size() == 16)
          return lull::Status::InvalidArgument("workload: more than 16 phases");
        w.phases.push_back({ms, r});
      }
    } else {
      return lull::Status::InvalidArgument("workload: unknown key '" + k + "'");
    }
  }
  *out = std::move(w);
  return lull::Status::Ok();
}

lull::Status ProcessGuest::Probe() {
  static const lull::Status result = [] {
    std::unique_ptr<ProcessGuest> g;
    WorkloadConfig w;
    w.rate = 0;
    int fd = memfd_create("lull-probe", MFD_CLOEXEC);
    if (fd < 0) return lull::Status::Unavailable(Errno("memfd_create"));
    if (ftruncate(fd, 4096) != 0) {
      close(fd);
      return lull::Status::Unavailable(Errno("ftruncate"));
    }
    void* m = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
      close(fd);
      return lull::Status::Unavailable(Errno("mmap"));
    }
    return Adopt(fd, static_cast<uint8_t*>(m), 4096, w, &g);
  }();
  return result;
}

lull::Status ProcessGuest::Spawn(size_t bytes, const WorkloadConfig& w, const FillConfig& f,
                                 std::unique_ptr<ProcessGuest>* out) {
  const size_t ps = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  if (bytes == 0 || bytes % ps)
    return lull::Status::InvalidArgument("guest size " + std::to_string(bytes) +
                                         " is not a positive multiple of the page size");
  if (f.zero_fraction < 0 || f.text_fraction < 0 || f.zero_fraction + f.text_fraction > 1)
    return lull::Status::InvalidArgument("fill: zero and text fractions must be >= 0, sum <= 1");
  int fd = memfd_create(("lull-guest " + w.ToString()).c_str(), MFD_CLOEXEC);
  if (fd < 0) return lull::Status::Unavailable(Errno("memfd_create"));
  if (ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
    close(fd);
    return lull::Status::Unavailable(Errno("guest memory: ftruncate"));
  }
  void* m = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) {
    close(fd);
    return lull::Status::Unavailable(Errno("guest memory: mmap"));
  }
  FillMemory(static_cast<uint8_t*>(m), bytes, ps, f);
  return Adopt(fd, static_cast<uint8_t*>(m), bytes, w, out);
}

lull::Status ProcessGuest::Adopt(int memfd, uint8_t* mem, size_t bytes, const WorkloadConfig& w,
                                 std::unique_ptr<ProcessGuest>* out) {
  std::unique_ptr<ProcessGuest> g;
  if (auto s = Prepare(memfd, mem, bytes, &g); !s.ok()) return s;
  if (auto s = g->Go(w); !s.ok()) return s;
  *out = std::move(g);
  return lull::Status::Ok();
}

lull::Status ProcessGuest::Prepare(int memfd, uint8_t* mem, size_t bytes,
                                   std::unique_ptr<ProcessGuest>* out) {
  std::unique_ptr<ProcessGuest> g(new ProcessGuest);
  g->memfd_ = memfd;
  g->mem_ = mem;
  g->bytes_ = bytes;
  g->page_size_ = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  g->child_addr_ = reinterpret_cast<uintptr_t>(mem);
  int ready[2], go[2];
  if (pipe2(ready, O_CLOEXEC) != 0) return lull::Status::Unavailable(Errno("pipe"));
  if (pipe2(go, O_CLOEXEC) != 0) {
    close(ready[0]);
    close(ready[1]);
    return lull::Status::Unavailable(Errno("pipe"));
  }
  pid_t pid = fork();
  if (pid < 0) {
    for (int fd : {ready[0], ready[1], go[0], go[1]}) close(fd);
    return lull::Status::Unavailable(Errno("fork"));
  }
  if (pid == 0) {
    close(ready[0]);
    close(go[1]);
    ChildMain(mem, bytes, g->page_size_, ready[1], go[0]);
  }
  close(ready[1]);
  close(go[0]);
  g->pid_ = pid;
  g->ready_fd_ = ready[0];
  g->go_fd_ = go[1];
  char c = ReadByte(g->ready_fd_, 10000);
  if (c != 'u') {
    const char* why = c == 0 ? "the guest process did not start"
                      : c == 'e' ? "userfaultfd() failed (needs CONFIG_USERFAULTFD and "
                                   "vm.unprivileged_userfaultfd or CAP_SYS_PTRACE)"
                      : c == 'a' ? "this kernel lacks asynchronous userfaultfd write-protect "
                                   "(UFFD_FEATURE_WP_ASYNC, Linux >= 6.7)"
                                 : "UFFDIO_REGISTER in write-protect mode failed";
    return lull::Status::Unavailable(std::string("process guest dirty tracking: ") + why);
  }
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/pagemap", static_cast<int>(pid));
  g->pagemap_fd_ = open(path, O_RDONLY | O_CLOEXEC);
  if (g->pagemap_fd_ < 0) return lull::Status::Unavailable(Errno(path));
  *out = std::move(g);
  return lull::Status::Ok();
}

lull::Status ProcessGuest::Go(const WorkloadConfig& w) {
  if (go_fd_ < 0) return lull::Status::Internal("guest already started");
  if (w.phases.size() > kMaxPhases)
    return lull::Status::InvalidArgument("workload has more than 16 phases");
  ChildGo c{};
  c.rate = w.rate;
  c.seed = w.seed;
  c.write_bytes = w.write_bytes;
  c.hot = w.hot_fraction;
  c.nphases = static_cast<uint32_t>(w.phases.size());
  for (size_t i = 0; i < w.phases.size(); ++i) c.phases[i] = w.phases[i];
  std::snprintf(c.name, sizeof c.name, "lull-guest-desc %s", w.ToString().c_str());
  workload_ = w;
  ssize_t n = write(go_fd_, &c, sizeof c);
  close(go_fd_);
  go_fd_ = -1;
  if (n != static_cast<ssize_t>(sizeof c)) return lull::Status::Unavailable(Errno("starting the guest"));
  char r = ReadByte(ready_fd_, 10000);
  close(ready_fd_);
  ready_fd_ = -1;
  if (r != 'g') return lull::Status::Internal("verification run: the guest did not run its first tick");
  return lull::Status::Ok();
}

lull::Status ProcessGuest::Attach(pid_t pid, std::unique_ptr<ProcessGuest>* out) {
  char dirpath[64];
  std::snprintf(dirpath, sizeof dirpath, "/proc/%d/fd", static_cast<int>(pid));
  DIR* d = opendir(dirpath);
  if (!d) return lull::Status::NotFound(Errno(dirpath));
  std::string mem_fd, desc;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::string p = std::string(dirpath) + "/" + e->d_name;
    char link[512];
    ssize_t n = readlink(p.c_str(), link, sizeof link - 1);
    if (n <= 0) continue;
    link[n] = 0;
    std::string l(link);
    if (l.rfind("/memfd:lull-guest-desc ", 0) == 0) {
      desc = l.substr(23);
    } else if (l.rfind("/memfd:lull-guest ", 0) == 0) {
      mem_fd = p;
    }
  }
  closedir(d);
  if (desc.size() > 10 && desc.compare(desc.size() - 10, 10, " (deleted)") == 0)
    desc.resize(desc.size() - 10);
  if (mem_fd.empty() || desc.empty())
    return lull::Status::NotFound("process " + std::to_string(pid) +
                                  " is not a lull process guest (no lull-guest memfd)");
  WorkloadConfig w;
  if (auto s = WorkloadConfig::Parse(desc, &w); !s.ok()) return s;
  // The mapping's address in the guest, from its maps.
  char maps[64];
  std::snprintf(maps, sizeof maps, "/proc/%d/maps", static_cast<int>(pid));
  FILE* f = std::fopen(maps, "re");
  if (!f) return lull::Status::NotFound(Errno(maps));
  char line[1024];
  uintptr_t lo = 0, hi = 0;
  while (std::fgets(line, sizeof line, f)) {
    if (!std::strstr(line, "/memfd:lull-guest ")) continue;
    unsigned long a, b;
    if (std::sscanf(line, "%lx-%lx", &a, &b) == 2) { lo = a; hi = b; break; }
  }
  std::fclose(f);
  if (!hi) return lull::Status::NotFound("process " + std::to_string(pid) + " has no guest mapping");
  int fd = open(mem_fd.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return lull::Status::PermissionDenied(Errno(mem_fd.c_str()));
  size_t bytes = hi - lo;
  void* m = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) {
    close(fd);
    return lull::Status::Unavailable(Errno("mmap of the guest's memory"));
  }
  std::unique_ptr<ProcessGuest> g(new ProcessGuest);
  g->pid_ = pid;
  g->owned_ = false;
  g->memfd_ = fd;
  g->mem_ = static_cast<uint8_t*>(m);
  g->bytes_ = bytes;
  g->page_size_ = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  g->child_addr_ = lo;
  g->workload_ = w;
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/pagemap", static_cast<int>(pid));
  g->pagemap_fd_ = open(path, O_RDONLY | O_CLOEXEC);
  if (g->pagemap_fd_ < 0) return lull::Status::PermissionDenied(Errno(path));
  *out = std::move(g);
  return lull::Status::Ok();
}

ProcessGuest::~ProcessGuest() {
  if (owned_) Kill();
  if (ready_fd_ >= 0) close(ready_fd_);
  if (go_fd_ >= 0) close(go_fd_);
  if (pagemap_fd_ >= 0) close(pagemap_fd_);
  if (mem_) munmap(mem_, bytes_);
  if (memfd_ >= 0) close(memfd_);
}

bool ProcessGuest::Exited() {
  if (pid_ <= 0) return true;
  if (owned_) {
    if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      return true;
    }
    return false;
  }
  return kill(pid_, 0) != 0;
}

void ProcessGuest::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  if (owned_) waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

lull::Status ProcessGuest::CollectDirty(std::vector<uint32_t>* dirty) {
  dirty->clear();
  if (pid_ <= 0) return lull::Status::Unavailable("guest process is gone");
  constexpr size_t kVec = 1024;
  regions_.resize(kVec * 3);
  PmScanArg a{};
  a.size = sizeof a;
  a.flags = kPmScanWpMatching | kPmScanCheckWpAsync;
  a.start = child_addr_;
  a.end = child_addr_ + bytes_;
  a.vec = reinterpret_cast<uintptr_t>(regions_.data());
  a.vec_len = kVec;
  a.category_mask = kPageIsWritten;
  a.return_mask = kPageIsWritten;
  while (a.start < a.end) {
    long n = ioctl(pagemap_fd_, kPagemapScan, &a);
    if (n < 0) return lull::Status::IoError(Errno("PAGEMAP_SCAN of the guest"));
    const auto* r = reinterpret_cast<const PageRegion*>(regions_.data());
    for (long i = 0; i < n; ++i)
      for (uint64_t p = r[i].start; p < r[i].end; p += page_size_)
        dirty->push_back(static_cast<uint32_t>((p - child_addr_) / page_size_));
    if (a.walk_end <= a.start) break;
    a.start = a.walk_end;
  }
  return lull::Status::Ok();
}

lull::Status ProcessGuest::Pause() {
  if (pid_ <= 0 || kill(pid_, SIGSTOP) != 0) return lull::Status::Unavailable(Errno("pause guest"));
  // SIGSTOP is asynchronous: wait until the kernel reports the process stopped, so no
  // write lands after the final dirty scan.
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid_));
  for (int i = 0; i < 20000; ++i) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return lull::Status::Unavailable(Errno(path));
    char buf[256];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return lull::Status::Unavailable("guest process is gone");
    buf[n] = 0;
    const char* rp = std::strrchr(buf, ')');
    if (rp && (rp[2] == 'T' || rp[2] == 't')) {
      paused_ = true;
      return lull::Status::Ok();
    }
    if (rp && (rp[2] == 'Z' || rp[2] == 'X')) return lull::Status::Unavailable("guest process died");
    timespec ts{0, 50'000};
    nanosleep(&ts, nullptr);
  }
  return lull::Status::Unavailable("guest process did not stop within 1 s");
}

void ProcessGuest::Release() { Kill(); }

lull::Status ProcessGuest::Resume() {
  if (pid_ <= 0 || kill(pid_, SIGCONT) != 0) return lull::Status::Unavailable(Errno("resume guest"));
  paused_ = false;
  return lull::Status::Ok();
}

// ---- target side -------------------------------------------------------------------

class ProcessTarget : public TargetGuest {
 public:
  ProcessTarget(ProcessGuestFactory* f, std::unique_ptr<ProcessGuest> g)
      : factory_(f), guest_(std::move(g)) {}
  size_t pages() const override { return guest_ ? guest_->pages() : 0; }
  size_t page_size() const override { return guest_ ? guest_->page_size() : 4096; }
  uint8_t* data() override { return guest_ ? guest_->mutable_data() : nullptr; }
  lull::Status Start(const std::string& description) override {
    if (!guest_) return lull::Status::Internal("target guest already destroyed");
    WorkloadConfig w;
    if (auto s = WorkloadConfig::Parse(description, &w); !s.ok()) return s;
    return guest_->Go(w);  // returns after the guest's first tick (verification run)
  }
  void Commit() override {
    if (guest_) factory_->Add(std::move(guest_));
  }
  void Destroy() override { guest_.reset(); }
  // A cgroup around the guest process (resource_control.h).
  lull::Status Control(std::unique_ptr<ResourceControl>* out) override {
    if (!guest_) return lull::Status::Internal("target guest already destroyed");
    std::unique_ptr<CgroupControl> cg;
    if (auto s = CgroupControl::Create("lull-migrate-" + std::to_string(guest_->pid()), guest_->pid(), &cg);
        !s.ok())
      return s;
    *out = std::move(cg);
    return lull::Status::Ok();
  }

 private:
  ProcessGuestFactory* factory_;
  std::unique_ptr<ProcessGuest> guest_;  // prepared (forked, tracked, waiting to go)
};

lull::Status ProcessGuestFactory::Create(size_t pages, size_t page_size,
                                         std::unique_ptr<TargetGuest>* out) {
  const size_t ps = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  if (page_size != ps)
    return lull::Status::InvalidArgument("page size " + std::to_string(page_size) +
                                         " differs from this host's " + std::to_string(ps));
  size_t bytes = pages * ps;
  int fd = memfd_create("lull-guest incoming", MFD_CLOEXEC);
  if (fd < 0) return lull::Status::Unavailable(Errno("memfd_create"));
  // fallocate, not ftruncate: the memory is taken now, or we learn now that it is not there.
  if (fallocate(fd, 0, 0, static_cast<off_t>(bytes)) != 0) {
    close(fd);
    return lull::Status::Unavailable(Errno("reserving guest memory (fallocate)"));
  }
  void* m = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  if (m == MAP_FAILED) {
    close(fd);
    return lull::Status::Unavailable(Errno("mapping guest memory"));
  }
  // The guest process is forked now, not at switch-over: pre-warming keeps fork and
  // tracking set-up out of the downtime.
  std::unique_ptr<ProcessGuest> g;
  if (auto s = ProcessGuest::Prepare(fd, static_cast<uint8_t*>(m), bytes, &g); !s.ok()) return s;
  *out = std::make_unique<ProcessTarget>(this, std::move(g));
  return lull::Status::Ok();
}

void ProcessGuestFactory::Add(std::unique_ptr<ProcessGuest> g) {
  std::lock_guard<std::mutex> l(mu_);
  started_.push_back(std::move(g));
}

std::unique_ptr<ProcessGuest> ProcessGuestFactory::TakeStarted() {
  std::lock_guard<std::mutex> l(mu_);
  if (started_.empty()) return nullptr;
  auto g = std::move(started_.front());
  started_.erase(started_.begin());
  return g;
}

size_t ProcessGuestFactory::started() const {
  std::lock_guard<std::mutex> l(mu_);
  return started_.size();
}

}  // namespace lull::migrate
