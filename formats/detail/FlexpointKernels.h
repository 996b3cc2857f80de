#pragma once

#include <cstdint>
#include <limits>

#include "formats/detail/KernelIsa.h"

namespace mantissa::formats::detail {

/// What a pass over a Flexpoint tensor saw (min/max of the FP32 input, counters).
struct FlexPass {
  float minValue = std::numeric_limits<float>::infinity();
  float maxValue = -std::numeric_limits<float>::infinity();
  int64_t nonFinite = 0;  // NaN or Inf inputs
  int64_t saturated = 0;  // integers clamped to [-2^(bits-1), 2^(bits-1) - 1]
  int64_t flushed = 0;    // non-zero inputs whose integer is 0
};

/// Min, max and non-finite count of x (one read pass). Min and max are meaningful only when
/// nonFinite is 0 (callers fail otherwise).
FlexPass flexScan(const float* x, int64_t n, KernelIsa isa);

/// M = clamp(RNE(x * 2^dec), -2^(bits-1), 2^(bits-1) - 1). `Out` = float writes M * 2^-dec
/// (a zero result is +0), an integer type writes M, and then also M * 2^-dec to `values` when
/// it is non-null (codes and values in one pass). Returns the pass statistics. dec must be in
/// [-100, 100] so that 2^dec and 2^-dec are normal floats.
template <class Out>
FlexPass flexQuantize(const float* x, Out* out, int64_t n, int dec, int bits, KernelIsa isa,
                      float* values = nullptr);

/// max |M| of a tensor with the given min and max when written with exponent dec (what the
/// kernel's maxabs would be, without a pass over the data: RNE is monotone).
int64_t flexMaxabs(float minValue, float maxValue, int dec, int bits);

}  // namespace mantissa::formats::detail
