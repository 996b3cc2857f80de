#include "core/Rng.h"

#include <cmath>
#include <numbers>

#include "core/Error.h"

namespace mantissa {

std::array<uint32_t, 4> philox4x32(std::array<uint32_t, 2> key, std::array<uint32_t, 4> c) {
  constexpr uint32_t kM0 = 0xD2511F53, kM1 = 0xCD9E8D57, kW0 = 0x9E3779B9, kW1 = 0xBB67AE85;
  for (int round = 0; round < 10; ++round) {
    uint64_t p0 = uint64_t{kM0} * c[0], p1 = uint64_t{kM1} * c[2];
    c = {static_cast<uint32_t>(p1 >> 32) ^ c[1] ^ key[0], static_cast<uint32_t>(p1),
         static_cast<uint32_t>(p0 >> 32) ^ c[3] ^ key[1], static_cast<uint32_t>(p0)};
    key[0] += kW0;
    key[1] += kW1;
  }
  return c;
}

Rng::Rng(uint64_t seed, uint64_t stream) : seed_(seed), stream_(stream) {}

void Rng::refill() {
  buffer_ = philox4x32({static_cast<uint32_t>(seed_), static_cast<uint32_t>(seed_ >> 32)},
                       {static_cast<uint32_t>(counter_), static_cast<uint32_t>(counter_ >> 32),
                        static_cast<uint32_t>(stream_), static_cast<uint32_t>(stream_ >> 32)});
  ++counter_;
  index_ = 0;
}

uint32_t Rng::nextU32() {
  if (index_ >= 4) refill();
  return buffer_[index_++];
}

float Rng::uniform() { return static_cast<float>(nextU32() >> 8) * (1.0f / 16777216.0f); }

float Rng::normal() {
  // Box-Muller on two uniforms in (0, 1]; one sample per call keeps the state simple.
  double u1 = (static_cast<double>(nextU32()) + 1.0) / 4294967296.0;
  double u2 = static_cast<double>(nextU32()) / 4294967296.0;
  return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2));
}

uint64_t Rng::uniformInt(uint64_t n) {
  MANTISSA_CHECK(n > 0, "Rng::uniformInt(0)");
  // Rejection sampling removes modulo bias.
  uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  while (true) {
    uint64_t r = (uint64_t{nextU32()} << 32) | nextU32();
    if (r < limit) return r % n;
  }
}

Rng Rng::fork(uint64_t stream) const {
  // Mix the parent stream into the child so fork(a).fork(b) != fork(b).fork(a).
  auto mixed = philox4x32({static_cast<uint32_t>(seed_), static_cast<uint32_t>(seed_ >> 32)},
                          {static_cast<uint32_t>(stream), static_cast<uint32_t>(stream >> 32),
                           static_cast<uint32_t>(stream_), 0x5EEDu});
  return Rng(seed_, (uint64_t{mixed[0]} << 32) | mixed[1]);
}

Rng::State Rng::state() const { return {seed_, stream_, counter_, index_}; }

void Rng::setState(const State& s) {
  MANTISSA_CHECK(s.index <= 4, "Rng state: buffered index ", s.index, " out of range");
  seed_ = s.seed;
  stream_ = s.stream;
  if (s.index < 4) {
    counter_ = s.counter - 1;  // regenerate the partly consumed block
    refill();
  }
  counter_ = s.counter;
  index_ = s.index;
}

bool Rng::operator==(const Rng& o) const {
  return seed_ == o.seed_ && stream_ == o.stream_ && counter_ == o.counter_ && index_ == o.index_;
}

}  // namespace mantissa
