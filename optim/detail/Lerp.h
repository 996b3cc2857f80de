#pragma once

namespace mantissa::optim::detail {

/// PyTorch's CPU lerp (a + w (b - a)): two formulas so the result is exact at both ends of the
/// weight. The choice depends on the weight only, so callers make it once per step (kLowWeight
/// = w < 0.5) and instantiate the update loop for it.
template <bool kLowWeight>
inline float lerp(float a, float b, float w) {
  if constexpr (kLowWeight) return a + w * (b - a);
  else return b - (b - a) * (1.f - w);
}

}  // namespace mantissa::optim::detail
