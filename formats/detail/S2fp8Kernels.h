#pragma once

#include <cstdint>
#include <limits>

#include "formats/detail/KernelIsa.h"

namespace mantissa::formats::detail {

/// Statistics of a tensor over its non-zero finite elements. log2|x| = exponent + fraction;
/// exponents are summed exactly and fractions as integers in units of 2^-24, so the sums do not
/// depend on the summation order (threads, ISA).
struct S2fp8Scan {
  int64_t count = 0;      // non-zero finite elements
  int64_t nonFinite = 0;  // NaN / Inf elements
  int64_t sumExponent = 0;
  int64_t sumFraction = 0;  // sum of round(f * 2^24), f = log2 m, m in [0.75, 1.5)
  float minAbs = std::numeric_limits<float>::infinity();
  float maxAbs = 0.0f;
  /// mean log2|x| (0 when count = 0).
  double meanLog2() const;
};

S2fp8Scan s2fp8Scan(const float* x, int64_t n, KernelIsa isa);

/// log2|a| for finite a != 0 as the scan computes it: exponent (subnormals normalised) plus a
/// polynomial in s = (m-1)/(m+1) for the mantissa m in [0.75, 1.5). Tested max error
/// against std::log2 in tests/formats/S2fp8Test.cpp.
float s2fp8Log2(float a);

/// Number of E5M2 magnitude codes: 0x00 (zero) .. 0x7B (57344).
inline constexpr int kE5M2FiniteCodes = 124;
/// Magnitude of E5M2 code k in [0, 123] (exact).
double e5m2Magnitude(int k);

/// Per-(alpha, beta) tables. thresholds[k] (k = 1..123) is the smallest float |x| whose mapped
/// value 2^beta |x|^alpha rounds (RNE, ties to the even code) to E5M2 code >= k; thresholds[0]
/// = 0 and thresholds[124..127] = +Inf. values[k] = (v_k 2^-beta)^(1/alpha) rounded to float,
/// the decoded magnitude of code k.
struct S2fp8Tables {
  alignas(64) float thresholds[128];
  alignas(64) float values[128];
};
S2fp8Tables s2fp8Tables(float alpha, float beta);

/// Maps x through the tables: magnitude code c = max{k : |x| >= thresholds[k]}, sign kept.
/// Writes values (when `out` is non-null) and E5M2 codes (when `codes` is non-null; NaN ->
/// S.11111.11, Inf -> S.11111.00). NaN stays a quiet NaN with its sign, ±Inf stays ±Inf.
/// Returns the number of non-zero finite inputs that became zero. `mayHaveNonFinite` = false
/// (the scan found none) lets the kernel skip the NaN/Inf handling.
int64_t s2fp8Map(const float* x, float* out, uint8_t* codes, int64_t n, const S2fp8Tables& t,
                 KernelIsa isa, bool mayHaveNonFinite = true);

}  // namespace mantissa::formats::detail
