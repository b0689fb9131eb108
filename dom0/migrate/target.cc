#include "dom0/migrate/target.h"

#include <time.h>
#include <xxhash.h>

#include <cstring>

#include "dom0/migrate/clock.h"
#include "dom0/migrate/codec.h"

namespace lull::migrate {

namespace {

std::string Mib(uint64_t b) { return std::to_string(b >> 20) + " MiB"; }

}  // namespace

lull::Status MigrationServer::Start(GuestFactory* factory, const ServerOptions& opt,
                                    std::unique_ptr<MigrationServer>* out) {
  if (!factory) return lull::Status::InvalidArgument("migration server: no guest factory");
  std::unique_ptr<MigrationServer> s(new MigrationServer(factory, opt));
  if (auto st = Listener::Listen(opt.bind, opt.port, &s->listener_); !st.ok()) return st;
  s->port_ = s->listener_.port();
  s->thread_ = std::thread([p = s.get()] { p->Loop(); });
  *out = std::move(s);
  return lull::Status::Ok();
}

MigrationServer::~MigrationServer() { Stop(); }

void MigrationServer::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  listener_.Close();
  provisioned_.clear();  // the guests keep running, without our limits
  std::lock_guard<std::mutex> l(mu_);
  reservations_.clear();
  stats_.memory_in_use = 0;
}

ServerStats MigrationServer::stats() const {
  std::lock_guard<std::mutex> l(mu_);
  return stats_;
}

void MigrationServer::Fail(const lull::Status& s) {
  std::lock_guard<std::mutex> l(mu_);
  stats_.failed++;
  stats_.last_error = s.ToString();
}

void MigrationServer::Expire() {
  std::lock_guard<std::mutex> l(mu_);
  double now = MonoMs();
  for (auto it = reservations_.begin(); it != reservations_.end();) {
    if (it->second.expires_ms <= now) {
      stats_.memory_in_use -= it->second.bytes;
      stats_.reservations_expired++;
      it = reservations_.erase(it);
    } else {
      ++it;
    }
  }
}

void MigrationServer::Provisioning(int step, const lull::Status& s, const Resources& applied,
                                   const Resources& used) {
  std::lock_guard<std::mutex> l(mu_);
  if (!s.ok()) {
    stats_.provision_error = "step " + std::to_string(step) + ": " + s.ToString();
    return;
  }
  stats_.provision_step = step;
  stats_.provision_applied = applied;
  stats_.provision_used = used;
}

void MigrationServer::Provision() {
  const double now = MonoMs();
  for (auto it = provisioned_.begin(); it != provisioned_.end();) {
    if (now < it->start_ms + double(it->step + 1) * opt_.provision_step_ms) {
      ++it;
      continue;
    }
    Resources applied, used;
    const int step = ++it->step;
    lull::Status s = ProvisionStep(step, &it->plan, it->rc.get(), &applied, &used);
    Provisioning(step, s, applied, used);
    it = s.ok() ? it + 1 : provisioned_.erase(it);  // a guest we cannot limit any more
  }
}

void MigrationServer::Loop() {
  while (!stop_) {
    Expire();
    Provision();
    Conn c;
    if (auto s = listener_.Accept(100, &c); !s.ok()) {
      Fail(s);
      continue;
    }
    if (!c.open()) continue;
    c.SetTimeout(opt_.io_timeout_ms);
    Serve(&c);
  }
}

void MigrationServer::Serve(Conn* c) {
  Msg type;
  std::vector<uint8_t> in;
  if (auto s = c->Recv(&type, &in); !s.ok()) {
    Fail(s);
    return;
  }
  switch (type) {
    case Msg::kHello:
      if (auto s = ServeMigration(c, in); !s.ok()) Fail(s);
      break;
    case Msg::kReserve: ServeReserve(c, in); break;
    case Msg::kRelease: ServeRelease(c, in); break;
    default:
      Fail(lull::Status::Corruption(std::string("first message was ") + MsgName(type)));
  }
}

void MigrationServer::ServeReserve(Conn* c, const std::vector<uint8_t>& in) {
  Reader r(in.data(), in.size());
  uint64_t bytes = r.U64();
  uint32_t ttl = r.U32();
  Writer w;
  lull::Status s;
  uint64_t id = 0;
  const size_t ps = 4096;
  if (!r.ok() || bytes == 0 || bytes % ps) {
    s = lull::Status::InvalidArgument("RESERVE: size " + std::to_string(bytes) +
                                      " is not a positive multiple of 4096");
  } else {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (stats_.memory_in_use + bytes > opt_.memory_limit_bytes)
        s = lull::Status::Unavailable("target out of memory: reserving " + Mib(bytes) + " with " +
                                      Mib(stats_.memory_in_use) + " of " +
                                      Mib(opt_.memory_limit_bytes) + " in use");
    }
    std::unique_ptr<TargetGuest> g;
    if (s.ok()) s = factory_->Create(bytes / ps, ps, &g);
    if (s.ok()) {
      std::lock_guard<std::mutex> l(mu_);
      id = next_id_++;
      reservations_[id] = Reservation{std::move(g), bytes, MonoMs() + ttl};
      stats_.memory_in_use += bytes;
      stats_.reservations++;
    }
  }
  PutStatus(&w, s);
  w.U64(id);
  c->Send(Msg::kReserved, w);
}

void MigrationServer::ServeRelease(Conn* c, const std::vector<uint8_t>& in) {
  Reader r(in.data(), in.size());
  uint64_t id = r.U64();
  lull::Status s;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = reservations_.find(id);
    if (!r.ok() || it == reservations_.end()) {
      s = lull::Status::NotFound("no reservation " + std::to_string(id) + " (expired or used)");
    } else {
      stats_.memory_in_use -= it->second.bytes;
      reservations_.erase(it);
    }
  }
  Writer w;
  PutStatus(&w, s);
  c->Send(Msg::kReleased, w);
}

lull::Status MigrationServer::ServeMigration(Conn* c, const std::vector<uint8_t>& hello) {
  Reader r(hello.data(), hello.size());
  uint64_t pages = r.U64();
  uint32_t ps = r.U32();
  uint32_t flags = r.U32();
  uint64_t reservation = r.U64();
  std::string desc = r.Str();
  // The decoder handles every encoding; only the plan flag changes what follows.
  const bool has_plan = flags & kHelloFlagPlan;
  Provisioner plan;
  lull::Status s;
  if (!r.ok()) s = lull::Status::Corruption("truncated HELLO");
  else if (pages == 0 || pages > UINT32_MAX || ps < 512 || ps > (1u << 20) || (ps & (ps - 1)))
    s = lull::Status::InvalidArgument("HELLO: " + std::to_string(pages) + " pages of " +
                                      std::to_string(ps) + " bytes is not a guest we take");
  else if (has_plan) s = GetPlan(&r, opt_.limits, &plan);
  const uint64_t bytes = pages * ps;
  std::unique_ptr<TargetGuest> g;
  bool accounted = false;
  if (s.ok() && reservation) {
    std::lock_guard<std::mutex> l(mu_);
    auto it = reservations_.find(reservation);
    if (it == reservations_.end()) {
      s = lull::Status::NotFound("reservation " + std::to_string(reservation) + " expired or unknown");
    } else if (it->second.bytes != bytes) {
      s = lull::Status::InvalidArgument("reservation " + std::to_string(reservation) + " is " +
                                        Mib(it->second.bytes) + ", the guest " + Mib(bytes));
    } else {
      g = std::move(it->second.guest);
      reservations_.erase(it);
      accounted = true;  // its bytes stay counted, now for this guest
    }
  }
  if (s.ok() && !g) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (stats_.memory_in_use + bytes > opt_.memory_limit_bytes)
        s = lull::Status::Unavailable("target out of memory: the guest needs " + Mib(bytes) +
                                      ", " + Mib(stats_.memory_in_use) + " of " +
                                      Mib(opt_.memory_limit_bytes) + " in use");
      else
        stats_.memory_in_use += bytes;
    }
    if (s.ok()) {
      accounted = true;
      s = factory_->Create(pages, ps, &g);
    }
  }
  // From here on, every exit frees what was taken.
  struct Undo {
    MigrationServer* self;
    uint64_t bytes;
    bool on;
    ~Undo() {
      if (!on) return;
      std::lock_guard<std::mutex> l(self->mu_);
      self->stats_.memory_in_use -= bytes;
    }
  } undo{this, bytes, accounted};
  Writer ack;
  PutStatus(&ack, s);
  if (auto st = c->Send(Msg::kHelloAck, ack); !st.ok()) return st;
  if (!s.ok()) return s;

  std::vector<uint64_t> hashes(pages, XXH3_64bits(nullptr, 0));
  s = Receive(c, g.get(), desc, &hashes);
  if (!s.ok()) {
    Writer w;
    PutStatus(&w, s);
    c->Send(Msg::kAbort, w);  // tell the source why (best effort)
    return s;
  }
  // Guest started: it runs under the plan's first step from now on.
  std::unique_ptr<ResourceControl> rc;
  if (has_plan) {
    Resources applied, used;
    lull::Status ps = g->Control(&rc);
    if (ps.ok()) ps = ProvisionStep(0, &plan, rc.get(), &applied, &used);
    if (!ps.ok()) rc.reset();
    Provisioning(0, ps, applied, used);
  }
  // Guest started and verified; now wait for COMMIT.
  Writer v;
  PutStatus(&v, lull::Status::Ok());
  if (auto st = c->Send(Msg::kVerified, v); !st.ok()) return st;
  std::vector<uint8_t> in;
  if (auto st = c->Expect(Msg::kCommit, &in); !st.ok()) return st;
  g->Commit();
  if (auto st = c->Send(Msg::kCommitted, nullptr, 0); !st.ok()) {
    // The source will resume its copy; ours is committed and stays. Reported, not undone.
    Fail(st);
  }
  undo.on = false;  // the guest's memory belongs to the running guest now
  const bool provisioned = rc != nullptr;
  if (provisioned) provisioned_.push_back(Provisioned{std::move(plan), std::move(rc), MonoMs(), 0});
  std::lock_guard<std::mutex> l(mu_);
  stats_.memory_in_use -= bytes;
  stats_.committed++;
  if (provisioned) stats_.provisioned++;
  return lull::Status::Ok();
}

lull::Status MigrationServer::Receive(Conn* c, TargetGuest* g, const std::string& desc,
                                      std::vector<uint64_t>* hashes) {
  const size_t ps = g->page_size();
  const uint64_t pages = g->pages();
  uint8_t* mem = g->data();
  std::vector<uint8_t> in;
  for (;;) {
    if (opt_.fault_drop_after_bytes && c->bytes_received() > opt_.fault_drop_after_bytes) {
      c->Close();
      return lull::Status::IoError("fault injection: connection dropped by the target");
    }
    Msg type;
    if (auto s = c->Recv(&type, &in); !s.ok()) return s;
    if (type == Msg::kAbort) {
      Reader r(in.data(), in.size());
      lull::Status why = GetStatus(&r);
      return lull::Status::Unavailable("source aborted: " + why.ToString());
    }
    if (type == Msg::kStopCopyDone) {
      Reader r(in.data(), in.size());
      uint64_t sum = r.U64(), mem_hash = r.U64();
      if (!r.ok()) return lull::Status::Corruption("truncated STOP_COPY_DONE");
      uint64_t mine = XXH3_64bits(hashes->data(), hashes->size() * sizeof(uint64_t));
      if (mine != sum)
        return lull::Status::Corruption("end-to-end checksum mismatch: the target's pages "
                                        "differ from what the source sent");
      if (mem_hash && XXH3_64bits(mem, pages * ps) != mem_hash)
        return lull::Status::Corruption("memory checksum mismatch: the target's memory "
                                        "differs from the paused source's");
      return g->Start(desc);
    }
    if (type != Msg::kPages)
      return lull::Status::Corruption(std::string("unexpected ") + MsgName(type) + " during pre-copy");
    size_t at = 0;
    while (at < in.size()) {
      if (in.size() - at < 8) return lull::Status::Corruption("truncated page record header");
      uint32_t page, w;
      std::memcpy(&page, in.data() + at, 4);
      std::memcpy(&w, in.data() + at + 4, 4);
      at += 8;
      size_t len = w & 0xffffff;
      auto enc = static_cast<PageEncoding>(w >> 24);
      if (page >= pages)
        return lull::Status::Corruption("page record for page " + std::to_string(page) +
                                        " of a " + std::to_string(pages) + "-page guest");
      if (len > in.size() - at || len > ps)
        return lull::Status::Corruption("page record " + std::to_string(page) + " length " +
                                        std::to_string(len) + " overruns");
      uint8_t* dst = mem + size_t(page) * ps;
      const uint8_t* src = in.data() + at;
      bool ok = true;
      switch (enc) {
        case PageEncoding::kRaw:
          ok = len == ps;
          if (ok) std::memcpy(dst, src, ps);
          break;
        case PageEncoding::kZero:
          ok = len == 0;
          std::memset(dst, 0, ps);
          break;
        case PageEncoding::kXbzrle: ok = XbzrleDecode(src, len, dst, ps); break;
        case PageEncoding::kLz4: ok = Lz4Decompress(src, len, dst, ps); break;
        default: ok = false;
      }
      if (!ok)
        return lull::Status::Corruption(std::string("page ") + std::to_string(page) + ": bad " +
                                        PageEncodingName(enc) + " record of " + std::to_string(len) +
                                        " bytes");
      if (int64_t(page) == opt_.fault_corrupt_page) dst[ps / 2] ^= 0x5a;
      (*hashes)[page] = XXH3_64bits(dst, ps);
      at += len;
    }
  }
}

}  // namespace lull::migrate
