// lull-clone-backend: one process-backed instance (the primary or a shadow).
//
//   lull-clone-backend --golden FILE --id NAME [--port P] [--vcpus N]
//
// Serves, on 127.0.0.1 only:
//   GET  /k/<key>          the request: holds one vCPU slot for service_us (burn_us of it
//                          real CPU over the key's volume block, read through the cache)
//   GET  /health           "ok <id>"
//   GET  /stats            JSON: id, vcpus, served, inflight, cache_hits, volume_reads
//   POST /admin/vcpus?n=N  resize (vCPU hotplug analogue), 1 <= N <= max_vcpus
// Prints "READY <port>" on stdout once listening and warm (warm_blocks cached), which is
// what the pool waits for. SIGTERM stops it cleanly; the pool pauses it with SIGSTOP.
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cerrno>
#include <csignal>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <thread>

#include "dom0/clone/block_cache.h"
#include "dom0/clone/golden.h"

namespace {

// Counting semaphore whose size can change while requests wait (vCPU hotplug).
class VcpuSlots {
 public:
  explicit VcpuSlots(int n) : size_(n) {}
  void Acquire() {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return used_ < size_; });
    ++used_;
  }
  void Release() {
    { std::lock_guard<std::mutex> l(mu_); --used_; }
    cv_.notify_one();
  }
  void Resize(int n) {
    { std::lock_guard<std::mutex> l(mu_); size_ = n; }
    cv_.notify_all();
  }
  int size() const { std::lock_guard<std::mutex> l(mu_); return size_; }
 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  int size_, used_ = 0;
};

uint64_t Fnv(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// A whole decimal number in [lo, hi]; atoi would read "-1", "80x" and "" as numbers.
bool ParseInt(const std::string& v, int lo, int hi, int* out) {
  int n = 0;
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || end != v.data() + v.size() || n < lo || n > hi) return false;
  *out = n;
  return true;
}

int Usage(const char* msg) {
  std::fprintf(stderr, "lull-clone-backend: %s\nusage: lull-clone-backend --golden FILE "
                       "--id NAME [--port P] [--vcpus N]\n", msg);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string golden, id;
  int port = 0, vcpus = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) return Usage(("missing value after " + a).c_str());
    std::string v = argv[++i];
    if (a == "--golden") golden = v;
    else if (a == "--id") id = v;
    else if (a == "--port" || a == "--vcpus") {
      const int hi = a == "--port" ? 65535 : 4096;
      if (!ParseInt(v, 0, hi, a == "--port" ? &port : &vcpus)) {
        return Usage((a + " '" + v + "': must be a whole number in [0, " +
                      std::to_string(hi) + "]").c_str());
      }
    } else {
      return Usage(("unknown option " + a).c_str());
    }
  }
  if (golden.empty() || id.empty()) return Usage("--golden and --id are required");
  lull::clone::GoldenConfig cfg;
  lull::Status s = lull::clone::LoadGoldenConfig(golden, &cfg);
  if (!s.ok()) return Usage(s.ToString().c_str());
  if (vcpus == 0) vcpus = cfg.vcpus;
  if (vcpus < 1 || vcpus > cfg.max_vcpus) return Usage("--vcpus out of [1, max_vcpus]");

  lull::clone::BlockCache cache;
  s = cache.Open(cfg.volume_path, cfg.block_size, cfg.cache_blocks);
  if (!s.ok()) return Usage(s.ToString().c_str());
  std::vector<uint8_t> block;
  for (int b = 0; b < cfg.warm_blocks; ++b) cache.Read(b, &block);  // warm the golden cache

  // SIGTERM/SIGINT are taken by a thread (sigwait) rather than a handler, so that stopping
  // the server is not done in signal context. Blocked before any thread starts.
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  sigaddset(&term, SIGINT);
  pthread_sigmask(SIG_BLOCK, &term, nullptr);

  VcpuSlots slots(vcpus);
  std::atomic<uint64_t> served{0};
  std::atomic<int> inflight{0};
  httplib::Server svr;
  // Enough threads for HAProxy's per-server maxconn (48) plus health and admin calls:
  // httplib keeps one thread per keep-alive connection.
  svr.new_task_queue = [] { return new httplib::ThreadPool(64); };
  svr.set_keep_alive_max_count(100000);
  svr.set_tcp_nodelay(true);

  svr.Get(R"(/k/(.+))", [&](const httplib::Request& req, httplib::Response& res) {
    ++inflight;
    auto t0 = std::chrono::steady_clock::now();
    slots.Acquire();
    auto start = std::chrono::steady_clock::now();
    std::vector<uint8_t> buf;
    uint64_t key = Fnv(req.matches[1].str());
    lull::Status rs = cache.Read(key, &buf);
    uint64_t sum = 0;
    if (rs.ok()) {
      // The real CPU part of the request: checksum the block until burn_us has passed.
      auto until = start + std::chrono::microseconds(cfg.burn_us);
      do {
        for (uint8_t c : buf) sum = (sum ^ c) * 1099511628211ull;
      } while (std::chrono::steady_clock::now() < until);
      std::this_thread::sleep_until(start + std::chrono::microseconds(cfg.service_us));
    }
    slots.Release();
    --inflight;
    if (!rs.ok()) {
      res.status = 500;
      res.set_content(rs.ToString(), "text/plain");
      return;
    }
    ++served;
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                  std::chrono::steady_clock::now() - t0).count();
    res.set_header("X-Instance", id);
    res.set_content(id + " " + std::to_string(sum & 0xffff) + " " + std::to_string(us) + "\n",
                    "text/plain");
  });
  svr.Get("/health", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok " + id + "\n", "text/plain");
  });
  svr.Get("/stats", [&](const httplib::Request&, httplib::Response& res) {
    char b[256];
    std::snprintf(b, sizeof b,
                  "{\"id\":\"%s\",\"vcpus\":%d,\"served\":%llu,\"inflight\":%d,"
                  "\"cache_hits\":%llu,\"volume_reads\":%llu}\n",
                  id.c_str(), slots.size(), static_cast<unsigned long long>(served.load()),
                  inflight.load(), static_cast<unsigned long long>(cache.hits()),
                  static_cast<unsigned long long>(cache.volume_reads()));
    res.set_content(b, "application/json");
  });
  svr.Post("/admin/vcpus", [&](const httplib::Request& req, httplib::Response& res) {
    int n = 0;
    if (!req.has_param("n") || !ParseInt(req.get_param_value("n"), 1, cfg.max_vcpus, &n)) {
      res.status = 400;
      res.set_content("n must be in [1, " + std::to_string(cfg.max_vcpus) + "]\n", "text/plain");
      return;
    }
    slots.Resize(n);
    res.set_content("vcpus " + std::to_string(n) + "\n", "text/plain");
  });

  // Debian's compiled httplib listens with a backlog of 5: HAProxy opening tens of
  // connections at once would see SYNs dropped (a 1 s retransmit). Keep the listening
  // socket's fd and listen() again with a real backlog, which Linux allows.
  int listen_fd = -1;
  svr.set_socket_options([&](int fd) {
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    // Accepted sockets inherit TCP_NODELAY: without it Nagle holds the body behind the
    // headers until the peer's delayed ACK, 40 ms per request on keep-alive connections.
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    listen_fd = fd;
  });
  if (port == 0) {
    port = svr.bind_to_any_port("127.0.0.1");
  } else if (!svr.bind_to_port("127.0.0.1", port)) {
    port = -1;
  }
  if (port <= 0) {
    std::fprintf(stderr, "lull-clone-backend %s: cannot bind 127.0.0.1\n", id.c_str());
    return 1;
  }
  if (listen(listen_fd, 1024) != 0) {
    std::fprintf(stderr, "lull-clone-backend %s: listen backlog: %s\n", id.c_str(),
                 std::strerror(errno));
    return 1;
  }
  std::thread stopper([&] {
    int sig = 0;
    sigwait(&term, &sig);
    svr.stop();
  });
  stopper.detach();
  std::printf("READY %d\n", port);
  std::fflush(stdout);
  svr.listen_after_bind();
  std::_Exit(0);  // the stopper thread is detached; skip static destructors racing it
}
