// libFuzzer entry point (clang -fsanitize=fuzzer): `make fuzz`.
#include "tests/fuzz/shm_fuzz_body.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return lull::fuzz::FuzzShmRegion(data, size);
}
