#include "layers/models/detail/Init.h"

#include <cmath>

namespace mantissa::nn::detail {

namespace {

Tensor parameter(const Module& m, std::string_view name) {
  for (const auto& [n, t] : m.namedParameters()) {
    if (n == name) return t;
  }
  MANTISSA_CHECK(false, m.typeName(), ": no parameter named '", name, "' to initialise");
  return {};
}

}  // namespace

void normalInit(Module& m, std::string_view name, float mean, float std, Rng& rng) {
  m.setTensor(name, Tensor::randn(parameter(m, name).shape(), rng, mean, std));
}

void kaimingNormalInit(Module& m, std::string_view name, bool fanOut, Rng& rng) {
  const Shape s = parameter(m, name).shape();
  MANTISSA_CHECK(s.size() >= 2, m.typeName(), ": kaiming init of '", name, "' needs >= 2 dims");
  int64_t receptive = 1;
  for (size_t d = 2; d < s.size(); ++d) receptive *= s[d];
  const int64_t fan = (fanOut ? s[0] : s[1]) * receptive;
  // gain sqrt(2) for ReLU; std = gain / sqrt(fan) (He et al. 2015, eq. 10).
  normalInit(m, name, 0.f, static_cast<float>(std::sqrt(2.0 / static_cast<double>(fan))), rng);
}

uint64_t drawSeed(Rng& rng) {
  const uint64_t hi = rng.nextU32();
  return (hi << 32) | rng.nextU32();
}

}  // namespace mantissa::nn::detail
