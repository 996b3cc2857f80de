#pragma once

#include <cstdint>

#include "core/Tensor.h"

// Plumbing of the bf16 GEMM path (docs/ops.md "bf16 GEMM path"): the exactness-checking
// FP32 -> bf16 conversion, the widening back, and the counters. No oneDNN types here, so layers
// and tests may include it.

namespace mantissa::ops::detail {

/// Biased FP32 exponent field (0..255) of the smallest non-zero magnitude of a tensor; 255 when
/// every element is zero.
constexpr uint32_t kNoNonZero = 255;

/// A tensor converted to bfloat16 bit patterns (U16, same shape, contiguous), or undefined
/// `bits` when the conversion was not exact.
struct Bf16Operand {
  Tensor bits;
  /// Exponent field of the smallest non-zero |value| (kNoNonZero if all zero).
  uint32_t minExponent = kNoNonZero;
  bool exact() const { return bits.defined(); }
};

/// Converts an F32 tensor to bf16 by taking the high 16 bits of every value, in one pass that
/// also ORs the low 16 bits and finds the smallest exponent. The result is defined only when
/// it is exact AND usable by the hardware: every low half is zero and no value is an FP32
/// subnormal (VDPBF16PS treats bf16 denormal inputs as zero, so a subnormal that bf16 holds
/// exactly would still be lost). Inf and NaN patterns with zero low halves pass unchanged.
Bf16Operand toBf16Exact(const Tensor& x);

/// Whether every product of a non-zero value of `a` and one of `b` is an FP32 normal number
/// (|a·b| >= 2^-126): VDPBF16PS flushes denormal results to zero, the FP32 kernels do not.
/// Products of two bf16 values are otherwise exact in FP32 (8 x 8 significant bits).
inline bool bf16ProductsNormal(const Bf16Operand& a, const Bf16Operand& b) {
  // |v| >= 2^(E - 127) for exponent field E >= 1, so |a·b| >= 2^(Ea + Eb - 254).
  return a.minExponent + b.minExponent >= 128;
}

/// bf16 bit patterns (U16) back to F32: exact (the low halves become zero).
Tensor widenBf16(const Tensor& bits);

/// Whether `t` holds bf16 bit patterns (U16) rather than F32 values: the operand convention of
/// the raw GEMM kernels (core/ops/Conv.h, core/ops/Linalg.h).
inline bool isBf16Bits(const Tensor& t) { return t.defined() && t.dtype() == DType::U16; }

/// Counts one GEMM (thread-safe). See mantissa::Bf16GemmStats.
void countBf16Gemm();
void countBf16Inexact();
void countBf16NoKernel();

}  // namespace mantissa::ops::detail
