// libFuzzer target for the CIFAR binary batch reader. Build: see docs/data.md (Fuzzing).
#include <cstddef>
#include <cstdint>

#include "core/Error.h"
#include "tests/data/fuzz/FuzzInputs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    mantissa::data::fuzz::parseCifarInput(data, size);
  } catch (const mantissa::Error&) {
    // A clean error is the expected outcome for bad input; anything else escapes and is a bug.
  }
  return 0;
}
