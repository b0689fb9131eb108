// The fuzz body over the lull shared region: bytes in, no crash, no out-of-bounds access,
// no endless loop, and every invariant the consumer promises holds. Shared by the
// libFuzzer target (make fuzz) and a deterministic gtest run in every `make test`.
#pragma once

#include <cstddef>
#include <cstdint>

namespace lull::fuzz {

// Returns 0. Aborts (so the fuzzer reports it) when an invariant is broken.
int FuzzShmRegion(const uint8_t* data, size_t size);

}  // namespace lull::fuzz
