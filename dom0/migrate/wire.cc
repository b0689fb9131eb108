#include "dom0/migrate/wire.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "dom0/migrate/clock.h"

namespace lull::migrate {

namespace {

constexpr uint16_t kMagic = 0x4d4c;  // "LM"
constexpr uint8_t kVersion = 1;

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

}  // namespace

const char* MsgName(Msg m) {
  switch (m) {
    case Msg::kHello: return "HELLO";
    case Msg::kHelloAck: return "HELLO_ACK";
    case Msg::kPages: return "PAGES";
    case Msg::kStopCopyDone: return "STOP_COPY_DONE";
    case Msg::kVerified: return "VERIFIED";
    case Msg::kCommit: return "COMMIT";
    case Msg::kCommitted: return "COMMITTED";
    case Msg::kAbort: return "ABORT";
    case Msg::kReserve: return "RESERVE";
    case Msg::kReserved: return "RESERVED";
    case Msg::kRelease: return "RELEASE";
    case Msg::kReleased: return "RELEASED";
  }
  return "?";
}

void Reader::Raw(void* d, size_t k) {
  if (!ok_ || k > n_ - at_) {
    ok_ = false;
    std::memset(d, 0, k);
    return;
  }
  std::memcpy(d, p_ + at_, k);
  at_ += k;
}

void PutStatus(Writer* w, const lull::Status& s) {
  w->U8(static_cast<uint8_t>(s.code()));
  w->Str(s.message());
}

lull::Status GetStatus(Reader* r) {
  auto code = static_cast<lull::Status::Code>(r->U8());
  std::string m = r->Str();
  if (!r->ok()) return lull::Status::Corruption("truncated status in a message from the peer");
  switch (code) {
    case lull::Status::Code::kOk: return lull::Status::Ok();
    case lull::Status::Code::kInvalidArgument: return lull::Status::InvalidArgument(m);
    case lull::Status::Code::kNotFound: return lull::Status::NotFound(m);
    case lull::Status::Code::kIoError: return lull::Status::IoError(m);
    case lull::Status::Code::kCorruption: return lull::Status::Corruption(m);
    case lull::Status::Code::kUnavailable: return lull::Status::Unavailable(m);
    case lull::Status::Code::kPermissionDenied: return lull::Status::PermissionDenied(m);
    case lull::Status::Code::kAlreadyExists: return lull::Status::AlreadyExists(m);
    case lull::Status::Code::kInternal: return lull::Status::Internal(m);
  }
  return lull::Status::Corruption("unknown status code from the peer: " + m);
}

Conn::~Conn() { Close(); }
Conn::Conn(Conn&& o) noexcept { *this = std::move(o); }
Conn& Conn::operator=(Conn&& o) noexcept {
  if (this != &o) {
    Close();
    fd_ = o.fd_;
    sent_ = o.sent_;
    received_ = o.received_;
    rate_ = o.rate_;
    rate_start_ns_ = o.rate_start_ns_;
    rate_bytes_ = o.rate_bytes_;
    o.fd_ = -1;
  }
  return *this;
}

void Conn::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

void Conn::SetTimeout(int ms) {
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

lull::Status Conn::Connect(const std::string& host, uint16_t port, int timeout_ms, Conn* out) {
  addrinfo hints{}, *res = nullptr;
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
  if (rc != 0)
    return lull::Status::InvalidArgument("target host '" + host + "': " + gai_strerror(rc));
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    freeaddrinfo(res);
    return lull::Status::Unavailable(Errno("socket"));
  }
  Conn c(fd);
  c.SetTimeout(timeout_ms);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  rc = connect(fd, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  if (rc != 0)
    return lull::Status::Unavailable(Errno("connect to " + host + ":" + std::to_string(port)));
  *out = std::move(c);
  return lull::Status::Ok();
}

lull::Status Conn::WriteAll(const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  while (n) {
    ssize_t k = send(fd_, b, n, MSG_NOSIGNAL);
    if (k < 0) {
      if (errno == EINTR) continue;
      return lull::Status::IoError(errno == EAGAIN ? std::string("send: peer stopped reading (timeout)")
                                                   : Errno("send"));
    }
    b += k;
    n -= static_cast<size_t>(k);
    sent_ += static_cast<uint64_t>(k);
  }
  return lull::Status::Ok();
}

lull::Status Conn::ReadAll(void* p, size_t n) {
  auto* b = static_cast<uint8_t*>(p);
  while (n) {
    ssize_t k = recv(fd_, b, n, 0);
    if (k == 0) return lull::Status::IoError("connection closed by the peer");
    if (k < 0) {
      if (errno == EINTR) continue;
      return lull::Status::IoError(errno == EAGAIN ? std::string("receive timed out")
                                                   : Errno("recv"));
    }
    b += k;
    n -= static_cast<size_t>(k);
    received_ += static_cast<uint64_t>(k);
  }
  return lull::Status::Ok();
}

lull::Status Conn::Send(Msg type, const void* payload, size_t len) {
  if (fd_ < 0) return lull::Status::IoError("send on a closed connection");
  if (len > kMaxPayload) return lull::Status::InvalidArgument("message payload too large");
  if (rate_) {
    // Token bucket: sleep until the bytes sent so far fit the rate.
    int64_t now = MonoNs();
    if (!rate_start_ns_) rate_start_ns_ = now;
    rate_bytes_ += len + 8;
    int64_t due = rate_start_ns_ + static_cast<int64_t>(rate_bytes_ * 1e9 / static_cast<double>(rate_));
    if (due > now) {
      timespec ts{static_cast<time_t>((due - now) / 1000000000), static_cast<long>((due - now) % 1000000000)};
      nanosleep(&ts, nullptr);
    }
  }
  uint8_t h[8];
  uint32_t a = kMagic | (uint32_t{kVersion} << 16) | (uint32_t(type) << 24);
  uint32_t l = static_cast<uint32_t>(len);
  std::memcpy(h, &a, 4);
  std::memcpy(h + 4, &l, 4);
  if (len <= 4096) {  // one segment for small messages (latency of the final steps)
    uint8_t buf[8 + 4096];
    std::memcpy(buf, h, 8);
    if (len) std::memcpy(buf + 8, payload, len);
    return WriteAll(buf, 8 + len);
  }
  if (auto s = WriteAll(h, 8); !s.ok()) return s;
  return WriteAll(payload, len);
}

lull::Status Conn::Recv(Msg* type, std::vector<uint8_t>* payload) {
  if (fd_ < 0) return lull::Status::IoError("receive on a closed connection");
  uint8_t h[8];
  if (auto s = ReadAll(h, 8); !s.ok()) return s;
  uint32_t a, l;
  std::memcpy(&a, h, 4);
  std::memcpy(&l, h + 4, 4);
  if ((a & 0xffff) != kMagic) return lull::Status::Corruption("peer sent a message without the LM magic");
  if (((a >> 16) & 0xff) != kVersion)
    return lull::Status::Corruption("peer speaks protocol version " + std::to_string((a >> 16) & 0xff) +
                                    ", we speak " + std::to_string(kVersion));
  uint8_t t = static_cast<uint8_t>(a >> 24);
  if (t < uint8_t(Msg::kHello) || t > uint8_t(Msg::kReleased))
    return lull::Status::Corruption("peer sent unknown message type " + std::to_string(t));
  if (l > kMaxPayload)
    return lull::Status::Corruption("peer sent a " + std::to_string(l) + "-byte payload (limit 16 MiB)");
  payload->resize(l);
  if (auto s = ReadAll(payload->data(), l); !s.ok()) return s;
  *type = static_cast<Msg>(t);
  return lull::Status::Ok();
}

lull::Status Conn::Expect(Msg want, std::vector<uint8_t>* payload) {
  Msg got;
  if (auto s = Recv(&got, payload); !s.ok()) return s;
  if (got == want) return lull::Status::Ok();
  if (got == Msg::kAbort) {
    Reader r(payload->data(), payload->size());
    lull::Status s = GetStatus(&r);
    return s.ok() ? lull::Status::Internal("peer aborted") : s;
  }
  return lull::Status::Corruption(std::string("expected ") + MsgName(want) + " from the peer, got " +
                                  MsgName(got));
}

Listener::~Listener() { Close(); }

void Listener::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

lull::Status Listener::Listen(const std::string& bind_addr, uint16_t port, Listener* out) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  if (inet_pton(AF_INET, bind_addr.c_str(), &sa.sin_addr) != 1)
    return lull::Status::InvalidArgument("bind address '" + bind_addr + "' is not an IPv4 address");
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return lull::Status::Unavailable(Errno("socket"));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || listen(fd, 8) != 0) {
    lull::Status s = lull::Status::Unavailable(Errno("listen on " + bind_addr + ":" + std::to_string(port)));
    close(fd);
    return s;
  }
  socklen_t len = sizeof sa;
  getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  out->Close();
  out->fd_ = fd;
  out->port_ = ntohs(sa.sin_port);
  return lull::Status::Ok();
}

lull::Status Listener::Accept(int timeout_ms, Conn* conn) {
  pollfd p{fd_, POLLIN, 0};
  int r = poll(&p, 1, timeout_ms);
  if (r < 0 && errno != EINTR) return lull::Status::IoError(Errno("poll"));
  if (r <= 0) return lull::Status::Ok();
  int fd = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd < 0) return lull::Status::IoError(Errno("accept"));
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  *conn = Conn(fd);
  return lull::Status::Ok();
}

lull::Status ParseHostPort(const std::string& s, uint16_t default_port, std::string* host,
                           uint16_t* port) {
  auto colon = s.rfind(':');
  *port = default_port;
  *host = s.substr(0, colon);
  if (colon != std::string::npos) {
    std::string p = s.substr(colon + 1);
    char* end = nullptr;
    long v = std::strtol(p.c_str(), &end, 10);
    if (p.empty() || *end || v <= 0 || v > 65535)
      return lull::Status::InvalidArgument("'" + s + "': port '" + p + "' is not in 1..65535");
    *port = static_cast<uint16_t>(v);
  }
  if (host->empty()) return lull::Status::InvalidArgument("'" + s + "': no host");
  return lull::Status::Ok();
}

void PutPlan(Writer* w, const Provisioner& plan) {
  w->F64(plan.config().headroom);
  w->F64(plan.config().floor);
  w->F64(plan.config().hysteresis);
  w->U32(static_cast<uint32_t>(plan.phases().size()));
  for (const auto& ph : plan.phases()) {
    w->U32(static_cast<uint32_t>(ph.start));
    w->U32(static_cast<uint32_t>(ph.end));
    w->F64(ph.r.cpu);
    w->F64(ph.r.memory_mib);
    w->F64(ph.r.io_mbps);
  }
}

lull::Status GetPlan(Reader* r, const Resources& limits, Provisioner* out) {
  ProvisionConfig cfg;
  cfg.headroom = r->F64();
  cfg.floor = r->F64();
  cfg.hysteresis = r->F64();
  uint32_t n = r->U32();
  if (!r->ok()) return lull::Status::Corruption("truncated provisioning plan");
  if (n == 0 || n > 4096)
    return lull::Status::InvalidArgument("provisioning plan of " + std::to_string(n) + " phases");
  std::vector<ProvisionPhase> phases(n);
  for (auto& ph : phases) {
    uint32_t a = r->U32(), b = r->U32();
    ph.start = static_cast<int>(std::min<uint32_t>(a, INT32_MAX));
    ph.end = static_cast<int>(std::min<uint32_t>(b, INT32_MAX));
    ph.r.cpu = r->F64();
    ph.r.memory_mib = r->F64();
    ph.r.io_mbps = r->F64();
  }
  if (!r->ok()) return lull::Status::Corruption("truncated provisioning plan");
  return Provisioner::FromPhases(phases, limits, cfg, out);
}

}  // namespace lull::migrate
