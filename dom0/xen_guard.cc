#include "dom0/xen_guard.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

#include "dom0/log.h"

namespace lull::dom0 {

namespace {

uint64_t Fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) { h ^= c; h *= 0x100000001b3ull; }
  return h;
}

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

// Names are informational; keep the line format one token per field.
std::string Token(const std::string& s) {
  std::string t = s.empty() ? "-" : s;
  for (char& c : t) if (c <= ' ' || c == '=' || c == 127) c = '?';
  return t;
}

bool ParseU64(const std::string& s, int base, uint64_t* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(s.c_str(), &end, base);
  if (errno || *end || s[0] == '-') return false;
  *out = v;
  return true;
}

Status ParseDom(const std::string& line, const std::string& where, UndoEntry* e) {
  std::istringstream in(line);
  std::string word, id;
  in >> word >> id;
  uint64_t v;
  if (!ParseU64(id, 10, &v) || v > 0x7FF0)
    return Status::Corruption(where + ": domain id '" + id + "' is not a domain id");
  e->domid = static_cast<DomId>(v);
  bool have_weight = false, have_cap = false;
  for (std::string kv; in >> kv;) {
    auto eq = kv.find('=');
    if (eq == std::string::npos) return Status::Corruption(where + ": '" + kv + "' is not key=value");
    std::string k = kv.substr(0, eq), val = kv.substr(eq + 1);
    auto num = [&](int base, uint64_t max, uint64_t* o) -> Status {
      if (!ParseU64(val, base, o) || *o > max) return Status::Corruption(where + ": " + k + " = '" + val + "' is out of range");
      return Status::Ok();
    };
    Status s;
    if (k == "uuid") e->uuid = val;
    else if (k == "name") e->name = val;
    else if (k == "deadline_ns") s = num(10, UINT64_MAX, &e->deadline_ns);
    else if (k == "weight") { s = num(10, 65535, &v); e->weight = static_cast<uint32_t>(v); have_weight = true; }
    else if (k == "cap") { s = num(10, 65535, &v); e->cap = static_cast<uint32_t>(v); have_cap = true; }
    else if (k == "target_kib") { s = num(10, UINT64_MAX, &e->target_kib); e->has_target = true; }
    else if (k == "maxmem_kib") { s = num(10, UINT64_MAX, &e->maxmem_kib); e->has_maxmem = true; }
    else if (k == "aff") {
      std::istringstream al(val);
      for (std::string item; std::getline(al, item, ',');) {
        auto c = item.find(':');
        uint64_t vc, mask;
        if (c == std::string::npos || !ParseU64(item.substr(0, c), 10, &vc) || vc > 4096 ||
            !ParseU64(item.substr(c + 1), 16, &mask))
          return Status::Corruption(where + ": aff item '" + item + "' is not <vcpu>:<hex mask>");
        e->affinity.push_back({static_cast<int>(vc), mask});
      }
    } else {
      return Status::Corruption(where + ": unknown field '" + k + "'");
    }
    if (!s.ok()) return s;
  }
  if (have_weight != have_cap) return Status::Corruption(where + ": weight and cap must be recorded together");
  e->has_sched = have_weight;
  if (e->uuid.empty()) return Status::Corruption(where + ": uuid missing");
  return Status::Ok();
}

}  // namespace

uint64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

std::string FormatJournal(const std::vector<UndoEntry>& entries) {
  std::ostringstream o;
  o << "lull-undo 1\n";
  for (const auto& e : entries) {
    o << "dom " << e.domid << " uuid=" << Token(e.uuid) << " name=" << Token(e.name) << " deadline_ns=" << e.deadline_ns;
    if (e.has_sched) o << " weight=" << e.weight << " cap=" << e.cap;
    if (e.has_target) o << " target_kib=" << e.target_kib;
    if (e.has_maxmem) o << " maxmem_kib=" << e.maxmem_kib;
    if (!e.affinity.empty()) {
      o << " aff=";
      for (size_t i = 0; i < e.affinity.size(); ++i)
        o << (i ? "," : "") << e.affinity[i].first << ":" << std::hex << e.affinity[i].second << std::dec;
    }
    o << "\n";
  }
  std::string body = o.str();
  char end[64];
  std::snprintf(end, sizeof end, "end %zu %016" PRIx64 "\n", entries.size(), Fnv1a(body));
  return body + end;
}

Status ParseJournal(const std::string& text, const std::string& name, std::vector<UndoEntry>* out) {
  out->clear();
  std::vector<UndoEntry> es;
  size_t pos = 0;
  int lineno = 0;
  bool ended = false;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    ++lineno;
    const std::string where = name + ":" + std::to_string(lineno);
    if (nl == std::string::npos)
      return Status::Corruption(where + ": torn journal (last line has no newline)");
    std::string line = text.substr(pos, nl - pos);
    if (ended) return Status::Corruption(where + ": data after the end line");
    if (lineno == 1) {
      if (line != "lull-undo 1") return Status::Corruption(where + ": not an undo journal (want 'lull-undo 1', got '" + line + "')");
    } else if (line.rfind("dom ", 0) == 0) {
      UndoEntry e;
      Status s = ParseDom(line, where, &e);
      if (!s.ok()) return s;
      for (const auto& x : es)
        if (x.domid == e.domid) return Status::Corruption(where + ": domain " + std::to_string(e.domid) + " recorded twice");
      es.push_back(std::move(e));
    } else if (line.rfind("end ", 0) == 0) {
      std::istringstream in(line.substr(4));
      std::string n, sum;
      in >> n >> sum;
      uint64_t count, want;
      if (!ParseU64(n, 10, &count) || !ParseU64(sum, 16, &want))
        return Status::Corruption(where + ": malformed end line '" + line + "'");
      if (count != es.size())
        return Status::Corruption(where + ": end line says " + n + " domains, the journal has " + std::to_string(es.size()));
      uint64_t got = Fnv1a(text.substr(0, pos));
      if (got != want) {
        char b[96];
        std::snprintf(b, sizeof b, ": checksum mismatch (recorded %016" PRIx64 ", computed %016" PRIx64 ")", want, got);
        return Status::Corruption(where + b);
      }
      ended = true;
    } else {
      return Status::Corruption(where + ": unexpected line '" + line.substr(0, 60) + "'");
    }
    pos = nl + 1;
  }
  if (lineno == 0) return Status::Corruption(name + ": empty journal (a valid journal has a header and an end line)");
  if (!ended) return Status::Corruption(name + ": torn journal (no end line after line " + std::to_string(lineno) + ")");
  *out = std::move(es);
  return Status::Ok();
}

Status ReadJournal(const std::string& path, std::vector<UndoEntry>* out) {
  out->clear();
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return Status::Ok();
    return Status::IoError(Errno("cannot read undo journal " + path));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseJournal(ss.str(), path, out);
}

Status WriteJournal(const std::string& path, const std::vector<UndoEntry>& entries) {
  std::string dir = path.substr(0, path.find_last_of('/') == std::string::npos ? 0 : path.find_last_of('/'));
  if (dir.empty()) dir = path[0] == '/' ? "/" : ".";
  if (entries.empty()) {
    if (unlink(path.c_str()) != 0 && errno != ENOENT) return Status::IoError(Errno("cannot remove " + path));
  } else {
    const std::string tmp = path + ".tmp";
    const std::string text = FormatJournal(entries);
    int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return Status::IoError(Errno("cannot create " + tmp));
    size_t off = 0;
    while (off < text.size()) {
      ssize_t n = write(fd, text.data() + off, text.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) { Status s = Status::IoError(Errno("cannot write " + tmp)); close(fd); return s; }
      off += static_cast<size_t>(n);
    }
    if (fsync(fd) != 0) { Status s = Status::IoError(Errno("fsync " + tmp)); close(fd); return s; }
    close(fd);
    if (rename(tmp.c_str(), path.c_str()) != 0) return Status::IoError(Errno("cannot rename " + tmp + " to " + path));
  }
  int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) { (void)fsync(dfd); close(dfd); }
  return Status::Ok();
}

JournalLock::JournalLock(const std::string& journal_path) {
  const std::string p = journal_path + ".lock";
  fd_ = open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) { st_ = Status::IoError(Errno("cannot open lock file " + p)); return; }
  while (flock(fd_, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    st_ = Status::IoError(Errno("cannot lock " + p));
    close(fd_);
    fd_ = -1;
    return;
  }
}

JournalLock::~JournalLock() {
  if (fd_ >= 0) close(fd_);  // releases the flock
}

Status UndoJournal::Record(const UndoEntry& orig, uint64_t deadline_ns) {
  JournalLock lock(path_);
  if (!lock.status().ok()) return lock.status();
  std::vector<UndoEntry> es;
  Status s = ReadJournal(path_, &es);
  if (!s.ok()) return s;
  auto it = std::find_if(es.begin(), es.end(), [&](const UndoEntry& e) { return e.domid == orig.domid; });
  if (it == es.end()) {
    UndoEntry e = orig;
    e.deadline_ns = deadline_ns;
    es.push_back(e);
  } else {
    if (it->uuid != orig.uuid)
      return Status::AlreadyExists("undo journal " + path_ + ": domain " + std::to_string(orig.domid) +
                                   " is recorded with uuid " + it->uuid + ", not " + orig.uuid +
                                   " (replay the journal first)");
    if (orig.has_sched && !it->has_sched) { it->has_sched = true; it->weight = orig.weight; it->cap = orig.cap; }
    if (orig.has_target && !it->has_target) { it->has_target = true; it->target_kib = orig.target_kib; }
    if (orig.has_maxmem && !it->has_maxmem) { it->has_maxmem = true; it->maxmem_kib = orig.maxmem_kib; }
    for (const auto& a : orig.affinity) {
      bool have = false;
      for (const auto& b : it->affinity) have |= b.first == a.first;
      if (!have) it->affinity.push_back(a);
    }
    if (deadline_ns) it->deadline_ns = std::max(it->deadline_ns, deadline_ns);
  }
  return WriteJournal(path_, es);
}

Status UndoJournal::SetDeadline(DomId d, uint64_t deadline_ns) {
  JournalLock lock(path_);
  if (!lock.status().ok()) return lock.status();
  std::vector<UndoEntry> es;
  Status s = ReadJournal(path_, &es);
  if (!s.ok()) return s;
  for (auto& e : es) {
    if (e.domid != d) continue;
    e.deadline_ns = deadline_ns;
    return WriteJournal(path_, es);
  }
  return Status::NotFound("undo journal " + path_ + ": domain " + std::to_string(d) + " is not recorded");
}

Status UndoJournal::Get(DomId d, UndoEntry* out) const {
  std::vector<UndoEntry> es;
  Status s = ReadJournal(path_, &es);
  if (!s.ok()) return s;
  for (const auto& e : es) if (e.domid == d) { *out = e; return Status::Ok(); }
  return Status::NotFound("undo journal " + path_ + ": domain " + std::to_string(d) + " is not recorded");
}

Status UndoJournal::Undo(DomId d, UndoApplier* a) {
  JournalLock lock(path_);
  if (!lock.status().ok()) return lock.status();
  std::vector<UndoEntry> es;
  Status s = ReadJournal(path_, &es);
  if (!s.ok()) return s;
  auto it = std::find_if(es.begin(), es.end(), [&](const UndoEntry& e) { return e.domid == d; });
  if (it == es.end()) return Status::Ok();  // the guard restored it already
  s = a->Restore(*it);
  if (!s.ok() && s.code() != Status::Code::kNotFound) return s;
  if (!s.ok()) Log(LogLevel::kInfo, "undo: domain %u is gone: %s", d, s.ToString().c_str());
  es.erase(it);
  return WriteJournal(path_, es);
}

Status ReplayJournal(const std::string& path, UndoApplier* a, bool all, uint64_t now_ns, size_t* restored) {
  if (restored) *restored = 0;
  JournalLock lock(path);
  if (!lock.status().ok()) return lock.status();
  std::vector<UndoEntry> es, keep;
  Status s = ReadJournal(path, &es);
  if (!s.ok()) return s;
  Status first;
  bool changed = false;
  for (auto& e : es) {
    if (!all && (e.deadline_ns == 0 || e.deadline_ns > now_ns)) { keep.push_back(e); continue; }
    Status r = a->Restore(e);
    if (r.ok()) {
      if (restored) ++*restored;
      changed = true;
    } else if (r.code() == Status::Code::kNotFound) {
      Log(LogLevel::kInfo, "undo: domain %u (%s) is gone: %s", e.domid, e.name.c_str(), r.ToString().c_str());
      changed = true;
    } else {
      if (first.ok()) first = r;
      keep.push_back(e);
    }
  }
  if (changed) {
    s = WriteJournal(path, keep);
    if (!s.ok()) return s;
  }
  return first;
}

Status RunGuard(const std::string& journal, int parent_fd, UndoApplier* a, int period_ms) {
  for (;;) {
    pollfd p{parent_fd, POLLIN, 0};
    int n = poll(&p, 1, period_ms);
    if (n < 0 && errno != EINTR) return Status::IoError(Errno("lull-guard: poll"));
    bool gone = n > 0 && (p.revents & (POLLHUP | POLLERR | POLLNVAL));
    if (n > 0 && (p.revents & POLLIN) && !gone) {
      char b[64];
      ssize_t r = read(parent_fd, b, sizeof b);
      gone = r == 0;  // EOF: every write end is closed
    }
    size_t k = 0;
    Status s = ReplayJournal(journal, a, gone, MonotonicNs(), &k);
    if (k) Log(LogLevel::kWarning, "lull-guard: restored %zu domain(s) %s", k, gone ? "(lulld is gone)" : "(leases expired)");
    if (!s.ok()) Log(LogLevel::kError, "lull-guard: %s", s.ToString().c_str());
    if (gone) return s;
  }
}

Guard::~Guard() { Stop(); }

Status Guard::Start(const std::string& journal, std::function<std::unique_ptr<UndoApplier>()> make_applier,
                    int period_ms) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return Status::IoError(Errno("lull-guard: pipe"));
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return Status::IoError(Errno("lull-guard: fork"));
  }
  if (pid == 0) {
    close(fds[1]);
    // The guard outlives a killed lulld on purpose; it must not die of lulld's signals
    // sent to the process group (Ctrl-C), only finish its replay.
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    prctl(PR_SET_NAME, "lull-guard", 0, 0, 0);
    if (getppid() != parent) _exit(0);  // lulld died before we started: nothing to guard yet
    std::unique_ptr<UndoApplier> a = make_applier();
    Status s = a ? RunGuard(journal, fds[0], a.get(), period_ms)
                 : Status::Unavailable("lull-guard: no applier (cannot open the host)");
    if (!s.ok()) Log(LogLevel::kError, "lull-guard: %s", s.ToString().c_str());
    _exit(s.ok() ? 0 : 1);
  }
  close(fds[0]);
  pid_ = pid;
  wfd_ = fds[1];
  return Status::Ok();
}

void Guard::Stop() {
  if (wfd_ >= 0) { close(wfd_); wfd_ = -1; }
  if (pid_ > 0) {
    int st;
    while (waitpid(pid_, &st, 0) < 0 && errno == EINTR) {}
    pid_ = -1;
  }
}

}  // namespace lull::dom0
