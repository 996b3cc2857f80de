#pragma once

#include "formats/detail/GridFormat.h"

namespace mantissa::formats {

/// `fp16[:round=stochastic]`: IEEE-754 binary16 (1 sign, 5 exponent, 10 mantissa bits, bias
/// 15). RNE through the F16C conversion instruction (exact IEEE), subnormals kept, overflow to
/// ±Inf (values from 65520 up), NaN stays NaN. Stochastic rounding uses the shared grid
/// quantizer. Codes are the binary16 patterns (U16).
class Fp16 final : public detail::GridFormat {
 public:
  explicit Fp16(Rounding rounding = Rounding::NearestEven);
  /// The binary16 grid: m = 10, min normal 2^-14, max 65504, overflow to Inf.
  static detail::FloatGrid fp16Grid();

  std::string spec() const override;
  double bitsPerValue(const Shape&, int64_t = -1) const override { return 16.0; }
  Tensor quantize(const Tensor& x, const QuantizeArgs& args,
                  FormatState* state = nullptr) const override;
  Encoded encode(const Tensor& x, const QuantizeArgs& args,
                 FormatState* state = nullptr) const override;
  Encoded encodeWithValues(const Tensor& x, const QuantizeArgs& args, FormatState* state,
                           Tensor& values) const override;
  Tensor decode(const Encoded& e) const override;
};

namespace detail {
/// The RNE path of Fp16::quantize: binary16 round trip through F16C, NaNs made canonical, run
/// over the OpenMP team. `avx512` picks the 16-lane kernel, otherwise the 8-lane AVX2 one (the
/// x86-64-v3 baseline); both give identical results (exposed so tests can check that).
void fp16RoundTrip(const float* in, float* out, int64_t n, bool avx512, QuantStats* stats);
}  // namespace detail

}  // namespace mantissa::formats
