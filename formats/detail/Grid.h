#pragma once

#include <array>
#include <cstdint>

#include "formats/Format.h"

namespace mantissa::formats::detail {

/// The "grid" of a float-like format (FORMATS.md Part B §0): `m` explicit mantissa bits, the
/// smallest normal 2^minExponent (below it a fixed subnormal ulp 2^(minExponent - m)), a largest
/// finite magnitude and an overflow policy. One routine quantizes onto any such grid, so bf16,
/// fp16, E4M3, E5M2, FFP8 and the S2FP8 payload share the same (tested) rounding code.
/// Limits (checked): 0 <= m <= 21, -126 <= minExponent <= 127, minExponent - m >= -149.
struct FloatGrid {
  int mantissaBits = 0;
  /// Unbiased exponent of the smallest normal value.
  int minExponent = 0;
  /// Largest finite magnitude; a rounded result above it overflows.
  float maxFinite = 0.f;
  /// Overflow and ±Inf inputs become ±maxFinite.
  bool saturate = true;
  /// When not saturating: overflow gives ±Inf (true, IEEE/E5M2) or NaN (false, E4M3).
  bool infOnOverflow = false;
  /// NaN inputs give NaN. When false the format has no NaN: the caller must raise an error when
  /// quantizeGrid reports non-finite inputs (the output then holds NaN / ±maxFinite there).
  bool hasNan = true;
  /// False for unsigned grids (FFP8 with s=0): negative inputs clamp to +0 and count as saturated.
  bool isSigned = true;
};

/// Quantizes n floats onto `grid` (RNE, or stochastic rounding keyed by (seed, stream, step,
/// element index i in [0, n))). NaN outputs are the canonical quiet NaN with the input's sign.
/// Adds counters to `stats` when non-null and returns the number of non-finite inputs.
/// Vectorised with AVX-512 when the CPU has it (scalar otherwise, bit-identical results) and
/// parallel over the OpenMP team through parallelFor.
int64_t quantizeGrid(const float* in, float* out, int64_t n, const FloatGrid& grid,
                     Rounding rounding, uint64_t seed, uint64_t stream, uint64_t step,
                     QuantStats* stats);
/// The portable reference of quantizeGrid, written straight from the definition with
/// ilogb/ldexp/nearbyint (used by tests and on CPUs without AVX-512).
int64_t quantizeGridScalar(const float* in, float* out, int64_t n, const FloatGrid& grid,
                           Rounding rounding, uint64_t seed, uint64_t stream, uint64_t step,
                           QuantStats* stats);

/// Key of the stochastic-rounding stream of one quantization call.
struct StochasticKey {
  uint32_t k0 = 0, k1 = 0;
};
/// Philox key derived from (run seed, quantization point, step).
StochasticKey stochasticKey(uint64_t seed, uint64_t stream, uint64_t step);
/// 32 random bits for element `index`: word ((index >> 4) & 3) of
/// philox4x32(key, {c, c >> 32, 0, 0}) with c = ((index >> 6) << 4) | (index & 15), so that 16
/// SIMD lanes fill 64 consecutive elements from one Philox evaluation each. Pure function.
uint32_t stochasticBits(const StochasticKey& key, uint64_t index);

/// Bit layout of a small float code [sign][exponent][mantissa] (at most 8 bits) and which
/// codes are special.
enum class Specials : uint8_t {
  None,       // every code is finite (FFP8)
  OcpE4M3,    // only S.1111.111 is NaN, no Inf (OCP E4M3)
  Ieee,       // top exponent holds Inf (mantissa 0) and NaN (otherwise) (E5M2)
};
struct MiniFloat {
  int signBits = 1;  // 0 or 1
  int expBits = 4;
  int mantBits = 3;
  int bias = 7;
  Specials specials = Specials::OcpE4M3;

  /// Largest finite magnitude of the layout.
  float maxFinite() const;
  /// The layout's grid with the given overflow policy (saturate, or the layout's non-saturating
  /// behaviour: NaN for E4M3, Inf for IEEE, impossible for Specials::None).
  FloatGrid grid(bool saturate) const;
  /// Value of each of the 2^(s+e+m) codes (unused high codes of narrower layouts are NaN).
  std::array<float, 256> decodeTable() const;
};
/// OCP FP8 layouts (FORMATS.md Part B §1.1).
inline constexpr MiniFloat kE4M3{1, 4, 3, 7, Specials::OcpE4M3};
inline constexpr MiniFloat kE5M2{1, 5, 2, 15, Specials::Ieee};

/// Codes of values that are already on the layout's grid (outputs of quantizeGrid with
/// layout.grid(...)): NaN → S.all-ones (E4M3 0x7F/0xFF, E5M2 0x7F/0xFF), ±Inf → the Inf code.
/// AVX-512 when the CPU has it and `avx512` (tests pass false for the scalar reference); both
/// give the same codes.
void encodeMiniFloat(const float* q, uint8_t* codes, int64_t n, const MiniFloat& layout,
                     bool avx512 = true);
/// Table lookup of 8-bit codes: out[i] = table[codes[i]], bit for bit (NaN payloads included).
/// AVX-512 word permutes when the CPU has it and `avx512`.
void decodeTable(const uint8_t* codes, float* out, int64_t n, const std::array<float, 256>& table,
                 bool avx512 = true);
/// Codes → values: decodeTable with layout.decodeTable().
void decodeMiniFloat(const uint8_t* codes, float* out, int64_t n, const MiniFloat& layout,
                     bool avx512 = true);
/// Codes → the high 16 bits of their values (bfloat16 patterns; exact for the codes whose
/// values are FP32 normals, zeros, Inf or NaN: every value of the OCP layouts).
void decodeMiniFloatBf16(const uint8_t* codes, uint16_t* out, int64_t n, const MiniFloat& layout,
                         bool avx512 = true);

}  // namespace mantissa::formats::detail
