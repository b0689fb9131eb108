// lull::shm::Producer / Consumer - typed C++ ends of a lull_shm.h ring.
//
// Thin wrappers over the C functions in shm/lull_shm.h (the one implementation, shared
// with Xen): the record type fixes the record size at compile time, so the per-record
// copy is inlined. Each object is the private state of one side of one ring; it must be
// used by one thread at a time, and there must be one producer and one consumer per ring.
//
// Ownership: the caller owns the mapping and keeps it alive while the object is in use.
// Errors are negative errno, as in the C API.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "shm/lull_shm.h"

namespace lull::shm {

template <class Rec>
concept RingRecord = std::is_trivially_copyable_v<Rec> && sizeof(Rec) >= LULL_REC_MIN_SIZE &&
                     sizeof(Rec) <= LULL_REC_MAX_SIZE && sizeof(Rec) % 8 == 0 &&
                     requires(Rec r) { { r.seq } -> std::same_as<uint32_t&>; };

template <RingRecord Rec>
class Producer {
  static_assert(offsetof(Rec, seq) == 0, "a ring record starts with its uint32_t seq");

 public:
  // 0, -EINVAL (arguments or a ring of another geometry), -EPROTO (insane indices).
  int Attach(void* ring, uint64_t bytes, uint32_t capacity) {
    return lull_prod_init(&p_, ring, bytes, capacity, sizeof(Rec));
  }
  // Stage one record (its seq is set here). false when full: dropped and counted.
  bool Push(const Rec& r) { return lull_prod_push(&p_, &r, sizeof(Rec)) == 0; }
  // Stage as many of n records as fit (one look at the consumer's index); the count.
  // Records that did not fit are not counted as dropped unless Drop() says so.
  uint32_t PushN(const Rec* r, uint32_t n) { return lull_prod_push_n(&p_, r, n, sizeof(Rec)); }
  void Drop(uint32_t n) { lull_prod_drop(&p_, n); }
  // Make every staged record visible to the consumer (one release store).
  void Publish() { lull_prod_publish(&p_); }
  // Free slots: FreeCached() touches no shared line; Refresh() reloads the consumer's index.
  uint32_t FreeCached() const { return lull_prod_free_cached(&p_); }
  uint32_t Refresh() { return lull_prod_refresh(&p_); }
  uint64_t pushed() const { return p_.prod; }
  uint64_t dropped() const { return p_.dropped; }
  uint64_t errors() const { return p_.errors; }

 private:
  lull_prod p_{};
};

template <RingRecord Rec>
class Consumer {
  static_assert(offsetof(Rec, seq) == 0, "a ring record starts with its uint32_t seq");

 public:
  int Attach(void* ring, uint64_t bytes, uint32_t capacity) {
    return lull_cons_init(&c_, ring, bytes, capacity, sizeof(Rec));
  }
  // Copy up to `max` validated records into out[]; the count, 0 if empty, or -EPROTO
  // (the producer's index was insane; resynchronised, call again).
  int Pop(Rec* out, uint32_t max) { return lull_cons_pop(&c_, out, max, sizeof(Rec)); }
  // Give the slots of everything popped so far back to the producer.
  void Release() { lull_cons_release(&c_); }
  uint64_t consumed() const { return c_.cons; }
  uint64_t errors() const { return c_.errors; }
  uint64_t skipped() const { return c_.skipped; }
  uint64_t producer_dropped() const { return lull_cons_dropped(&c_); }

 private:
  lull_cons c_{};
};

// A region's ring of telemetry or commands, located through a validated view.
inline uint64_t TelRingBytes(const lull_shm_view& v) { return v.tel_stride; }
inline uint64_t CmdRingBytes(const lull_shm_view& v) {
  return lull_ring_bytes(v.geom.cmd_capacity, sizeof(lull_cmd_rec));
}

}  // namespace lull::shm
