// Two-sided stress test of the ring: a producer and a consumer in separate processes
// (over a memfd mapping) or threads, moving N records and proving by sequence numbers
// and checksums that nothing was lost, duplicated, reordered or torn.
//
//   ring_stress processes N [--drop]   producer in a child process (posix_spawn)
//   ring_stress threads N [--drop]     producer in a second thread (for TSan)
//
// Without --drop the producer waits for space, so every record must arrive. With
// --drop it never waits (as Xen's scheduler does): the consumer then checks that records
// arrive in order and that the gaps add up to exactly the producer's drop count.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <atomic>
#include <cstring>
#include <functional>
#include <string>
#include <thread>

#include "shm/ring.h"
#include "shm/segment.h"

extern char** environ;

namespace {

struct StressRec {
  uint32_t seq;
  uint32_t salt;
  uint64_t n;        // the producer's own count, including dropped records
  uint64_t payload;  // Mix(n)
  uint64_t check;    // Mix(n ^ payload ^ salt): a torn record fails this
};
static_assert(sizeof(StressRec) == 32);

constexpr uint32_t kCapacity = 1u << 12;
constexpr uint32_t kBatch = 64;

uint64_t Mix(uint64_t x) {  // splitmix64's finaliser
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

StressRec Make(uint64_t n) {
  StressRec r{};
  r.salt = static_cast<uint32_t>(n * 2654435761u);
  r.n = n;
  r.payload = Mix(n);
  r.check = Mix(n ^ r.payload ^ r.salt);
  return r;
}

// Returns the number of records dropped.
uint64_t Produce(void* ring, uint64_t bytes, uint64_t total, bool drop) {
  lull::shm::Producer<StressRec> p;
  if (int rc = p.Attach(ring, bytes, kCapacity); rc != 0) {
    std::fprintf(stderr, "producer: attach failed: %s\n", std::strerror(-rc));
    std::exit(2);
  }
  uint64_t n = 0;
  while (n < total) {
    uint32_t room = p.FreeCached();
    if (room == 0 && !drop) {
      p.Publish();
      while ((room = p.Refresh()) == 0) std::this_thread::yield();
    }
    uint32_t batch = drop ? kBatch : std::min<uint32_t>(room, kBatch);
    for (uint32_t i = 0; i < batch && n < total; i++) p.Push(Make(n++));
    p.Publish();
  }
  return p.dropped();
}

// Consumes until the producer is done and the ring is empty, checking every record.
int Consume(void* ring, uint64_t bytes, uint64_t total, bool drop,
            const std::function<bool()>& producer_done) {
  lull::shm::Consumer<StressRec> c;
  if (int rc = c.Attach(ring, bytes, kCapacity); rc != 0) {
    std::fprintf(stderr, "consumer: attach failed: %s\n", std::strerror(-rc));
    return 2;
  }
  StressRec buf[kBatch];
  uint64_t expect = 0, received = 0, gaps = 0;
  for (;;) {
    bool done = producer_done();  // looked at before the pop that finds the ring empty
    int got = c.Pop(buf, kBatch);
    if (got < 0) {
      std::fprintf(stderr, "consumer: protocol error %d at record %" PRIu64 "\n", got, expect);
      return 1;
    }
    for (int i = 0; i < got; i++) {
      const StressRec& r = buf[i];
      if (r.payload != Mix(r.n) || r.check != Mix(r.n ^ r.payload ^ r.salt)) {
        std::fprintf(stderr, "torn record: n=%" PRIu64 "\n", r.n);
        return 1;
      }
      if (r.n < expect || (!drop && r.n != expect)) {
        std::fprintf(stderr, "%s: got n=%" PRIu64 " expected %" PRIu64 "\n",
                     r.n < expect ? "duplicated or reordered" : "lost", r.n, expect);
        return 1;
      }
      gaps += r.n - expect;
      expect = r.n + 1;
      received++;
    }
    c.Release();
    if (got == 0) {
      if (done) break;
      std::this_thread::yield();
    }
  }
  gaps += total - expect;  // drops after the last record received
  uint64_t dropped = c.producer_dropped();
  if (received + dropped != total || gaps != dropped || c.errors() != 0) {
    std::fprintf(stderr,
                 "FAILED: produced %" PRIu64 ", received %" PRIu64 ", dropped %" PRIu64
                 ", gaps %" PRIu64 ", protocol errors %" PRIu64 "\n",
                 total, received, dropped, gaps, c.errors());
    return 1;
  }
  std::printf("ok: %" PRIu64 " records produced, %" PRIu64 " received, %" PRIu64
              " dropped and counted; 0 lost, 0 duplicated, 0 reordered, 0 torn\n",
              total, received, dropped);
  return 0;
}

int Usage() {
  std::fprintf(stderr,
               "usage: ring_stress processes|threads N [--drop]\n"
               "       ring_stress producer FD N [--drop]   (internal: the child)\n");
  return 2;
}

bool ParseCount(const char* s, uint64_t* out) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v == 0) {
    std::fprintf(stderr, "ring_stress: N must be a positive integer, not '%s'\n", s);
    return false;
  }
  *out = v;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return Usage();
  std::string mode = argv[1];
  if (mode == "producer") {  // the child of `processes`
    uint64_t total;
    if (argc < 4 || !ParseCount(argv[3], &total)) return Usage();
    bool drop = argc > 4 && std::strcmp(argv[4], "--drop") == 0;
    lull::shm::Segment seg;
    if (int rc = lull::shm::Segment::FromFd(std::atoi(argv[2]), &seg); rc != 0) {
      std::fprintf(stderr, "producer: cannot map fd %s: %s\n", argv[2], std::strerror(-rc));
      return 2;
    }
    Produce(seg.data(), seg.size(), total, drop);
    return 0;
  }
  uint64_t total;
  if (!ParseCount(argv[2], &total)) return Usage();
  bool drop = argc > 3 && std::strcmp(argv[3], "--drop") == 0;
  uint64_t bytes = lull_ring_bytes(kCapacity, sizeof(StressRec));
  lull::shm::Segment seg;
  if (int rc = lull::shm::Segment::CreateMemfd(bytes, mode == "processes", &seg); rc != 0) {
    std::fprintf(stderr, "ring_stress: memfd: %s\n", std::strerror(-rc));
    return 2;
  }
  lull__ring_format(static_cast<lull_ring_hdr*>(seg.data()), kCapacity, sizeof(StressRec));
  if (mode == "threads") {
    std::atomic<bool> finished{false};
    std::thread producer([&] {
      Produce(seg.data(), bytes, total, drop);
      finished.store(true, std::memory_order_release);
    });
    int rc = Consume(seg.data(), bytes, total, drop,
                     [&] { return finished.load(std::memory_order_acquire); });
    if (rc != 0) std::_Exit(rc);  // the producer may be waiting for room forever
    producer.join();
    return rc;
  }
  if (mode != "processes") return Usage();
  std::string fd = std::to_string(seg.fd()), n = std::to_string(total);
  char* child_argv[] = {argv[0], const_cast<char*>("producer"), fd.data(), n.data(),
                        const_cast<char*>(drop ? "--drop" : nullptr), nullptr};
  pid_t pid;
  if (int rc = posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, child_argv, environ);
      rc != 0) {
    std::fprintf(stderr, "ring_stress: spawn: %s\n", std::strerror(rc));
    return 2;
  }
  int status = 0;
  bool exited = false;
  int rc = Consume(seg.data(), bytes, total, drop, [&] {
    if (!exited && waitpid(pid, &status, WNOHANG) == pid) exited = true;
    return exited;
  });
  if (rc != 0 && !exited) kill(pid, SIGKILL);  // it may be waiting for room forever
  if (!exited) waitpid(pid, &status, 0);
  if (rc != 0) return rc;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "ring_stress: producer process failed (status %d)\n", status);
    return 1;
  }
  return rc;
}
