#pragma once

#include <cstdint>
#include <limits>

#include "formats/detail/KernelIsa.h"

namespace mantissa::formats::detail {

/// Statistics of a tensor over its non-zero finite elements. With |x| = m 2^e, m in [1, 2):
/// the exponents are summed exactly and the mantissas multiplied in double (16 lane products,
/// then log2 of each), so the sums are bit for bit the same on every ISA and thread count.
struct S2fp8Scan {
  int64_t count = 0;      // non-zero finite elements
  int64_t nonFinite = 0;  // NaN / Inf elements
  int64_t sumExponent = 0;
  double sumLog2Mantissa = 0.0;  // sum of log2 m (of the lane products)
  float minAbs = std::numeric_limits<float>::infinity();
  float maxAbs = 0.0f;
  /// mean log2|x| (0 when count = 0).
  double meanLog2() const;
};

S2fp8Scan s2fp8Scan(const float* x, int64_t n, KernelIsa isa);

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
/// Returns the number of elements with a non-zero magnitude code (NaN and Inf included), so the
/// non-zero finite inputs that became zero are scan.count + scan.nonFinite - that
/// (s2fp8Flushed). `mayHaveNonFinite` = false (the scan found none) lets the kernel skip the
/// NaN/Inf handling.
int64_t s2fp8Map(const float* x, float* out, uint8_t* codes, int64_t n, const S2fp8Tables& t,
                 KernelIsa isa, bool mayHaveNonFinite = true);

/// Lets the AVX-512 map use VBMI2 (vpshldd in the search) when `allow` and the CPU has it; the
/// default. Returns the previous setting. Tests turn it off to run the AVX-512 F/BW form too.
bool s2fp8UseVbmi2(bool allow);

/// Lets the AVX-512 map search on the top 16 bits of |x| with a one-step correction (32 lanes
/// per operation) when the tables allow it (no two reachable thresholds share their top 16 bits);
/// the default. Returns the previous setting. Tests turn it off to run the 32-bit search too.
bool s2fp8UseWordSearch(bool allow);

/// True when the 16-bit search gives exactly the 32-bit search's codes for these tables: the top
/// 16 bits of the finite thresholds T_0 = 0 < T_1 <= ... are strictly increasing.
bool s2fp8WordSearchApplies(const S2fp8Tables& t);

/// Non-zero finite inputs that s2fp8Map turned into zero, from the scan of the same input and
/// the map's count of non-zero codes.
inline int64_t s2fp8Flushed(const S2fp8Scan& scan, int64_t nonZeroCodes) {
  return scan.count + scan.nonFinite - nonZeroCodes;
}

}  // namespace mantissa::formats::detail
