#pragma once

#include "formats/detail/GridFormat.h"

namespace mantissa::formats {

/// `bf16[:round=stochastic]`: bfloat16 (1 sign, 8 exponent, 7 mantissa bits; FP32's range).
/// Round to nearest even on the low 16 bits exactly like a hardware FP32→bf16 cast, subnormals
/// kept, overflow to ±Inf, NaN stays NaN. Codes are the upper 16 bits of the FP32 pattern (U16).
class Bfloat16 final : public detail::GridFormat {
 public:
  explicit Bfloat16(Rounding rounding = Rounding::NearestEven);
  /// The bf16 grid: m = 7, min normal 2^-126, max (2 - 2^-7)·2^127, overflow to Inf.
  static detail::FloatGrid bf16Grid();

  std::string spec() const override;
  double bitsPerValue(const Shape&, int64_t = -1) const override { return 16.0; }
  int significandBits() const override { return 8; }
  Encoded encode(const Tensor& x, const QuantizeArgs& args,
                 FormatState* state = nullptr) const override;
  Encoded encodeWithValues(const Tensor& x, const QuantizeArgs& args, FormatState* state,
                           Tensor& values) const override;
  Tensor decode(const Encoded& e) const override;
  Tensor decodeBf16(const Encoded& e) const override;
};

}  // namespace mantissa::formats
