// lull::migrate wire - the framed TCP protocol between two lulld instances.
//
// Every message is an 8-byte header (magic "LM", version, type, payload length, little
// endian) and a payload of at most kMaxPayload bytes. A peer that sends anything else is
// cut off with a Corruption error naming what was wrong. The conversation:
//
//   source                                    target
//   HELLO {pages, page size, flags,     ->
//          reservation, description,
//          [plan]}                       <-   HELLO_ACK {status} (e.g. out of memory)
//   PAGES {records}*  (pre-copy rounds) ->
//   STOP_COPY_DONE {checksum, memory    ->    checks, starts the guest (verification run)
//          hash}                         <-   VERIFIED {status}
//   COMMIT                              ->    the target's guest is the guest now
//                                        <-   COMMITTED
//   ABORT {reason} either way, at any point: the target frees what it took.
//
//   RESERVE {bytes, ttl ms}             ->    pre-warms memory for a coming migration
//                                        <-   RESERVED {status, id}
//   RELEASE {id}                        ->    (the lull did not come)
//                                        <-   RELEASED {status}
//
// With kHelloFlagPlan the HELLO ends with the provisioning plan (planner.h): {f64
// headroom, floor, hysteresis; u32 n; n x {u32 start, end; f64 cpu, memory MiB, io
// MB/s}}; the target caps it at its own limits and applies it from the verification run
// on (target.h).
// A page record is {u32 page index, u32 (encoding << 24 | length)} and `length` bytes.
// Conn counts the bytes it moves (headers included) and can cap its send rate (a token
// bucket) for hosts where tc cannot shape the link. Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "dom0/migrate/planner.h"
#include "forecast/status.h"

namespace lull::migrate {

enum class Msg : uint8_t {
  kHello = 1, kHelloAck, kPages, kStopCopyDone, kVerified, kCommit, kCommitted, kAbort,
  kReserve, kReserved, kRelease, kReleased
};
const char* MsgName(Msg m);

constexpr uint32_t kMaxPayload = 16u << 20;
constexpr uint32_t kHelloFlagXbzrle = 1, kHelloFlagLz4 = 2, kHelloFlagPlan = 4;

// Little helpers to build and parse payloads; Reader reports truncation by ok() == false.
class Writer {
 public:
  void U8(uint8_t v) { buf_.push_back(v); }
  void U32(uint32_t v) { Raw(&v, 4); }
  void U64(uint64_t v) { Raw(&v, 8); }
  void F64(double v) { Raw(&v, 8); }
  void Str(const std::string& s) { U32(static_cast<uint32_t>(s.size())); Raw(s.data(), s.size()); }
  void Raw(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    buf_.insert(buf_.end(), b, b + n);
  }
  std::vector<uint8_t>& buf() { return buf_; }

 private:
  std::vector<uint8_t> buf_;
};

class Reader {
 public:
  Reader(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  uint8_t U8() { uint8_t v = 0; Raw(&v, 1); return v; }
  uint32_t U32() { uint32_t v = 0; Raw(&v, 4); return v; }
  uint64_t U64() { uint64_t v = 0; Raw(&v, 8); return v; }
  double F64() { double v = 0; Raw(&v, 8); return v; }
  std::string Str() {
    uint32_t n = U32();
    if (!ok_ || n > n_ - at_) { ok_ = false; return {}; }
    std::string s(reinterpret_cast<const char*>(p_ + at_), n);
    at_ += n;
    return s;
  }
  bool ok() const { return ok_; }
  bool done() const { return at_ == n_; }

 private:
  void Raw(void* d, size_t k);
  const uint8_t* p_;
  size_t n_, at_ = 0;
  bool ok_ = true;
};

// The provisioning plan in a HELLO (format above). GetPlan checks it (Corruption when
// truncated, InvalidArgument when it is not a plan) and caps it at `limits`.
void PutPlan(Writer* w, const Provisioner& plan);
lull::Status GetPlan(Reader* r, const Resources& limits, Provisioner* out);

// A status carried in a message: {u8 code, string message}.
void PutStatus(Writer* w, const lull::Status& s);
lull::Status GetStatus(Reader* r);

class Conn {
 public:
  Conn() = default;
  explicit Conn(int fd) : fd_(fd) {}
  ~Conn();
  Conn(Conn&& o) noexcept;
  Conn& operator=(Conn&& o) noexcept;
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // host is an IPv4 address or a name; timeouts apply to every later send and receive.
  static lull::Status Connect(const std::string& host, uint16_t port, int timeout_ms, Conn* out);
  void SetTimeout(int timeout_ms);
  void SetRateLimit(uint64_t bytes_per_second) { rate_ = bytes_per_second; }

  lull::Status Send(Msg type, const void* payload, size_t len);
  lull::Status Send(Msg type, Writer& w) { return Send(type, w.buf().data(), w.buf().size()); }
  // Waits for one message (up to the timeout); the payload replaces *payload.
  lull::Status Recv(Msg* type, std::vector<uint8_t>* payload);
  // Receives one message and insists on its type; an ABORT becomes its reason.
  lull::Status Expect(Msg type, std::vector<uint8_t>* payload);

  bool open() const { return fd_ >= 0; }
  void Close();
  uint64_t bytes_sent() const { return sent_; }
  uint64_t bytes_received() const { return received_; }

 private:
  lull::Status WriteAll(const void* p, size_t n);
  lull::Status ReadAll(void* p, size_t n);
  int fd_ = -1;
  uint64_t sent_ = 0, received_ = 0;
  uint64_t rate_ = 0;
  int64_t rate_start_ns_ = 0;
  uint64_t rate_bytes_ = 0;
};

// A listening TCP socket on `bind_addr`:port (port 0 picks a free one).
class Listener {
 public:
  ~Listener();
  static lull::Status Listen(const std::string& bind_addr, uint16_t port, Listener* out);
  uint16_t port() const { return port_; }
  // Waits up to timeout_ms; OK with !conn->open() on timeout.
  lull::Status Accept(int timeout_ms, Conn* conn);
  void Close();

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// "host:port" or "host" (port defaults to `default_port`).
lull::Status ParseHostPort(const std::string& s, uint16_t default_port, std::string* host,
                           uint16_t* port);

}  // namespace lull::migrate
