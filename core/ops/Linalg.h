#pragma once

#include "core/Tensor.h"

namespace mantissa {

/// Gradients of a GEMM layer's parameters, as returned by the raw backward-weights kernels.
/// `bias` is undefined when the kernel was asked for no bias gradient.
struct WeightGrads {
  Tensor weight;
  Tensor bias;
};

// ---- autograd ops -------------------------------------------------------------------------
// oneDNN matmul primitives (F32, strict math). Inputs may be any F32 views; outputs are new
// contiguous tensors. Each op records its backward when an input needs a gradient.

/// Matrix product, PyTorch `torch.matmul` for these ranks:
///   a [M, K]    · b [K, N]    -> [M, N]
///   a [B, M, K] · b [B, K, N] -> [B, M, N]   (batched)
///   a [B, M, K] · b [K, N]    -> [B, M, N]   (b shared by every batch)
Tensor matmul(const Tensor& a, const Tensor& b);

/// Fully connected layer, PyTorch `F.linear`: y = x · wᵀ + b with x [..., in], w [out, in],
/// b [out] or undefined (no bias); y is [..., out].
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b = Tensor());

// ---- raw GEMM kernels (no autograd) --------------------------------------------------------
// The building blocks of `matmul` and `linear`, public so that layers can quantize each GEMM's
// operands separately and call the kernels from their own backward closures. They never record
// on the graph (inputs are used detached).
//
// bf16 operands: the two matrix operands of a raw kernel (here and in core/ops/Conv.h) are
// either both F32 or both U16 tensors holding bfloat16 bit patterns (the high halves of FP32
// values, see ops::detail::toBf16Exact). bf16 operands run on oneDNN's bf16 primitives
// (AVX-512 BF16) with FP32 accumulation and an F32 result; a bias stays F32. Where oneDNN has
// only a reference kernel for a shape, the operands are widened back to F32 (exact) instead.

/// op(a) · op(b) for 2-D [M, K]·[K, N] or equal-batch 3-D operands. A transposed view (e.g.
/// `w.transpose(0, 1)`) is passed to oneDNN as strides without a copy; other non-contiguous
/// views are copied first.
Tensor gemm(const Tensor& a, const Tensor& b);

/// y = x · wᵀ + b for x [N, in], w [out, in], b [out] or undefined.
Tensor linearForward(const Tensor& x, const Tensor& w, const Tensor& b);
/// dL/dx = gradOut · w: gradOut [N, out], w [out, in] -> [N, in].
Tensor linearBackwardData(const Tensor& gradOut, const Tensor& w);
/// dL/dw = gradOutᵀ · x ([out, in]) and, when `withBias`, dL/db = Σ_N gradOut ([out]).
WeightGrads linearBackwardWeights(const Tensor& x, const Tensor& gradOut, bool withBias);

// ---- bf16 GEMM path switch (docs/ops.md "bf16 GEMM path") ----------------------------------

/// Counters of the dot-product layers' bf16 GEMM path since the last reset (process-wide).
struct Bf16GemmStats {
  /// GEMMs that ran on bf16 operands.
  int64_t bf16 = 0;
  /// GEMMs whose operand formats qualified but whose values did not (a low half not zero, an
  /// FP32 subnormal, or a product below 2^-126): they ran in FP32.
  int64_t inexact = 0;
  /// GEMMs given bf16 operands for a shape oneDNN has only a reference kernel for: widened to F32.
  int64_t noKernel = 0;
};
Bf16GemmStats bf16GemmStats();
void resetBf16GemmStats();

/// Turns the bf16 GEMM path of Linear/Conv2d/ConvTranspose2d on or off for the whole process
/// (default on: measured faster for every shape and recipe tried; the environment variable
/// MANTISSA_BF16_GEMM=0 starts with it off). Results are the same either way up to FP32
/// summation order; benchmarks and tests compare the two.
void setBf16GemmEnabled(bool on);
/// The switch, and false on CPUs without AVX-512 BF16.
bool bf16GemmEnabled();

// ---- int8 block-floating-point path switch (docs/performance.md "int8 block-floating-point
// path") -------------------------------------------------------------------------------------

/// Counters of the dot-product layers' int8 block-FP GEMMs since the last reset (process-wide).
struct Int8BfpStats {
  /// GEMMs that ran on the int8 mantissas of their two HBFP operands (ops::detail::bfpGemm).
  int64_t int8 = 0;
  /// GEMMs whose formats qualified but whose block exponents did not (a block product below
  /// 2^-126 or beyond FP32's range): they ran on the dequantized values in FP32.
  int64_t inexact = 0;
};
Int8BfpStats int8BfpStats();
void resetInt8BfpStats();

/// Turns the int8 block-FP path of Linear and Conv2d (DotProductLayer, layers/DotProduct.h) on
/// or off for the whole process: a GEMM whose two operands are HBFP with N <= 8 and the same
/// block size runs on AVX-512 VNNI integer dot products per block instead of FP32 or bf16
/// (plain loops on CPUs without VNNI). Results are the FP32 emulation's up to FP32 summation
/// order. Default: on where the CPU has AVX-512 VNNI, off elsewhere; MANTISSA_INT8_BFP=0|1 sets
/// the start-up value. Takes precedence over the bf16 path.
void setInt8BfpEnabled(bool on);
bool int8BfpEnabled();

}  // namespace mantissa
