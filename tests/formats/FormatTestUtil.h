#pragma once

// Helpers shared by the format tests. The reference decoder here is written from the format
// definitions (sign/exponent/mantissa fields and ldexp), independently of formats/detail/Grid.

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "core/Tensor.h"
#include "formats/Format.h"

namespace mantissa::formats::testutil {

enum class RefSpecials { None, OcpE4M3, Ieee };

/// Value of `code` in the layout [s sign bits][e exponent bits][m mantissa bits] with `bias`.
inline double refDecode(unsigned code, int s, int e, int m, int bias, RefSpecials sp) {
  unsigned mant = code & ((1u << m) - 1u);
  unsigned expo = (code >> m) & ((1u << e) - 1u);
  bool neg = s == 1 && ((code >> (m + e)) & 1u);
  unsigned topExp = (1u << e) - 1u;
  double sign = neg ? -1.0 : 1.0;
  if (sp == RefSpecials::Ieee && expo == topExp) {
    return mant == 0 ? sign * std::numeric_limits<double>::infinity()
                     : std::copysign(std::numeric_limits<double>::quiet_NaN(), sign);
  }
  if (sp == RefSpecials::OcpE4M3 && expo == topExp && mant == (1u << m) - 1u) {
    return std::copysign(std::numeric_limits<double>::quiet_NaN(), sign);
  }
  if (expo == 0) return sign * std::ldexp(static_cast<double>(mant), 1 - bias - m);
  return sign * std::ldexp(static_cast<double>((1u << m) | mant), static_cast<int>(expo) - bias - m);
}

inline uint32_t bitsOf(float f) { return std::bit_cast<uint32_t>(f); }
inline float floatOf(uint32_t u) { return std::bit_cast<float>(u); }

/// Bitwise equality, treating any two NaNs of the same sign as equal.
inline bool sameFloat(float a, float b) {
  if (std::isnan(a) || std::isnan(b)) {
    return std::isnan(a) && std::isnan(b) && std::signbit(a) == std::signbit(b);
  }
  return bitsOf(a) == bitsOf(b);
}

/// quantize() of a list of values, as a vector.
inline std::vector<float> quantizeValues(const Format& f, const std::vector<float>& v,
                                         QuantStats* stats = nullptr) {
  QuantizeArgs args;
  args.stats = stats;
  auto state = f.makeState();
  return f.quantize(Tensor::fromVector(v), args, state.get()).toVector<float>();
}

inline float quantizeOne(const Format& f, float x) { return quantizeValues(f, {x})[0]; }

/// The 8-bit codes encode() gives for a list of values.
inline std::vector<uint8_t> encodeValues(const Format& f, const std::vector<float>& v) {
  QuantizeArgs args;
  auto state = f.makeState();
  return f.encode(Tensor::fromVector(v), args, state.get()).codes.toVector<uint8_t>();
}

/// decode() of all 256 codes of an 8-bit format whose Encoded spec is `spec`.
inline std::vector<float> decodeAllCodes(const Format& f, const std::string& spec) {
  Tensor codes = Tensor::empty({256}, DType::U8);
  for (int c = 0; c < 256; ++c) codes.data<uint8_t>()[c] = static_cast<uint8_t>(c);
  Encoded e;
  e.spec = spec;
  e.shape = {256};
  e.codes = codes;
  return f.decode(e).toVector<float>();
}

}  // namespace mantissa::formats::testutil
