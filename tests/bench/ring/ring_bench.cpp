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
//               Two floors, the honest lower bounds of any queue on this machine:
//               "floor_1line" is two threads bouncing one cache line with a plain atomic
//               (each side waits for the other's value, then writes its own), and
//               "floor_flag" is one line per direction (one flag each way, no data).
//               A ring with an index line and a record line per direction can at best
//               approach floor_flag plus one more dependent line transfer each way.
//   interleaved the same round trips again, but in rounds: each round runs a short burst
//               of every protocol in turn and the ratios are taken within a round, then
//               the median over rounds. The two CPUs here are KVM vCPUs that the host
//               moves between its cores (same core's SMT sibling, same CCX, other CCX),
//               which changes a line transfer's cost by 2-5x from one second to the
//               next; only protocols measured under the same placement compare fairly.
#include <benchmark/benchmark.h>
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <boost/lockfree/spsc_queue.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <vector>

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
  // Lines of their own: the peer stores consumed after every receive and the benchmark
  // thread writes recs[] before every send; sharing a line would cost both sides.
  alignas(64) std::atomic<uint64_t> consumed{0};
  alignas(64) std::atomic<bool> stop{false};
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
  alignas(64) Rec32 recs[kBatch];
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

// The floor with one line per direction: a counter each way, no record, no ring.
class FlagQueue {
 public:
  void Send(const Rec32*, uint32_t n) { flag_.v.store(sent_ += n, std::memory_order_release); }
  uint32_t Receive(Rec32*, uint32_t) {
    uint64_t v = flag_.v.load(std::memory_order_acquire);
    if (v == seen_) return 0;
    seen_++;
    return 1;
  }

 private:
  struct alignas(64) Line {
    std::atomic<uint64_t> v{0};
  } flag_;
  // Each side's private count, on a line of its own (no false sharing with the flag or
  // with the other side's count).
  alignas(64) uint64_t sent_ = 0;
  alignas(64) uint64_t seen_ = 0;
};

// The absolute floor: both directions on one cache line. The benchmark thread writes an
// odd value and waits for the next even one, which the peer writes when it sees the odd.
struct OneLine {};

// The peer of a round trip: a thread pinned to CPU 1 that runs `step` until stopped; the
// constructing (benchmark) thread pins itself to CPU 0.
class Peer {
 public:
  template <class F>
  explicit Peer(F step) : thread_([this, step] {
      Pin(1);
      while (!stop_.load(std::memory_order_relaxed)) step();
    }) {
    Pin(0);
  }
  ~Peer() {
    stop_ = true;
    thread_.join();
  }

 private:
  // Polled on every step, written once: a line of its own, so that it never shares one
  // with anything the benchmark thread writes per round trip.
  alignas(64) std::atomic<bool> stop_{false};
  std::thread thread_;
};

// One round trip at a time from the benchmark thread; one class per protocol shape. The
// benchmark thread's record r_ is on a line of its own for the same reason as stop_.
template <class Q>
class PingPong {
 public:
  void Once() {
    there_->Send(&r_, 1);
    while (!back_->Receive(&r_, 1)) Relax();
  }

 private:
  std::unique_ptr<Q> there_ = std::make_unique<Q>(), back_ = std::make_unique<Q>();
  alignas(64) Rec32 r_{0, 1, 2, 3, 4};
  Peer peer_{[this] {  // last: it starts once the rings exist
    Rec32 r;
    if (there_->Receive(&r, 1)) back_->Send(&r, 1);
    else Relax();
  }};
};

template <>
class PingPong<XenRing> {
 public:
  void Once() {
    ring_->Send(&r_, 1);
    ring_->AwaitResponse(&r_);
  }

 private:
  std::unique_ptr<XenRing> ring_ = std::make_unique<XenRing>();
  alignas(64) Rec32 r_{0, 1, 2, 3, 4};
  Peer peer_{[this] {
    Rec32 r;
    if (!ring_->Receive(&r, 1)) Relax();
  }};
};

template <>
class PingPong<OneLine> {
 public:
  void Once() {
    line_->v.store(++v_, std::memory_order_release);
    ++v_;
    while (line_->v.load(std::memory_order_acquire) != v_) Relax();
  }

 private:
  struct alignas(64) Line {
    std::atomic<uint64_t> v{0};
  };
  std::unique_ptr<Line> line_ = std::make_unique<Line>();
  // The benchmark thread's own, off the line of line_ (a pointer the peer reads).
  alignas(64) uint64_t v_ = 0;
  Peer peer_{[this] {
    uint64_t v = line_->v.load(std::memory_order_acquire);
    if (v & 1) line_->v.store(v + 1, std::memory_order_release);
    else Relax();
  }};
};

template <class Q>
void Latency(benchmark::State& state) {
  PingPong<Q> pp;
  for (auto _ : state) pp.Once();
}

// ---- the same round trips, interleaved -----------------------------------------------

constexpr const char* kProtocols[] = {"floor_1line", "floor_flag", "lull", "boost_spsc",
                                      "xen_ring_h"};
constexpr int kNumProtocols = 5;
constexpr int kSlices = 20, kRoundTripsPerSlice = 200;

// ns per round trip in one burst of protocol `Q`: the median of kSlices timed slices
// (after a warm-up), so that a rare stall (an interrupt, the host descheduling a vCPU
// for a millisecond) costs one slice instead of deciding the round.
template <class Q>
double Burst() {
  PingPong<Q> pp;
  for (int i = 0; i < kRoundTripsPerSlice * 2; i++) pp.Once();
  std::vector<double> slice;
  for (int k = 0; k < kSlices; k++) {
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kRoundTripsPerSlice; i++) pp.Once();
    std::chrono::duration<double, std::nano> d = std::chrono::steady_clock::now() - t0;
    slice.push_back(d.count() / kRoundTripsPerSlice);
  }
  std::nth_element(slice.begin(), slice.begin() + kSlices / 2, slice.end());
  return slice[kSlices / 2];
}

// Per protocol, ns per round trip of each round; filled by the benchmark below.
std::vector<double> g_rounds[kNumProtocols];

void LatencyInterleaved(benchmark::State& state) {
  for (auto& v : g_rounds) v.clear();
  for (auto _ : state) {
    g_rounds[0].push_back(Burst<OneLine>());
    g_rounds[1].push_back(Burst<FlagQueue>());
    g_rounds[2].push_back(Burst<LullQueue>());
    g_rounds[3].push_back(Burst<BoostQueue>());
    g_rounds[4].push_back(Burst<XenRing>());
  }
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

// Median over rounds of protocol a's time over protocol b's in the same round.
double RoundRatio(int a, int b) {
  std::vector<double> r;
  for (size_t i = 0; i < g_rounds[a].size() && i < g_rounds[b].size(); i++)
    if (g_rounds[b][i] > 0) r.push_back(g_rounds[a][i] / g_rounds[b][i]);
  return Median(r);
}

BENCHMARK(Throughput<LullQueue>)->Name("throughput/lull")->Arg(1)->Arg(kBatch)->UseRealTime();
BENCHMARK(Throughput<BoostQueue>)->Name("throughput/boost_spsc")->Arg(1)->Arg(kBatch)->UseRealTime();
BENCHMARK(Throughput<XenRing>)->Name("throughput/xen_ring_h")->Arg(1)->Arg(kBatch)->UseRealTime();
BENCHMARK(Latency<LullQueue>)->Name("latency/lull")->UseRealTime();
BENCHMARK(Latency<BoostQueue>)->Name("latency/boost_spsc")->UseRealTime();
BENCHMARK(Latency<XenRing>)->Name("latency/xen_ring_h")->UseRealTime();
BENCHMARK(Latency<OneLine>)->Name("latency/floor_1line")->UseRealTime();
BENCHMARK(Latency<FlagQueue>)->Name("latency/floor_flag")->UseRealTime();
BENCHMARK(LatencyInterleaved)->Name("latency/interleaved_rounds")->Iterations(100)->UseRealTime();


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
  std::printf("  round-trip floors      one line %.0f ns  one flag each way %.0f ns   "
              "lull/floor_flag %.2fx  boost/floor_flag %.2fx\n",
              r["latency/floor_1line/real_time"], r["latency/floor_flag/real_time"],
              ratio("latency/lull/real_time", "latency/floor_flag/real_time"),
              ratio("latency/boost_spsc/real_time", "latency/floor_flag/real_time"));
  if (!g_rounds[0].empty()) {
    std::printf("  round trip, interleaved (%zu rounds of %dx%d each; medians):",
                g_rounds[0].size(), kSlices, kRoundTripsPerSlice);
    for (int p = 0; p < kNumProtocols; p++)
      std::printf("  %s %.0f ns", kProtocols[p], Median(g_rounds[p]));
    std::printf("\n    same-round ratios: lull/boost %.2fx (target <= 0.7)  lull/xen %.2fx  "
                "lull/floor_flag %.2fx  boost/floor_flag %.2fx  floor_flag/boost %.2fx  "
                "floor_1line/boost %.2fx\n",
                RoundRatio(2, 3), RoundRatio(2, 4), RoundRatio(2, 1), RoundRatio(3, 1),
                RoundRatio(1, 3), RoundRatio(0, 3));
  }
  benchmark::Shutdown();
  return 0;
}
