// Ring throughput and round-trip latency: lull's ring against boost::lockfree::spsc_queue
// and Xen's own xen/io/ring.h, with 32-byte records, two threads pinned to two cores,
// in one run. Prints Google Benchmark's table and then the ratios the issue asks for:
// throughput lull/boost (target >= 1.5) and latency lull/boost (target <= 0.7).
//
// Protocols, so the comparison is like for like:
//   throughput  the benchmark thread produces, a pinned peer consumes; an iteration is
//               kChunk records, ending when the consumer has taken them all. "single"
//               publishes and pops one record at a time, "batch" 32 at a time (lull:
//               push x32 + one publish, pop 32 + one release; boost: push/pop of arrays;
//               Xen: RING_PUSH_REQUESTS after 32 requests, one response per request).
//   latency     ping-pong of one record: lull and boost use a ring each way; ring.h is
//               request/response on one ring, the way Xen's split drivers use it.
#include <benchmark/benchmark.h>
#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <boost/lockfree/spsc_queue.hpp>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <thread>

#include "shm/ring.h"
#include "tests/bench/bench_results.h"

// Xen's public ring macros need the barriers that xenctrl.h defines for x86_64; these
// are the same definitions (a compiler barrier; a locked add as the full barrier).
#define __XEN_TOOLS__ 1  // the latest interface version, as the toolstack builds with
#define xen_barrier() asm volatile("" ::: "memory")
#define xen_mb() asm volatile("lock addl $0, -32(%%rsp)" ::: "memory")
#define xen_rmb() xen_barrier()
#define xen_wmb() xen_barrier()
#include <xen/io/ring.h>

namespace {

struct Rec32 {
  uint32_t seq;
  uint32_t a;
  uint64_t b, c, d;
};
static_assert(sizeof(Rec32) == 32);

struct XenReq {
  uint64_t a, b, c, d;
};
struct XenRsp {
  uint64_t a, b, c, d;
};
DEFINE_RING_TYPES(lullbench, struct XenReq, struct XenRsp);

constexpr uint32_t kCapacity = 4096;  // records; ring.h's page-sized rings hold far fewer,
                                      // so its ring gets the same 4096 slots (see XenRing)
constexpr uint64_t kChunk = 1 << 16;
constexpr uint32_t kBatch = 32;

void Pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu % std::thread::hardware_concurrency(), &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

// Spin politely, and give the core away now and then: on a shared or oversubscribed
// machine a pure spin can starve the peer it is waiting for. The same for every queue.
inline void Relax() {
  thread_local uint32_t spins = 0;
  if (++spins % 65536 == 0) sched_yield();  // a few ms of spinning
  else __builtin_ia32_pause();
}

// ---- the three queues behind one small adapter each --------------------------------

struct Aligned {
  explicit Aligned(size_t n) : p(static_cast<uint8_t*>(::operator new(n, std::align_val_t{64}))) {
    std::memset(p, 0, n);
  }
  ~Aligned() { ::operator delete(p, std::align_val_t{64}); }
  uint8_t* p;
};

class LullQueue {
 public:
  LullQueue() : bytes_(lull_ring_bytes(kCapacity, sizeof(Rec32))), mem_(bytes_) {
    lull__ring_format(reinterpret_cast<lull_ring_hdr*>(mem_.p), kCapacity, sizeof(Rec32));
    prod_.Attach(mem_.p, bytes_, kCapacity);
    cons_.Attach(mem_.p, bytes_, kCapacity);
  }
  // Producer: stage n records, publish once; spins while full.
  void Send(const Rec32* r, uint32_t n) {
    // Wait for room rather than drop: every queue here moves every record.
    for (uint32_t done = 0; (done += prod_.PushN(r + done, n - done)) < n;) Relax();
    prod_.Publish();
  }
  uint32_t Receive(Rec32* out, uint32_t max) {
    int got = cons_.Pop(out, max);
    if (got > 0) cons_.Release();
    return got > 0 ? static_cast<uint32_t>(got) : 0;
  }

 private:
  uint64_t bytes_;
  Aligned mem_;
  lull::shm::Producer<Rec32> prod_;
  lull::shm::Consumer<Rec32> cons_;
};

class BoostQueue {
 public:
  void Send(const Rec32* r, uint32_t n) {
    uint32_t done = 0;
    while (done < n) {
      done += static_cast<uint32_t>(q_.push(r + done, n - done));
      if (done < n) Relax();
    }
  }
  uint32_t Receive(Rec32* out, uint32_t max) {
    return max == 1 ? static_cast<uint32_t>(q_.pop(out[0])) : static_cast<uint32_t>(q_.pop(out, max));
  }

 private:
  boost::lockfree::spsc_queue<Rec32, boost::lockfree::capacity<kCapacity>> q_;
};

// Xen's ring.h: the front end sends requests, the back end consumes them and answers
// each with a response (which is what frees the slot for the front end).
class XenRing {
 public:
  XenRing() : mem_(sizeof(lullbench_sring) + kCapacity * sizeof(union lullbench_sring_entry)) {
    sring_ = reinterpret_cast<lullbench_sring*>(mem_.p);
    SHARED_RING_INIT(sring_);
    // __CONST_RING_SIZE assumes one page; size the ring to kCapacity slots instead.
    FRONT_RING_ATTACH(&front_, sring_, 0, kCapacity * sizeof(union lullbench_sring_entry) +
                                              sizeof(lullbench_sring) - sizeof(sring_->ring));
    BACK_RING_ATTACH(&back_, sring_, 0, kCapacity * sizeof(union lullbench_sring_entry) +
                                           sizeof(lullbench_sring) - sizeof(sring_->ring));
  }
  // Front end.
  void Send(const Rec32* r, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
      while (RING_FULL(&front_)) {
        ReapResponses();
        Relax();
      }
      std::memcpy(RING_GET_REQUEST(&front_, front_.req_prod_pvt), &r[i], sizeof(XenReq));
      front_.req_prod_pvt++;
    }
    int notify;
    RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&front_, notify);
    (void)notify;  // no event channel between two threads: both sides poll
  }
  // Back end: consume up to max requests, answer each.
  uint32_t Receive(Rec32* out, uint32_t max) {
    uint32_t n = 0;
    RING_IDX rp = back_.sring->req_prod;
    xen_rmb();
    while (back_.req_cons != rp && n < max) {
      std::memcpy(&out[n], RING_GET_REQUEST(&back_, back_.req_cons), sizeof(XenReq));
      back_.req_cons++;
      std::memcpy(RING_GET_RESPONSE(&back_, back_.rsp_prod_pvt), &out[n], sizeof(XenRsp));
      back_.rsp_prod_pvt++;
      n++;
    }
    if (n) {
      int notify;
      RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&back_, notify);
      (void)notify;
    }
    return n;
  }
  // Front end: wait for the response to everything sent (the round trip).
  void AwaitResponse(Rec32* out) {
    for (;;) {
      RING_IDX rp = front_.sring->rsp_prod;
      xen_rmb();
      if (front_.rsp_cons != rp) {
        std::memcpy(out, RING_GET_RESPONSE(&front_, front_.rsp_cons), sizeof(XenRsp));
        front_.rsp_cons++;
        return;
      }
      Relax();
    }
  }

 private:
  // Throughput mode: the front end takes the responses only to free their slots.
  void ReapResponses() {
    RING_IDX rp = front_.sring->rsp_prod;
    xen_rmb();
    front_.rsp_cons = rp;
  }
  Aligned mem_;
  lullbench_sring* sring_;
  lullbench_front_ring_t front_{};
  lullbench_back_ring_t back_{};
};

// ---- throughput ----------------------------------------------------------------------

template <class Q>
void Throughput(benchmark::State& state) {
  const uint32_t batch = static_cast<uint32_t>(state.range(0));
  auto q = std::make_unique<Q>();
  std::atomic<uint64_t> consumed{0};
  std::atomic<bool> stop{false};
  std::thread peer([&] {
    Pin(1);
    Rec32 buf[kBatch];
    uint64_t n = 0, sum = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      uint32_t got = q->Receive(buf, batch);
      for (uint32_t i = 0; i < got; i++) sum += buf[i].b;
      if (got) {
        n += got;
        consumed.store(n, std::memory_order_release);
      } else {
        Relax();
      }
    }
    benchmark::DoNotOptimize(sum);
  });
  Pin(0);
  Rec32 recs[kBatch];
  for (uint32_t i = 0; i < kBatch; i++) recs[i] = Rec32{0, i, i, i * 2, i * 3};
  uint64_t sent = 0;
  for (auto _ : state) {
    for (uint64_t k = 0; k < kChunk; k += batch) {
      recs[0].b = sent + k;
      q->Send(recs, batch);
    }
    sent += kChunk;
    while (consumed.load(std::memory_order_acquire) < sent) Relax();
  }
  stop = true;
  peer.join();
  state.SetItemsProcessed(static_cast<int64_t>(sent));
}

// ---- round-trip latency --------------------------------------------------------------

template <class Q>
void Latency(benchmark::State& state) {
  auto there = std::make_unique<Q>(), back = std::make_unique<Q>();
  std::atomic<bool> stop{false};
  std::thread peer([&] {
    Pin(1);
    Rec32 r;
    while (!stop.load(std::memory_order_relaxed)) {
      if (there->Receive(&r, 1)) back->Send(&r, 1);
      else Relax();
    }
  });
  Pin(0);
  Rec32 r{0, 1, 2, 3, 4};
  for (auto _ : state) {
    there->Send(&r, 1);
    while (!back->Receive(&r, 1)) Relax();
  }
  stop = true;
  peer.join();
}

template <>
void Latency<XenRing>(benchmark::State& state) {
  auto ring = std::make_unique<XenRing>();
  std::atomic<bool> stop{false};
  std::thread peer([&] {
    Pin(1);
    Rec32 r;
    while (!stop.load(std::memory_order_relaxed))
      if (!ring->Receive(&r, 1)) Relax();
  });
  Pin(0);
  Rec32 r{0, 1, 2, 3, 4};
  for (auto _ : state) {
    ring->Send(&r, 1);
    ring->AwaitResponse(&r);
  }
  stop = true;
  peer.join();
}

BENCHMARK(Throughput<LullQueue>)->Name("throughput/lull")->Arg(1)->Arg(kBatch)->UseRealTime();
BENCHMARK(Throughput<BoostQueue>)->Name("throughput/boost_spsc")->Arg(1)->Arg(kBatch)->UseRealTime();
BENCHMARK(Throughput<XenRing>)->Name("throughput/xen_ring_h")->Arg(1)->Arg(kBatch)->UseRealTime();
BENCHMARK(Latency<LullQueue>)->Name("latency/lull")->UseRealTime();
BENCHMARK(Latency<BoostQueue>)->Name("latency/boost_spsc")->UseRealTime();
BENCHMARK(Latency<XenRing>)->Name("latency/xen_ring_h")->UseRealTime();


}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  lull::bench::ResultReporter rep("items_per_second");  // else ns per round trip
  benchmark::RunSpecifiedBenchmarks(&rep);
  auto& r = rep.results;
  auto ratio = [&](const std::string& a, const std::string& b) {
    return r.count(a) && r.count(b) && r[b] > 0 ? r[a] / r[b] : 0.0;
  };
  std::printf("\nlull ring vs baselines (%u cores; 32-byte records)\n",
              std::thread::hardware_concurrency());
  for (const char* mode : {"1", "32"}) {
    std::string sfx = std::string("/") + mode + "/real_time";
    std::printf("  throughput, batch %-2s  lull %.1f M/s  boost %.1f M/s  xen %.1f M/s   "
                "lull/boost %.2fx (target >= 1.5)  lull/xen %.2fx\n",
                mode, r["throughput/lull" + sfx] / 1e6, r["throughput/boost_spsc" + sfx] / 1e6,
                r["throughput/xen_ring_h" + sfx] / 1e6,
                ratio("throughput/lull" + sfx, "throughput/boost_spsc" + sfx),
                ratio("throughput/lull" + sfx, "throughput/xen_ring_h" + sfx));
  }
  std::printf("  round trip             lull %.0f ns  boost %.0f ns  xen %.0f ns   "
              "lull/boost %.2fx (target <= 0.7)  lull/xen %.2fx\n",
              r["latency/lull/real_time"], r["latency/boost_spsc/real_time"],
              r["latency/xen_ring_h/real_time"],
              ratio("latency/lull/real_time", "latency/boost_spsc/real_time"),
              ratio("latency/lull/real_time", "latency/xen_ring_h/real_time"));
  benchmark::Shutdown();
  return 0;
}
