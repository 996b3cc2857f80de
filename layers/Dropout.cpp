#include "layers/Dropout.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <sstream>

#include "core/ops/Dropout.h"

namespace mantissa::nn {

namespace {

// The 64-bit fields travel through an I64 tensor bit for bit.
Tensor packState(const Rng::State& s) {
  return Tensor::fromInts({std::bit_cast<int64_t>(s.seed), std::bit_cast<int64_t>(s.stream),
                           std::bit_cast<int64_t>(s.counter), static_cast<int64_t>(s.index)},
                          {4});
}

}  // namespace

Dropout::Dropout(float p, uint64_t seed) : Module("Dropout"), p_(p) {
  MANTISSA_CHECK(std::isfinite(p) && p >= 0.f && p < 1.f, "Dropout: probability p = ", p,
                 " outside [0, 1)");
  state_ = registerBuffer("rng_state", packState(Rng(seed).state()));
}

Rng::State Dropout::rngState() const {
  const int64_t* v = state_.data<int64_t>();
  Rng::State s;
  s.seed = std::bit_cast<uint64_t>(v[0]);
  s.stream = std::bit_cast<uint64_t>(v[1]);
  s.counter = std::bit_cast<uint64_t>(v[2]);
  s.index = static_cast<uint32_t>(v[3]);
  return s;
}

Tensor Dropout::forward(const Tensor& x) {
  if (!isTraining() || p_ == 0.f) return x;
  Rng rng;
  rng.setState(rngState());
  Tensor y = dropout(x, p_, true, rng);
  // Write back in place: every handle on the buffer (and a later loadState) sees the new state.
  Tensor packed = packState(rng.state());
  std::copy_n(packed.data<int64_t>(), 4, state_.data<int64_t>());
  return y;
}

std::string Dropout::extraRepr() const {
  std::ostringstream os;
  os << "p=" << p_;
  return os.str();
}

}  // namespace mantissa::nn
