#pragma once

#include <cstdint>

#include "core/ops/detail/BfpGemm.h"

// int8 block-floating-point weight gradient of a convolution (docs/performance.md "int8
// convolution kernel: weight gradient"): stride 1, "same" padding (k odd, padding (k-1)/2),
// groups 1, from the HBFP codes of the two operands of the weight-gradient GEMM (FORMATS.md A.3),
// giving what the FP32 emulation gives on the decoded values up to FP32 summation order (the
// contract of BfpGemm.h, whose exactness check it shares).
//
//   dw[o, c, ky, kx] = Σ_{n, y, x} gy[n, o, y, x] · x[n, c, y + ky - p, x + kx - p]
//
// Both operands are blocked along the flattened (n, h, w) index per channel: blocks of `block`
// consecutive positions from position 0, crossing rows and images, the last possibly partial.
// For tap t the x operand is x shifted by d = (ky - p)·W + (kx - p) positions, so the blocks of
// gy and of the shifted x do not line up: each gy block splits at offset r = (-d) mod block into
// at most two sub-blocks, each of which reads one x block (reads outside the image are zeros and
// do not matter). Every sub-block's integer dot product is exact in int32 and, scaled by
// 2^(sg + sx), exact in FP32 when it is an FP32 normal (bfpExactRange over the operands'
// exponent ranges, checked per call); those values are summed in FP32.
//
// Layout: both operands are packed once per call over the flattened positions, on which every
// tap is a constant offset d: x as u8 planes (mantissa + 128, with margins), gy as s8 in
// vpdpbusd's lane layout [p/4][16 o][4]. AVX-512 VNNI kernel: 16 output channels per register,
// 8 input channels per register tile; the gy load of each 4 positions is masked to the positions
// whose tap reads inside the image and, at sub-block edges, to the sub-block (zero mantissas
// elsewhere, so partial groups stay exact); the +128 of x is cancelled with Σ gy of the
// sub-block, summed by one more vpdpbusd per group in the first input-channel tile.
// Positions are split into a fixed number of parts whose partial dw are summed in part order, so
// results do not depend on the thread count. A plain-loop kernel on the same planes gives
// bit-identical results on CPUs without VNNI.

namespace mantissa::ops::detail {

/// The two operands of the weight gradient as HBFP codes blocked along (n, h, w) per channel
/// (Hbfp::encode with blockAxes N, H, W): I8 mantissas of x [N, C, H, W] and gy [N, O, H, W]
/// (contiguous NCHW; stride 1, so gy has x's spatial size) and their I16 block exponents e,
/// [channel, block] (value = m · 2^(e - (bits - 1))).
struct BfpWeightGradArgs {
  const int8_t* x = nullptr;
  const int16_t* xExps = nullptr;
  const int8_t* gy = nullptr;
  const int16_t* gyExps = nullptr;
  int64_t N = 0, C = 0, O = 0, H = 0, W = 0, k = 3;
  int bitsX = 8, bitsGy = 8;
};

/// dw [O, C, k, k] (contiguous, overwritten) = the weight gradient above. Returns false, leaving
/// dw untouched, when the result could not be the exact sub-block products summed in FP32
/// (a product below 2^-126 or beyond FP32's range, blocks over 1024
/// positions, a padded grid too large for 32-bit offsets); the caller then runs the FP32 path.
bool bfpConv2dBackwardWeights(const BfpWeightGradArgs& a, int64_t block, float* dw,
                              BfpIsa isa = bestBfpIsa());

}  // namespace mantissa::ops::detail
