// OCP FP8 E4M3 / E5M2 (docs/formats.md "e4m3, e5m2"; Micikevicius et al. 2022, "FP8 Formats for
// Deep Learning", and the OCP OFP8 spec; FORMATS.md A.1 and Part B §1.1, §10.1-10.2).
// Rounding: RNE on the shared grid (or stochastic). Overflow: saturating to ±448 / ±57344 by
// default, as the OCP saturating mode (±Inf inputs too); with sat=0 E4M3 gives NaN and E5M2 ±Inf.
// Note the grid rounds in the virtual binade above max (E4M3 470 → 480), so "overflow" means
// "rounds above max", not "input above max": 460 and 464 still give 448 (§10.1).
#include "formats/Fp8.h"

#include "formats/detail/Factories.h"

namespace mantissa::formats {

Fp8::Fp8(Kind kind, bool saturate, Rounding rounding)
    : GridFormat((kind == Kind::E4M3 ? detail::kE4M3 : detail::kE5M2).grid(saturate), rounding),
      kind_(kind),
      layout_(kind == Kind::E4M3 ? detail::kE4M3 : detail::kE5M2) {}

std::string Fp8::spec() const {
  std::string s = kind_ == Kind::E4M3 ? "e4m3" : "e5m2";
  bool first = true;
  if (!grid_.saturate) {
    s += ":sat=0";
    first = false;
  }
  return s + detail::roundingSuffix(rounding_, first);
}

Encoded Fp8::encode(const Tensor& x, const QuantizeArgs& args, FormatState* state) const {
  Tensor q;
  return encodeWithValues(x, args, state, q);
}

Encoded Fp8::encodeWithValues(const Tensor& x, const QuantizeArgs& args, FormatState* state,
                              Tensor& q) const {
  q = quantize(x, args, state);
  Tensor codes = Tensor::uninitialized(q.shape(), DType::U8);
  detail::encodeMiniFloat(q.data<float>(), codes.data<uint8_t>(), q.numel(), layout_);
  return detail::elementwiseEncoded(spec(), q.shape(), codes);
}

Tensor Fp8::decode(const Encoded& e) const {
  detail::checkEncoded(e, spec(), DType::U8);
  Tensor codes = e.codes.contiguous();
  Tensor out = Tensor::uninitialized(e.shape);
  detail::decodeMiniFloat(codes.data<uint8_t>(), out.data<float>(), out.numel(), layout_);
  return out;
}

Tensor Fp8::decodeBf16(const Encoded& e) const {
  detail::checkEncoded(e, spec(), DType::U8);
  Tensor codes = e.codes.contiguous();
  Tensor out = Tensor::uninitialized(e.shape, DType::U16);
  detail::decodeMiniFloatBf16(codes.data<uint8_t>(), out.data<uint16_t>(), out.numel(), layout_);
  return out;
}

namespace detail {
FormatPtr makeFp8(SpecKeys& keys) {
  Fp8::Kind kind = keys.head() == "e4m3" ? Fp8::Kind::E4M3 : Fp8::Kind::E5M2;
  bool sat = keys.getInt("sat", 1, 0, 1) == 1;
  Rounding r = takeRounding(keys);
  keys.finish({"sat", "round"});
  return std::make_shared<Fp8>(kind, sat, r);
}
}  // namespace detail

}  // namespace mantissa::formats
