#pragma once

#include <cstdint>

#include "formats/Format.h"
#include "formats/detail/KernelIsa.h"

namespace mantissa::formats::detail {

/// Range of the HBFP shared exponent: 8 bits, FP32-like. e = ceil(log2 max|x|) of a block is
/// clamped below at kHbfpMinExponent (blocks whose max is below 2^-126 keep the finest grid,
/// ulp = 2^(-126 - (N-1)): gradual underflow like FP32 subnormals; an all-zero block also gets
/// this exponent). No finite FP32 block needs more than kHbfpMaxExponent (FLT_MAX < 2^128).
inline constexpr int kHbfpMinExponent = -126;
inline constexpr int kHbfpMaxExponent = 128;

/// A tensor viewed as [outer, axis, inner] (row-major) with blocks of `block` consecutive
/// indices along `axis` (the last one may be shorter). Block (o, b, i) covers axis indices
/// [b * block, min((b + 1) * block, axis)) at outer index o and inner index i; its exponent is
/// stored at exps[(o * numBlocks + b) * inner + i].
struct HbfpLayout {
  int64_t outer = 1, axis = 1, inner = 1;
  int64_t block = 64;
  int64_t numBlocks() const { return (axis + block - 1) / block; }
};

/// Per-call parameters: mantissa width N (including sign), rounding and its random stream.
struct HbfpParams {
  int bits = 8;
  Rounding rounding = Rounding::NearestEven;
  uint64_t seed = 0, stream = 0, step = 0;
};

struct HbfpPass {
  int64_t nonFinite = 0, saturated = 0, flushed = 0;
  /// Bf16Bits output: the smallest non-zero |value| written, as FP32 bits (UINT32_MAX: none),
  /// i.e. what ops::detail::toBf16Exact would find in the FP32 values.
  uint32_t minMagnitude = UINT32_MAX;
};

/// Output element that receives the bfloat16 bit pattern of each quantized value: the high 16
/// bits of the FP32 value `Out` = float would write (the bf16 GEMM path, docs/ops.md). For
/// N <= 8 they hold every value exactly, FP32 subnormals included (all values are multiples of
/// ulp >= 2^-133, so the low 16 bits of a pattern are zero); for N = 9 only the normal ones.
struct Bf16Bits {
  uint16_t bits;
};

/// Quantizes x (contiguous, laid out as `layout`). `Out` = float writes the values
/// M * 2^(e - (N-1)) (+0 for zero), Bf16Bits their high halves (and finds minMagnitude), an
/// integer type writes the mantissas M in [-(2^(N-1) - 1), 2^(N-1) - 1]. `exps` (optional)
/// receives each block's exponent e.
/// Stochastic rounding is floor(x / ulp + U) with U = k * 2^-24, k the top 24 of the 32 bits
/// stochasticBits(stochasticKey(seed, stream, step), flat element index) gives.
template <class Out>
HbfpPass hbfpQuantize(const float* x, Out* out, int16_t* exps, const HbfpLayout& layout,
                      const HbfpParams& params, KernelIsa isa);

/// A tensor blocked along several axes at once, read in place: `rows` lines, line r starting at
/// element r * rowStride; index k of a line lies at (k / segment) * segmentStride + k % segment,
/// i.e. `segments` contiguous runs of `segment` values. Example: the weight-gradient GEMM of a
/// convolution blocks x[N, C, H, W] along (N, H, W) for each channel: rows = C, rowStride =
/// H*W, segments = N, segment = H*W, segmentStride = C*H*W. Blocks are `block` consecutive
/// indices k of one line (the last one may be shorter) and may span runs.
struct HbfpGatherLayout {
  int64_t rows = 1, rowStride = 0;
  int64_t segments = 1, segment = 1, segmentStride = 0;
  int64_t block = 64;
  int64_t length() const { return segments * segment; }
  int64_t numBlocks() const { return (length() + block - 1) / block; }
};

/// hbfpQuantize on the gathered [rows, length] matrix, written back to the source positions:
/// the same values and counters as gathering, quantizing with blocks along the last axis and
/// scattering back (stochastic bits keyed by the gathered index r * length + k), without the
/// two copies. Positions outside the layout are left untouched. `Out` as for hbfpQuantize
/// (values, bf16 patterns or integer mantissas); `exps` (optional) receives block b of line r's
/// exponent at exps[r * numBlocks() + b].
template <class Out>
HbfpPass hbfpQuantizeGathered(const float* x, Out* out, int16_t* exps,
                              const HbfpGatherLayout& layout, const HbfpParams& params,
                              KernelIsa isa);

}  // namespace mantissa::formats::detail
