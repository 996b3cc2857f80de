#pragma once

#include "formats/detail/GridFormat.h"

namespace mantissa::formats {

/// OCP 8-bit floats `e4m3` and `e5m2` (Micikevicius et al. 2022; FORMATS.md Part B §1.1).
/// E4M3: bias 7, max 448, no Inf, NaN = S.1111.111. E5M2: bias 15, max 57344, IEEE Inf/NaN.
/// RNE (or `round=stochastic`), subnormals kept. Saturating by default (overflow and ±Inf →
/// ±max); `sat=0` gives the non-saturating behaviour (E4M3 → NaN, E5M2 → ±Inf). Codes are U8.
class Fp8 final : public detail::GridFormat {
 public:
  enum class Kind : uint8_t { E4M3, E5M2 };
  Fp8(Kind kind, bool saturate = true, Rounding rounding = Rounding::NearestEven);

  Kind kind() const { return kind_; }
  bool saturating() const { return grid_.saturate; }
  const detail::MiniFloat& layout() const { return layout_; }

  /// "e4m3", "e4m3:sat=0", "e5m2:round=stochastic", "e5m2:sat=0,round=stochastic".
  std::string spec() const override;
  double bitsPerValue(const Shape&, int64_t = -1) const override { return 8.0; }
  int significandBits() const override { return kind_ == Kind::E4M3 ? 4 : 3; }
  Encoded encode(const Tensor& x, const QuantizeArgs& args,
                 FormatState* state = nullptr) const override;
  Encoded encodeWithValues(const Tensor& x, const QuantizeArgs& args, FormatState* state,
                           Tensor& values) const override;
  Tensor decode(const Encoded& e) const override;
  Tensor decodeBf16(const Encoded& e) const override;

 private:
  Kind kind_;
  detail::MiniFloat layout_;
};

}  // namespace mantissa::formats
