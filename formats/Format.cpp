// Default behaviour of the Format interface (formats/Format.h) that is not a format of its own:
// the bf16 GEMM path's operand (docs/ops.md "bf16 GEMM path", docs/formats.md "HBFP"). No
// rounding or saturation of its own: it is quantize() followed by the exactness-checking bf16
// conversion, which formats that can write the bf16 patterns directly override (Hbfp).
#include "formats/Format.h"

#include "core/ops/detail/Bf16.h"

namespace mantissa::formats {

Bf16Quantized Format::quantizeBf16(const Tensor& x, const QuantizeArgs& args,
                                   FormatState* state) const {
  Bf16Quantized r;
  static_assert(ops::detail::kNoNonZero == 255, "Bf16Quantized::minExponent's 'none'");
  r.values = quantize(x, args, state);
  ops::detail::Bf16Operand b = ops::detail::toBf16Exact(r.values);
  r.bits = std::move(b.bits);
  r.minExponent = b.minExponent;
  return r;
}

}  // namespace mantissa::formats
