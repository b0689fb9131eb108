#include "dom0/migrate/source.h"

#include <time.h>
#include <xxhash.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "dom0/migrate/clock.h"
#include "dom0/migrate/page_sender.h"
#include "dom0/migrate/wire.h"

namespace lull::migrate {

namespace {

double CpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

constexpr size_t kBatchBytes = 256 << 10;

class Source {
 public:
  Source(GuestMemory* g, const MigrateOptions& o, MigrateStats* st)
      : g_(g), o_(o), st_(st),
        sender_(g->pages(), g->page_size(), o.xbzrle, o.lz4, o.lz4_acceleration,
                o.xbzrle_cache_bytes) {}

  lull::Status Run(const std::string& host, uint16_t port) {
    t0_ = MonoMs();
    Report("connect", 0, 0);
    if (auto s = Conn::Connect(host, port, o_.io_timeout_ms, &c_); !s.ok()) return s;
    c_.SetRateLimit(o_.rate_limit_bytes_per_s);
    lull::Status s = Body();
    if (!s.ok()) Rollback(s);
    st_->total_ms = MonoMs() - t0_;
    st_->wire_bytes = c_.bytes_sent() + c_.bytes_received();
    return s;
  }

 private:
  void Report(const char* phase, int round, uint64_t dirty) {
    if (!o_.progress) return;
    Progress p;
    p.phase = phase;
    p.round = round;
    p.dirty_pages = dirty;
    p.pages_sent = st_->pages_sent;
    p.wire_bytes = c_.bytes_sent() + c_.bytes_received();
    p.elapsed_ms = MonoMs() - t0_;
    o_.progress(p);
  }

  void Rollback(const lull::Status& why) {
    if (paused_) {
      g_->Resume();  // the guest keeps running here; nothing was released
      paused_ = false;
    }
    if (c_.open()) {
      Writer w;
      PutStatus(&w, why);
      c_.SetTimeout(500);
      c_.Send(Msg::kAbort, w);  // best effort: the target also frees on a lost connection
      c_.Close();
    }
  }

  // Sends `pages` in PAGES messages; returns the wire bytes they took.
  lull::Status SendPages(const std::vector<uint32_t>& pages, uint64_t* nonzero_pages,
                         uint64_t* nonzero_bytes) {
    const uint8_t* mem = g_->data();
    batch_.clear();
    double cpu0 = CpuSeconds();
    for (uint32_t p : pages) {
      size_t before = batch_.size();
      PageEncoding e = sender_.Encode(mem, p, &batch_);
      st_->pages_by_encoding[static_cast<int>(e)]++;
      st_->pages_sent++;
      if (e != PageEncoding::kZero) {
        ++*nonzero_pages;
        *nonzero_bytes += batch_.size() - before;
      }
      if (batch_.size() >= kBatchBytes) {
        st_->encode_seconds += CpuSeconds() - cpu0;
        if (auto s = c_.Send(Msg::kPages, batch_.data(), batch_.size()); !s.ok()) return s;
        cpu0 = CpuSeconds();
        batch_.clear();
      }
    }
    st_->encode_seconds += CpuSeconds() - cpu0;
    if (!batch_.empty()) return c_.Send(Msg::kPages, batch_.data(), batch_.size());
    return lull::Status::Ok();
  }

  lull::Status Body() {
    Writer hello;
    hello.U64(g_->pages());
    hello.U32(static_cast<uint32_t>(g_->page_size()));
    hello.U32((o_.xbzrle ? kHelloFlagXbzrle : 0) | (o_.lz4 ? kHelloFlagLz4 : 0) |
              (o_.plan ? kHelloFlagPlan : 0));
    hello.U64(o_.reservation);
    hello.Str(g_->Describe());
    if (o_.plan) PutPlan(&hello, *o_.plan);
    if (auto s = c_.Send(Msg::kHello, hello); !s.ok()) return s;
    std::vector<uint8_t> in;
    if (auto s = c_.Expect(Msg::kHelloAck, &in); !s.ok()) return s;
    {
      Reader r(in.data(), in.size());
      if (auto s = GetStatus(&r); !s.ok()) return s;  // e.g. target out of memory
    }

    std::vector<uint32_t> dirty;
    double bw = 0;             // bytes per ms, measured in the last round
    double bytes_per_page = 0; // wire bytes per non-zero page, last round
    for (int round = 0;; ++round) {
      if (auto s = g_->CollectDirty(&dirty); !s.ok()) return s;
      if (round == 0) {
        // Everything goes in the bulk round, whatever an earlier user of the tracking
        // (a monitor measuring the dirty rate) already consumed; this scan only re-arms.
        dirty.resize(g_->pages());
        for (size_t i = 0; i < dirty.size(); ++i) dirty[i] = static_cast<uint32_t>(i);
      } else {
        double est_ms = bw > 0 ? double(dirty.size()) * bytes_per_page / bw : 0;
        if (est_ms <= o_.max_downtime_ms) {
          st_->converged = true;
          break;
        }
        double elapsed_s = (MonoMs() - t0_) / 1e3;
        if (round >= o_.max_rounds || elapsed_s >= o_.max_seconds) {
          if (o_.force_stop_copy) break;
          char buf[256];
          std::snprintf(buf, sizeof buf,
                        "pre-copy did not converge: %zu pages still dirty after %d rounds "
                        "(%.1f s); estimated stop-and-copy %.0f ms > max downtime %.0f ms",
                        dirty.size(), round, elapsed_s, est_ms, o_.max_downtime_ms);
          return lull::Status::Unavailable(buf);
        }
      }
      Report("precopy", round, dirty.size());
      double t = MonoMs();
      uint64_t w0 = c_.bytes_sent(), nzp = 0, nzb = 0;
      if (auto s = SendPages(dirty, &nzp, &nzb); !s.ok()) return s;
      double ms = std::max(MonoMs() - t, 0.001);
      uint64_t sent = c_.bytes_sent() - w0;
      // Throughput only means something for a round long enough to fill the pipe.
      if (sent > (1u << 20) || bw == 0) bw = double(sent) / ms;
      bytes_per_page = nzp ? double(nzb) / double(nzp) : std::max(bytes_per_page, 8.0);
      st_->rounds = round + 1;
    }

    // Stop and copy.
    double tp = MonoMs();
    if (auto s = g_->Pause(); !s.ok()) return s;
    paused_ = true;
    // The pages found by the last scan were not sent yet (that scan re-armed them):
    // send them with whatever was written since.
    std::vector<uint32_t> more;
    if (auto s = g_->CollectDirty(&more); !s.ok()) return s;
    dirty.insert(dirty.end(), more.begin(), more.end());
    std::sort(dirty.begin(), dirty.end());
    dirty.erase(std::unique(dirty.begin(), dirty.end()), dirty.end());
    Report("stop-copy", st_->rounds, dirty.size());
    st_->stop_copy_pages = dirty.size();
    uint64_t nzp = 0, nzb = 0;
    if (auto s = SendPages(dirty, &nzp, &nzb); !s.ok()) return s;
    Writer done;
    done.U64(sender_.Checksum());
    done.U64(o_.verify_memory ? XXH3_64bits(g_->data(), g_->pages() * g_->page_size()) : 0);
    if (auto s = c_.Send(Msg::kStopCopyDone, done); !s.ok()) return s;
    Report("verify", st_->rounds, 0);
    if (auto s = c_.Expect(Msg::kVerified, &in); !s.ok()) return s;
    {
      Reader r(in.data(), in.size());
      if (auto s = GetStatus(&r); !s.ok()) return s;  // checksum mismatch, guest failed
    }
    st_->downtime_ms = MonoMs() - tp;
    if (auto s = c_.Send(Msg::kCommit, nullptr, 0); !s.ok()) return s;
    if (auto s = c_.Expect(Msg::kCommitted, &in); !s.ok()) {
      // Without the acknowledgement we cannot know whether the target kept the guest:
      // keeping ours running risks two copies, releasing it risks none; we keep it.
      return lull::Status::Unavailable("commit not acknowledged (" + s.ToString() +
                                       "); the guest keeps running on the source and the "
                                       "target may hold a copy");
    }
    paused_ = false;
    g_->Release();
    Report("committed", st_->rounds, 0);
    if (o_.redirect) {
      if (auto s = o_.redirect(); !s.ok()) st_->redirect_error = s.ToString();
    }
    return lull::Status::Ok();
  }

  GuestMemory* g_;
  const MigrateOptions& o_;
  MigrateStats* st_;
  PageSender sender_;
  Conn c_;
  std::vector<uint8_t> batch_;
  bool paused_ = false;
  double t0_ = 0;
};

lull::Status Roundtrip(const std::string& host, uint16_t port, Msg type, Writer& w, Msg reply,
                       std::vector<uint8_t>* in) {
  Conn c;
  if (auto s = Conn::Connect(host, port, 10000, &c); !s.ok()) return s;
  if (auto s = c.Send(type, w); !s.ok()) return s;
  if (auto s = c.Expect(reply, in); !s.ok()) return s;
  return lull::Status::Ok();
}

}  // namespace

std::string MigrateStats::ToString() const {
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "total %.0f ms, downtime %.1f ms, %.1f MiB on the wire, %d rounds%s, %llu pages "
                "(raw %llu, zero %llu, xbzrle %llu, lz4 %llu), stop-copy %llu pages, "
                "encode %.2f s CPU",
                total_ms, downtime_ms, double(wire_bytes) / (1 << 20), rounds,
                converged ? "" : " (not converged)", (unsigned long long)pages_sent,
                (unsigned long long)pages_by_encoding[0], (unsigned long long)pages_by_encoding[1],
                (unsigned long long)pages_by_encoding[2], (unsigned long long)pages_by_encoding[3],
                (unsigned long long)stop_copy_pages, encode_seconds);
  return buf;
}

lull::Status Migrate(GuestMemory* guest, const std::string& host, uint16_t port,
                     const MigrateOptions& opt, MigrateStats* stats) {
  *stats = MigrateStats();
  if (!guest || guest->pages() == 0)
    return lull::Status::InvalidArgument("migrate: no guest memory");
  if (guest->pages() > UINT32_MAX)
    return lull::Status::InvalidArgument("migrate: guest has more than 2^32 pages");
  Source s(guest, opt, stats);
  return s.Run(host, port);
}

lull::Status Reserve(const std::string& host, uint16_t port, uint64_t bytes, uint32_t ttl_ms,
                     uint64_t* id) {
  Writer w;
  w.U64(bytes);
  w.U32(ttl_ms);
  std::vector<uint8_t> in;
  if (auto s = Roundtrip(host, port, Msg::kReserve, w, Msg::kReserved, &in); !s.ok()) return s;
  Reader r(in.data(), in.size());
  if (auto s = GetStatus(&r); !s.ok()) return s;
  *id = r.U64();
  if (!r.ok()) return lull::Status::Corruption("RESERVED without an id");
  return lull::Status::Ok();
}

lull::Status ReleaseReservation(const std::string& host, uint16_t port, uint64_t id) {
  Writer w;
  w.U64(id);
  std::vector<uint8_t> in;
  if (auto s = Roundtrip(host, port, Msg::kRelease, w, Msg::kReleased, &in); !s.ok()) return s;
  Reader r(in.data(), in.size());
  return GetStatus(&r);
}

}  // namespace lull::migrate
