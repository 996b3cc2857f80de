// fp32: identity (docs/formats.md "fp32"). No rounding, no overflow; NaN and Inf pass through.
// Only counts elements (and non-finite ones) when statistics are requested.
#include "formats/Fp32.h"

#include <cmath>

#include "formats/detail/Factories.h"
#include "formats/detail/GridFormat.h"

namespace mantissa::formats {

Tensor Fp32::quantize(const Tensor& x, const QuantizeArgs& args, FormatState*) const {
  if (args.stats) {
    Tensor c = detail::checkedInput(x, spec(), args);
    const float* p = c.data<float>();
    int64_t bad = 0;
    for (int64_t i = 0; i < c.numel(); ++i) bad += !std::isfinite(p[i]);
    args.stats->count += c.numel();
    args.stats->nonFinite += bad;
  } else {
    MANTISSA_CHECK(x.defined() && x.dtype() == DType::F32, "fp32: expected an f32 tensor at ",
                   detail::pointLabel(args));
  }
  return x;
}

Encoded Fp32::encode(const Tensor& x, const QuantizeArgs& args, FormatState* state) const {
  Tensor q = detail::checkedInput(quantize(x, args, state), spec(), args);
  return detail::elementwiseEncoded(spec(), q.shape(), q.clone().detach());
}

Tensor Fp32::decode(const Encoded& e) const {
  detail::checkEncoded(e, spec(), DType::F32);
  return e.codes.contiguous().clone().reshape(e.shape);
}

namespace detail {
FormatPtr makeFp32(SpecKeys& keys) {
  keys.finish({});
  return std::make_shared<Fp32>();
}
}  // namespace detail

}  // namespace mantissa::formats
