// bfloat16 (docs/formats.md "bf16"; Kalamkar et al. 2019, "A Study of BFLOAT16 for Deep
// Learning Training"; FORMATS.md Part B §1.2). Rounding: RNE on the low 16 bits of the FP32
// pattern (or stochastic), subnormals kept — unlike the AVX-512 BF16 convert instruction, which
// flushes them, so it is not used here. Overflow: ±Inf (no saturation), NaN stays NaN.
#include "formats/Bfloat16.h"

#include <cmath>

#include "core/parallel/ParallelFor.h"
#include "formats/detail/Factories.h"

namespace mantissa::formats {

detail::FloatGrid Bfloat16::bf16Grid() {
  return detail::FloatGrid{.mantissaBits = 7,
                           .minExponent = -126,
                           .maxFinite = std::ldexp(2.f - std::ldexp(1.f, -7), 127),
                           .saturate = false,
                           .infOnOverflow = true,
                           .hasNan = true,
                           .isSigned = true};
}

Bfloat16::Bfloat16(Rounding rounding) : GridFormat(bf16Grid(), rounding) {}

std::string Bfloat16::spec() const { return "bf16" + detail::roundingSuffix(rounding_, true); }

Encoded Bfloat16::encode(const Tensor& x, const QuantizeArgs& args, FormatState* state) const {
  Tensor q;
  return encodeWithValues(x, args, state, q);
}

Encoded Bfloat16::encodeWithValues(const Tensor& x, const QuantizeArgs& args, FormatState* state,
                                   Tensor& q) const {
  q = quantize(x, args, state);
  Tensor codes = Tensor::uninitialized(q.shape(), DType::U16);
  // A quantized value has zero low 16 bits (NaN is the canonical quiet NaN), so the code is
  // just the upper half of the pattern.
  const uint32_t* src = reinterpret_cast<const uint32_t*>(q.data<float>());
  uint16_t* dst = codes.data<uint16_t>();
  parallelFor(0, q.numel(), 1 << 16, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) dst[i] = static_cast<uint16_t>(src[i] >> 16);
  });
  return detail::elementwiseEncoded(spec(), q.shape(), codes);
}

Tensor Bfloat16::decode(const Encoded& e) const {
  detail::checkEncoded(e, spec(), DType::U16);
  Tensor codes = e.codes.contiguous();
  Tensor out = Tensor::uninitialized(e.shape);
  const uint16_t* src = codes.data<uint16_t>();
  uint32_t* dst = reinterpret_cast<uint32_t*>(out.data<float>());
  parallelFor(0, out.numel(), 1 << 16, [&](int64_t b, int64_t e2) {
    for (int64_t i = b; i < e2; ++i) dst[i] = static_cast<uint32_t>(src[i]) << 16;
  });
  return out;
}

Tensor Bfloat16::decodeBf16(const Encoded& e) const {
  detail::checkEncoded(e, spec(), DType::U16);
  return e.codes.contiguous();  // the codes are the bf16 patterns
}

namespace detail {
FormatPtr makeBf16(SpecKeys& keys) {
  Rounding r = takeRounding(keys);
  keys.finish({"round"});
  return std::make_shared<Bfloat16>(r);
}
}  // namespace detail

}  // namespace mantissa::formats
