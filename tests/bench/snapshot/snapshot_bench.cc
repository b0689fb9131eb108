// `make bench-snapshot`: resume of 256 MiB and 2 GiB process-backed guests, side by side:
//   (a) lazy demand paging, one page per fault (userfaultfd, pread per page), from the
//       snapshot a store without prediction writes (pages in address order); also shown
//       on lull's own file ("lazy-lull"), where the kernel's readahead of the predicted
//       layout helps it,
//   (b) eager: read the whole image (io_uring, O_DIRECT), then run,
//   (c) lull: prefetch the predicted critical set (io_uring), run, fill the rest behind.
// The guest's work is a kv store in its memory answering Zipf-distributed queries; the
// "first useful work" is its first --first answers. The critical set is learnt from
// --records lazy restores with other query seeds (REAP's record phase), cut by the
// forecast of a Bitbrains VM's activity when the traces are present. fio reads the same
// snapshot file in the same run (same block size and queue depth, O_DIRECT) for the
// bandwidth reference. The page cache is dropped before every restore (said if not allowed).
// Timings go through Google Benchmark (manual time = time to first useful work); the
// table and the ratios against the targets are printed at the end.
#include <CLI/CLI.hpp>
#include <benchmark/benchmark.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dom0/cli_checks.h"
#include "dom0/snapshot/critical_set.h"
#include "dom0/snapshot/restore.h"
#include "dom0/snapshot/store.h"
#include "dom0/snapshot/uring_reader.h"
#include "dom0/snapshot/workload.h"
#include "forecast/guest_forecaster.h"
#include "forecast/traces.h"

namespace snap = lull::snapshot;
using lull::Status;

namespace {

struct Args {
  std::string dir = "build/snapshot-bench";
  std::vector<uint64_t> sizes_mib = {256, 2048};
  int reps = 3;
  int records = 3;
  uint64_t queries = 20000;
  std::vector<uint64_t> firsts = {200, 2000};  // profiles: startup, serving
  std::string traces = LULL_TRACES_DIR;
  bool keep = false;
  // The pipelined prefetch shares the disk with the guest's demand reads: smaller blocks
  // and the smallest queue depth within 15 % of the best bandwidth keep those fast.
  uint32_t prefetch_block = 128 << 10;
  unsigned prefetch_qd = 0;  // 0: by measurement
  // Critical-set region inference (0: off): the unseen pages of regions the history shows
  // being read at random join the set when they clear the cut (the 256 MiB guest's record
  // heap for 2000 answers, the 2 GiB guest's bucket array for 200; the 2 GiB heap does
  // not clear it). Measured on a quiet machine 2026-11-22: lazy/prefetch 1.69x -> 2.4-2.6x
  // for 256 MiB / 2000 answers, about the same elsewhere.
  uint64_t region_pages = 1024;
  unsigned decoders = 2;     // threads checking and installing the stream's pages
  int decoder_nice = snap::RestoreOptions{}.decoder_nice;  // how much nicer than the reader
  double start_fraction = 0;  // "prefetch": the guest starts once this much of the stream is in
  bool touch_layout = true;  // critical set laid out in expected first-touch order (else address)
};

bool g_drop_ok = true;

void DropCaches() {
  ::sync();
  std::ofstream f("/proc/sys/vm/drop_caches");
  if (!(f << "3\n") || !f.flush()) g_drop_ok = false;
}

[[noreturn]] void Die(const std::string& what, const Status& s) {
  std::fprintf(stderr, "lull-bench-snapshot: %s: %s\n", what.c_str(), s.ToString().c_str());
  std::exit(1);
}

struct Fio {
  double mib_s = 0;
  double lat_us = 0;  // mean latency of one read, submission to completion
  bool ok = false;
  std::string error;
};

// fio's sequential read of [0, size) of `path`, O_DIRECT, io_uring.
// With `random`: 4 KiB random reads one at a time (the device's latency for a page that
// no prediction covered), 2000 of them.
Fio RunFio(const std::string& path, uint64_t size, uint64_t bs, unsigned qd, bool random = false) {
  Fio r;
  const std::string cmd = std::string("fio --name=") + (random ? "rand" : "seq") +
                          " --filename=" + path + " --readonly --rw=" +
                          (random ? "randread --number_ios=2000" : "read") + " --bs=" +
                          std::to_string(bs) + " --direct=1 --ioengine=io_uring --iodepth=" +
                          std::to_string(qd) + " --size=" + std::to_string(size) +
                          " --output-format=json 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) {
    r.error = "cannot run fio";
    return r;
  }
  std::string out;
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof(buf), p)) out.append(buf, n);
  const int rc = ::pclose(p);
  auto j = nlohmann::json::parse(out.substr(std::min(out.find('{'), out.size())), nullptr, false);
  if (rc != 0 || j.is_discarded() || !j.contains("jobs")) {
    r.error = "fio failed (is the Debian package fio installed?): " + out.substr(0, 200);
    return r;
  }
  r.mib_s = j["jobs"][0]["read"]["bw_bytes"].get<double>() / (1 << 20);
  r.lat_us = j["jobs"][0]["read"]["lat_ns"]["mean"].get<double>() / 1e3;
  r.ok = true;
  return r;
}

// What is measured: the three modes, and the prefetch with the guest started only after
// the whole prefetch (not pipelined), to show what the pipelining buys.
enum class V { kLazy, kLazyLull, kEager, kPrefetch, kSerial };
const char* VName(V v) {
  switch (v) {
    case V::kLazy: return "lazy";
    case V::kLazyLull: return "lazy-lull";
    case V::kEager: return "eager";
    case V::kPrefetch: return "prefetch";
    case V::kSerial: return "pf-serial";
  }
  return "?";
}
snap::RestoreMode ModeOf(V v) {
  return v == V::kLazy || v == V::kLazyLull ? snap::RestoreMode::kLazy
         : v == V::kEager ? snap::RestoreMode::kEager : snap::RestoreMode::kPrefetch;
}

struct Sample {
  double start = 0, early_faults = 0, early_reads = 0, read_us = 0;
  double first = 0, resident = 0, mib_read = 0, faults = 0, pre_mib_s = 0, pre_mib = 0;
};

struct Case {
  uint64_t mib = 0;
  uint64_t first = 0;  // answers that make the first useful work
  double t_fault = 0, min_probability = 0;
  std::string dir, file;
  std::unique_ptr<snap::SnapshotChain> chain;
  // The same memory as a store without prediction writes it: pages in address order, the
  // lazy baseline's file (and the record phase's).
  std::unique_ptr<snap::SnapshotChain> plain;
  snap::CriticalSet cs;
  bool forecast_used = false;
  double forecast_p90 = 0;
  unsigned qd = 8;         // eager reads: 1 MiB blocks
  unsigned pre_qd = 8;     // the prefetch stream: Args::prefetch_block blocks
  std::vector<snap::QdMeasurement> qd_table, pre_qd_table;
  uint64_t record_pages = 0;
  Fio fio_full, fio_crit, fio_rand;
  uint64_t crit_bytes = 0, file_bytes = 0;
  uint64_t crit_chunks = 0, crit_lz4 = 0;  // the critical region's codec (store.h's rule)
  double crit_read_mib_s = 0, decode_us = 0;
  std::map<V, std::vector<Sample>> samples;
};

snap::GuestFn KvGuest(const Args& a, uint64_t first, uint64_t seed, snap::KvResult* res) {
  return [&a, first, seed, res](snap::GuestContext& ctx) {
    return snap::KvQuery(ctx.mem(), ctx.bytes(), a.queries, 0.99, seed, first,
                         [&] { ctx.MarkUsefulWork(); }, res);
  };
}

// The activity a Bitbrains VM's forecaster predicts after "resume", and the activity it
// had at the record restores (three earlier steps). False when the traces are absent.
bool ForecastActivity(const Args& a, std::vector<double>* recorded,
                      lull::forecast::Distribution* next) {
  const std::string f = a.traces + "/bitbrains_rnd/2013-8/105.csv";
  if (!std::filesystem::exists(f)) return false;
  lull::forecast::Series cpu, mem;
  if (!lull::forecast::LoadBitbrainsFile(f, &cpu, &mem, nullptr).ok()) return false;
  lull::forecast::GuestForecaster g;
  const size_t n = std::min<size_t>(cpu.values.size(), 1500);
  for (size_t i = 0; i < n; ++i) {
    if (!g.observe(cpu.values[i], mem.values[i]).ok()) return false;
    if (i + 1 == n - 300 || i + 1 == n - 200 || i + 1 == n - 100) {
      const double v = cpu.values[i];
      recorded->push_back(std::isnan(v) ? 0.0 : std::min(1.0, v));
    }
  }
  *next = g.forecast_cpu(1);
  return true;
}

void Setup(const Args& a, Case* c) {
  const uint64_t pages = c->mib << 8;
  std::printf("== guest %llu MiB, first work = %llu answers: building the kv store, "
              "snapshot, %d record restores\n", static_cast<unsigned long long>(c->mib),
              static_cast<unsigned long long>(c->first), a.records);
  std::fflush(stdout);
  void* m = ::mmap(nullptr, pages * snap::kPageBytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) Die("mmap", Status::Unavailable("out of memory"));
  auto* mem = static_cast<uint8_t*>(m);
  snap::KvConfig kc;
  if (Status s = snap::KvBuild(mem, pages * snap::kPageBytes, kc, nullptr); !s.ok()) Die("build", s);
  c->dir = a.dir + "/guest-" + std::to_string(c->mib) + "-" + std::to_string(c->first);
  std::filesystem::remove_all(c->dir);
  std::filesystem::remove_all(c->dir + "-plain");
  std::filesystem::create_directories(c->dir);
  snap::WriteReport wr;
  if (Status s = snap::WriteSnapshot(c->dir + "-plain", mem, pages, {}, &wr); !s.ok()) {
    Die("snapshot", s);
  }

  // Record: lazy restores with other query seeds; the trace up to the first useful work.
  std::vector<double> recorded;
  lull::forecast::Distribution next;
  c->forecast_used = ForecastActivity(a, &recorded, &next);
  c->forecast_p90 = next.p90;
  if (Status s = snap::SnapshotChain::Open(wr.path, &c->plain); !s.ok()) Die("open", s);
  const snap::SnapshotChain* chain = c->plain.get();
  std::vector<snap::TouchTrace> traces;
  double t_first = 0;
  uint64_t n_faults = 0;
  for (int r = 0; r < a.records; ++r) {
    snap::RestoreOptions o;
    o.mode = snap::RestoreMode::kLazy;
    o.record_only = true;
    snap::KvResult kv;
    std::unique_ptr<snap::GuestMemory> out;
    snap::RestoreReport rep;
    DropCaches();
    if (Status s = snap::Restore(*chain, o,
                                 KvGuest(a, c->first, 100 + static_cast<uint64_t>(r), &kv), &out,
                                 &rep); !s.ok()) {
      Die("record restore", s);
    }
    t_first += rep.t_first_work;
    n_faults += rep.faults_before_first_work;
    snap::TouchTrace t;
    t.pages.assign(rep.first_touch.begin(),
                   rep.first_touch.begin() + static_cast<ptrdiff_t>(rep.faults_before_first_work));
    t.activity = c->forecast_used ? recorded[static_cast<size_t>(r) % recorded.size()] : -1;
    c->record_pages += t.pages.size();
    traces.push_back(std::move(t));
  }
  c->record_pages /= static_cast<uint64_t>(std::max(1, a.records));
  // Break-even probability of prefetching a page: its read-ahead cost over the cost of a
  // fault (from the records). The read-ahead cost is the page's share of the stream, bound
  // by the disk (a page's mean stored bytes in the plain snapshot at fio's sequential
  // bandwidth) or by the decoders (LZ4 decode of the touched pages, as measured, shared
  // by the decoder threads), whichever is slower; 4 KiB at fio's bandwidth if LZ4 would
  // not pay (store.h's codec rule).
  const Fio fio0 = RunFio(wr.path, snap::AlignDown(wr.file_bytes), 1 << 20, 8);
  c->t_fault = n_faults ? t_first / static_cast<double>(n_faults) : 1e-4;
  std::vector<uint64_t> touched;
  for (const auto& t : traces) touched.insert(touched.end(), t.pages.begin(), t.pages.end());
  const double decode_s = snap::MeasureLz4DecodeUs(mem, touched) * 1e-6 / std::max(1u, a.decoders);
  const double stored = wr.chunks_written
                            ? static_cast<double>(wr.file_bytes) / static_cast<double>(wr.chunks_written)
                            : snap::kPageBytes;
  double t_read = 4e-6;
  if (fio0.ok) {
    const double bw = fio0.mib_s * (1 << 20);
    t_read = std::min(snap::kPageBytes / bw, std::max(stored / bw, decode_s));
  }
  snap::CriticalSetOptions co;
  co.min_probability = std::clamp(t_read / c->t_fault, 0.01, 1.0);
  co.region_pages = a.region_pages;
  c->min_probability = co.min_probability;
  if (Status s = snap::PredictCriticalSet(traces, c->forecast_used ? &next : nullptr, pages, co,
                                          &c->cs); !s.ok()) {
    Die("predict", s);
  }
  // The snapshot lull keeps: the critical set laid out first.
  snap::WriteOptions wo;
  // The guest runs while the prefetch streams (pipelined), so the cut is laid out in
  // expected first-touch order: the stream delivers pages about when they are needed.
  wo.critical = c->cs.touch_order;
  if (!a.touch_layout) std::sort(wo.critical.begin(), wo.critical.end());
  wo.force_base = true;
  // LZ4 on the critical path only where the read it saves beats the decode (store.h),
  // with this file system's bandwidth as fio measured it above.
  wo.critical_read_mib_s = fio0.ok ? fio0.mib_s : 0;
  wo.critical_decoders = a.decoders;
  if (Status s = snap::WriteSnapshot(c->dir, mem, pages, wo, &wr); !s.ok()) Die("snapshot", s);
  ::munmap(mem, pages * snap::kPageBytes);
  c->file = wr.path;
  if (Status s = snap::SnapshotChain::Open(c->file, &c->chain); !s.ok()) Die("open", s);
  c->crit_bytes = c->chain->file(0).header.critical_bytes;
  c->crit_chunks = wr.critical_chunks;
  c->crit_lz4 = wr.critical_lz4;
  c->crit_read_mib_s = wo.critical_read_mib_s;
  c->decode_us = wr.critical_decode_us;
  c->file_bytes = wr.file_bytes;

  // Queue depth by measurement, then fio on the same file with the same geometry.
  if (Status s = snap::CalibrateQueueDepth(c->file, 64 << 20, 1 << 20, &c->qd, &c->qd_table);
      !s.ok()) {
    Die("calibrate", s);
  }
  if (Status s = snap::CalibrateQueueDepth(c->file, 64 << 20, a.prefetch_block, &c->pre_qd,
                                           &c->pre_qd_table, 0.15);
      !s.ok()) {
    Die("calibrate", s);
  }
  if (a.prefetch_qd) c->pre_qd = a.prefetch_qd;
  c->fio_full = RunFio(c->file, snap::AlignDown(c->file_bytes), 1 << 20, c->qd);
  // The prefetch's own geometry: same bytes, block size and queue depth.
  c->fio_crit = RunFio(c->file, snap::AlignUp(c->crit_bytes + snap::kHeaderBytes),
                       a.prefetch_block, c->pre_qd);
  DropCaches();
  c->fio_rand = RunFio(c->file, snap::AlignDown(c->file_bytes), snap::kPageBytes, 1, true);
}

void RunMode(benchmark::State& st, const Args* a, Case* c, V v) {
  const snap::RestoreMode mode = ModeOf(v);
  int iter = 0;
  for (auto _ : st) {
    DropCaches();
    snap::RestoreOptions o;
    o.mode = mode;
    o.prefetch_pages = c->cs.cut;
    o.uring.queue_depth = c->qd;
    o.decoders = a->decoders;
    o.decoder_nice = a->decoder_nice;
    if (mode == snap::RestoreMode::kPrefetch) {
      o.uring.queue_depth = c->pre_qd;
      o.uring.block_bytes = a->prefetch_block;
    }
    if (v == V::kSerial) o.start_pages = UINT64_MAX;
    if (v == V::kPrefetch) {
      o.start_pages = static_cast<uint64_t>(a->start_fraction * static_cast<double>(c->cs.cut));
    }
    snap::KvResult kv;
    std::unique_ptr<snap::GuestMemory> out;
    snap::RestoreReport rep;
    // The same query seeds for every mode, none of them seen by the record phase.
    Status s = snap::Restore(v == V::kLazy ? *c->plain : *c->chain, o,
                             KvGuest(*a, c->first, 900 + static_cast<uint64_t>(iter++), &kv),
                             &out, &rep);
    if (!s.ok()) {
      st.SkipWithError(s.ToString().c_str());
      return;
    }
    if (kv.found != a->queries) st.SkipWithError("the guest lost records");
    st.SetIterationTime(rep.t_first_work);
    Sample x;
    x.first = rep.t_first_work;
    x.start = rep.t_guest_start;
    x.early_faults = static_cast<double>(rep.faults_before_first_work);
    x.early_reads = static_cast<double>(rep.fault_reads_before_first_work);
    x.resident = rep.t_resident;
    x.mib_read = static_cast<double>(rep.bytes_read) / (1 << 20);
    x.faults = static_cast<double>(rep.faults);
    x.pre_mib = static_cast<double>(rep.prefetch_bytes) / (1 << 20);
    x.pre_mib_s = rep.prefetch_seconds > 0 ? x.pre_mib / rep.prefetch_seconds : 0;
    x.read_us = rep.fault_reads_before_first_work
                    ? rep.fault_read_seconds * 1e6 /
                          static_cast<double>(rep.fault_reads_before_first_work)
                    : 0;
    c->samples[v].push_back(x);
  }
  const auto& xs = c->samples[v];
  double res = 0, mib = 0, f = 0;
  for (const auto& x : xs) {
    res += x.resident;
    mib += x.mib_read;
    f += x.faults;
  }
  const double n = static_cast<double>(std::max<size_t>(1, xs.size()));
  st.counters["resident_s"] = res / n;
  st.counters["MiB_read"] = mib / n;
  st.counters["faults"] = f / n;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void Report(const Args& a, const Case& c) {
  using M = V;
  auto med = [&](M m, double Sample::*f) {
    std::vector<double> v;
    if (auto it = c.samples.find(m); it != c.samples.end()) {
      for (const auto& x : it->second) v.push_back(x.*f);
    }
    return Median(v);
  };
  std::printf("\n== guest %llu MiB, first useful work = first %llu answers: snapshot %.1f MiB, "
              "critical region %.2f MiB (%llu pages of %zu ranked, confidence %.2f; record "
              "phase touched %llu pages before first work)\n",
              static_cast<unsigned long long>(c.mib), static_cast<unsigned long long>(c.first),
              static_cast<double>(c.file_bytes) / (1 << 20),
              static_cast<double>(c.crit_bytes) / (1 << 20),
              static_cast<unsigned long long>(c.cs.cut), c.cs.ranked.size(), c.cs.confidence,
              static_cast<unsigned long long>(c.record_pages));
  std::printf("   forecast: %s\n", c.forecast_used
                                       ? ("Bitbrains VM 105, CPU p90 after resume " +
                                          std::to_string(c.forecast_p90)).c_str()
                                       : "none (traces absent): set size from the traces only");
  std::printf("   fault cost %.1f us (records), break-even touch probability %.3f\n",
              c.t_fault * 1e6, c.min_probability);
  std::printf("   critical region codec: %llu of %llu chunks LZ4 (saved read at fio's %.0f MiB/s "
              "vs LZ4 decode %.2f us a page on %u decoders)\n",
              static_cast<unsigned long long>(c.crit_lz4),
              static_cast<unsigned long long>(c.crit_chunks), c.crit_read_mib_s, c.decode_us,
              a.decoders);
  std::printf("   decoders: %u threads, nice +%d relative to the stream's reader\n", a.decoders,
              a.decoder_nice);
  std::printf("   queue depth by measurement, 1 MiB blocks (eager): %u  (", c.qd);
  for (const auto& q : c.qd_table) std::printf("qd%u %.0f ", q.queue_depth, q.mib_per_s);
  std::printf("MiB/s)\n");
  std::printf("   prefetch stream, %u KiB blocks: qd %u  (", a.prefetch_block >> 10, c.pre_qd);
  for (const auto& q : c.pre_qd_table) std::printf("qd%u %.0f ", q.queue_depth, q.mib_per_s);
  std::printf("MiB/s)\n");
  std::printf("   %-9s %12s %12s %12s %10s %10s %13s %12s %11s %14s\n", "mode",
              "guest start", "first work s", "resident s", "MiB read", "faults",
              "faults<first", "reads<first", "us/read<1st", "prefetch MiB/s");
  for (M m : {M::kLazy, M::kLazyLull, M::kEager, M::kPrefetch, M::kSerial}) {
    std::printf("   %-9s %12.4f %12.4f %12.4f %10.1f %10.0f %13.0f %12.0f %11.1f %14.1f\n",
                VName(m), med(m, &Sample::start), med(m, &Sample::first),
                med(m, &Sample::resident), med(m, &Sample::mib_read), med(m, &Sample::faults),
                med(m, &Sample::early_faults), med(m, &Sample::early_reads),
                med(m, &Sample::read_us), m == M::kLazy ? 0.0 : med(m, &Sample::pre_mib_s));
  }
  // The spread: every repetition's time to first work.
  for (M m : {M::kLazy, M::kLazyLull, M::kEager, M::kPrefetch, M::kSerial}) {
    std::printf("   %-9s first work, each run:", VName(m));
    if (auto it = c.samples.find(m); it != c.samples.end()) {
      for (const auto& x : it->second) std::printf(" %.4f", x.first);
    }
    std::printf("\n");
  }
  const double pre = med(M::kPrefetch, &Sample::first);
  const double lazy_ratio = pre > 0 ? med(M::kLazy, &Sample::first) / pre : 0;
  const double eager_ratio = pre > 0 ? med(M::kEager, &Sample::first) / pre : 0;
  std::printf("   ratio lazy/prefetch time to first work:  %.2fx  (target >= 3.7x)  %s\n",
              lazy_ratio, lazy_ratio >= 3.7 ? "MET" : "NOT MET");
  std::printf("   ratio lazy-lull/prefetch:                %.2fx  (lazy paging of lull's file, "
              "whose layout the kernel's readahead follows)\n",
              pre > 0 ? med(M::kLazyLull, &Sample::first) / pre : 0);
  std::printf("   ratio eager/prefetch time to first work: %.2fx  (target > 1)      %s\n",
              eager_ratio, eager_ratio > 1 ? "MET" : "NOT MET");
  const double serial = med(M::kSerial, &Sample::first);
  std::printf("   ratio lazy/pf-serial time to first work: %.2fx  (prefetch before the guest runs)\n",
              serial > 0 ? med(M::kLazy, &Sample::first) / serial : 0);
  // The ceiling with this prediction: the guest is one vCPU, so each page it touches before
  // its first work that the critical set did not hold (pf-serial's faults: the whole set
  // was in before it ran) costs at least one device random read, one after another.
  if (c.fio_rand.ok) {
    const double misses = med(M::kSerial, &Sample::early_faults);
    const double floor_s = misses * c.fio_rand.lat_us * 1e-6;
    if (floor_s <= 0) {
      std::printf("   ceiling of lazy/prefetch with this critical set: none (it missed no page "
                  "before the first work)\n");
    } else {
      std::printf("   ceiling of lazy/prefetch with this critical set: %.2fx  (lazy %.4f s / (%.0f "
                  "pages it missed x %.1f us, fio's 4 KiB random read at qd 1))\n",
                  med(M::kLazy, &Sample::first) / floor_s, med(M::kLazy, &Sample::first), misses,
                  c.fio_rand.lat_us);
    }
  }
  const double pbw = med(M::kPrefetch, &Sample::pre_mib_s);
  const double ebw = med(M::kEager, &Sample::pre_mib_s);
  if (c.fio_full.ok && c.fio_crit.ok) {
    std::printf("   fio sequential read, same file, O_DIRECT, io_uring: whole file (bs 1 MiB, qd %u) "
                "%.1f MiB/s; critical-region bytes (bs %u KiB, qd %u, as the prefetch) %.1f MiB/s\n",
                c.qd, c.fio_full.mib_s, a.prefetch_block >> 10, c.pre_qd, c.fio_crit.mib_s);
    std::printf("   ratio prefetch / fio (same bytes):        %.2f  (target >= 0.80)  %s\n",
                pbw / c.fio_crit.mib_s, pbw >= 0.8 * c.fio_crit.mib_s ? "MET" : "NOT MET");
    const double sbw = med(M::kSerial, &Sample::pre_mib_s);
    std::printf("   ratio pf-serial / fio (same bytes):       %.2f  (the stream alone on the disk)\n",
                sbw / c.fio_crit.mib_s);
    std::printf("   ratio eager io_uring read / fio (whole):  %.2f\n", ebw / c.fio_full.mib_s);
  } else {
    std::printf("   fio: %s\n", c.fio_full.error.c_str());
  }
}

// Bad values are refused by name, with the range (exit 2), before anything is built.
Args Parse(int argc, char** argv) {
  Args a;
  std::string layout = "touch";
  uint32_t block_kib = a.prefetch_block >> 10;
  CLI::App app{"lull-bench-snapshot: lazy vs eager vs lull's prefetch restores (make bench-snapshot)"};
  app.add_option("--dir", a.dir, "where the snapshots are written (this run's files are deleted at the end)");
  app.add_option("--sizes", a.sizes_mib, "guest sizes in MiB, e.g. 256,2048")
      ->delimiter(',')->check(CLI::Range(uint64_t{1}, uint64_t{1} << 20));
  app.add_option("--reps", a.reps, "restores per mode")->check(CLI::Range(1, 1000));
  app.add_option("--records", a.records, "lazy restores recorded before the prediction")
      ->check(CLI::Range(1, 100));
  app.add_option("--first", a.firsts, "answers that make the first useful work, e.g. 200,2000")
      ->delimiter(',')->check(CLI::Range(uint64_t{1}, a.queries));
  app.add_option("--traces", a.traces, "the shared traces directory");
  app.add_flag("--keep", a.keep, "keep the snapshot files");
  app.add_option("--prefetch-block-kib", block_kib, "the prefetch stream's block")
      ->check(CLI::Range(4u, 65536u));
  app.add_option("--prefetch-qd", a.prefetch_qd, "the stream's queue depth (0: by measurement)")
      ->check(CLI::Range(0u, 256u));
  app.add_option("--region-pages", a.region_pages, "region inference's region (0: off)")
      ->check(CLI::Range(uint64_t{0}, uint64_t{1} << 32));
  app.add_option("--decoders", a.decoders, "threads installing the stream's pages")
      ->check(CLI::Range(1u, 64u));
  app.add_option("--decoder-nice", a.decoder_nice,
                 "how much nicer than the stream's reader its decoders run (0: as the reader)")
      ->check(CLI::Range(0, 39));
  app.add_option("--start-fraction", a.start_fraction,
                 "the pipelined guest starts once this share of the stream is in")
      ->check(lull::dom0::FiniteRange(0, 1));  // CLI::Range lets nan through
  app.add_option("--layout", layout, "critical set in expected first-touch or address order")
      ->check(CLI::IsMember({"touch", "address"}));
  try {
    app.parse(argc, argv);  // benchmark::Initialize took the --benchmark_* flags out
  } catch (const CLI::ParseError& e) {
    std::exit(app.exit(e) == 0 ? 0 : 2);  // --help is 0; any usage error is 2
  }
  if (block_kib % 4 != 0) {
    std::fprintf(stderr, "lull-bench-snapshot: --prefetch-block-kib must be a multiple of 4, "
                 "got %u\n", block_kib);
    std::exit(2);
  }
  a.prefetch_block = block_kib << 10;
  a.touch_layout = layout == "touch";
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  const Args a = Parse(argc, argv);
  const bool dir_created = !std::filesystem::exists(a.dir);
  std::vector<std::unique_ptr<Case>> cases;
  for (uint64_t mib : a.sizes_mib) {
   for (uint64_t first : a.firsts) {
    auto c = std::make_unique<Case>();
    c->mib = mib;
    c->first = first;
    Setup(a, c.get());
    for (V m : {V::kLazy, V::kLazyLull, V::kEager, V::kPrefetch, V::kSerial}) {
      benchmark::RegisterBenchmark(
          ("restore/" + std::to_string(mib) + "MiB/first" + std::to_string(first) + "/" +
           VName(m)).c_str(),
          RunMode, &a, c.get(), m)
          ->UseManualTime()
          ->Iterations(a.reps)
          ->Unit(benchmark::kMillisecond);
    }
    cases.push_back(std::move(c));
   }
  }
  benchmark::RunSpecifiedBenchmarks();
  for (const auto& c : cases) Report(a, *c);
  std::printf("\npage cache: %s\n", g_drop_ok ? "dropped before every restore (cold cache)"
                                              : "NOT dropped (no permission to write "
                                                "/proc/sys/vm/drop_caches): warm-cache numbers");
  // Only what this run wrote is deleted: --dir may name a folder that holds other files.
  if (!a.keep) {
    std::error_code ec;
    for (const auto& c : cases) {
      std::filesystem::remove_all(c->dir, ec);
      std::filesystem::remove_all(c->dir + "-plain", ec);
    }
    if (dir_created) std::filesystem::remove(a.dir, ec);  // if now empty
  }
  benchmark::Shutdown();
  return 0;
}
