#pragma once

#include <array>
#include <cstdint>

namespace mantissa {

/// Philox-4x32-10 counter-based generator (Salmon et al., SC'11): the output for a given
/// (key, counter) is a pure function, so streams can be split and resumed exactly.
/// Stateless form, used where a value must depend only on its coordinates (stochastic rounding).
std::array<uint32_t, 4> philox4x32(std::array<uint32_t, 2> key, std::array<uint32_t, 4> counter);

/// An explicit, seedable generator. There is no global RNG: every user passes one in.
class Rng {
 public:
  explicit Rng(uint64_t seed = 0, uint64_t stream = 0);

  /// 32 random bits.
  uint32_t nextU32();
  /// Uniform in [0, 1) with 24 bits of resolution.
  float uniform();
  /// Standard normal (Box-Muller).
  float normal();
  /// Uniform integer in [0, n).
  uint64_t uniformInt(uint64_t n);
  /// A generator for a derived stream (e.g. per epoch or per worker), independent of this one.
  Rng fork(uint64_t stream) const;

  /// Complete state, for checkpoints: {seed, stream, counter, buffered index}.
  struct State {
    uint64_t seed = 0, stream = 0, counter = 0;
    uint32_t index = 4;
  };
  State state() const;
  void setState(const State& s);

  bool operator==(const Rng& other) const;

 private:
  void refill();

  uint64_t seed_, stream_, counter_ = 0;
  std::array<uint32_t, 4> buffer_{};
  uint32_t index_ = 4;
};

}  // namespace mantissa
