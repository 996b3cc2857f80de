#pragma once

#include <cstdint>

#include "core/ops/detail/BfpGemm.h"

// int8 block-floating-point direct convolution (docs/performance.md "int8 convolution kernel"):
// a stride-1, "same"-padded 2-D convolution of two HBFP-quantized operands computed from their
// integer mantissas and per-block exponents, giving what the FP32 emulation gives on the
// dequantized values up to FP32 summation order (the contract of BfpGemm.h, whose mantissa
// recovery and exactness check it shares).
//
//   y[n, o, h, w] = Σ_t Σ_cb 2^(sa[n, ih, iw, cb] + sb[o, t, cb]) · Σ_{c in cb} x[n, c, ih, iw] ·
//   w[o, c, t]
//
// with (ih, iw) the input pixel that tap t = kh·k + kw reads (zero outside the image). The
// blocks of x run along C per pixel and those of w along C per (o, t) — the blocks of the
// forward GEMM of a convolution and, with the weight transposed and flipped, of its
// backward-data GEMM.
//
// AVX-512 VNNI kernel: 16 output channels per register, a row of 7 or 14 output pixels per
// register tile; each image of x is packed as u8 (mantissa + 128) in padded NHWC and convolved
// at once by the same thread, each vpdpbusd broadcasts 4 channels of one pixel against the s8
// weights of 16 output channels, and every
// (tap, block) accumulator starts at -128·Σw (which cancels the +128) and ends in one convert
// and one FMA with the scale 2^(sa+sb) read from a table indexed by the pixel's exponent. The
// tile is transposed in registers and stored as NCHW. A plain-loop kernel on the same packed
// data gives bit-identical results on CPUs without VNNI.

namespace mantissa::ops::detail {

/// The activation operand, contiguous NCHW [N, C, H, W], blocked along C per pixel (blocks of
/// `block` channels from channel 0; the last may be partial), given one of two ways:
///  - as its HBFP codes (Hbfp::encode along C; what the dot-product layers pass): `mantissas`
///    (int8, [N, C, H, W]) and `exponents` (the shared exponents e, int16, [N, ceil(C / block),
///    H, W]), packed by a byte transpose;
///  - as HBFP-quantized FP32 values (`values`), whose mantissas and exponents are recovered as
///    BfpSource's are (kept for callers without codes and as the tests' reference: both give
///    the same integers, so the same bits).
struct BfpConvInput {
  const float* values = nullptr;
  const int8_t* mantissas = nullptr;
  const int16_t* exponents = nullptr;
  int64_t N = 0, C = 0, H = 0, W = 0;
  int bits = 8;
};

/// The weight operand viewed as [O, C, k, k]: element (o, c, tap t = kh·k + kw) at
/// values[o·sO + c·sC + t·sT], blocked along C per (o, t). The forward weight [O, C, k, k] is
/// {sO = C·k², sC = k², sT = 1}; backward-data reads the same tensor with O and C swapped and the
/// taps reversed (values pointing at tap k² - 1, sT = -1). As for the input, either FP32 values
/// or codes: int8 `mantissas` at the same offsets as the values and int16 shared `exponents`, the
/// exponent of block cb of (o, t) at exponents[o·eO + cb·eCB + t·eT].
struct BfpConvWeight {
  const float* values = nullptr;
  const int8_t* mantissas = nullptr;
  const int16_t* exponents = nullptr;
  int64_t O = 0, C = 0, k = 1;
  int64_t sO = 0, sC = 0, sT = 1;
  int64_t eO = 0, eCB = 0, eT = 0;
  int bits = 8;
};

/// y[N, O, H, W] (NCHW, overwritten) = the convolution of x with w, stride 1, padding (k-1)/2
/// on each side, k odd (each operand as values or as codes). Returns false when the result could
/// not be the exact block products summed in FP32 (bfpExactRange: values off their grid, a block
/// product below 2^-126 or beyond FP32's range; y then holds no meaningful values) or, before
/// touching y, when its scale table (taps x blocks x about 230 activation exponents x output
/// channels) would exceed 16 MiB; the caller then runs the FP32 convolution.
bool bfpConv2d(const BfpConvInput& x, const BfpConvWeight& w, int64_t block, float* y,
               BfpIsa isa = bestBfpIsa());

}  // namespace mantissa::ops::detail
