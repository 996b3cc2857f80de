#pragma once

#include <string>

#include "formats/Format.h"
#include "formats/detail/Grid.h"
#include "formats/detail/Spec.h"

namespace mantissa::formats::detail {

/// The `round=nearest|stochastic` option shared by the formats that offer stochastic rounding.
Rounding takeRounding(SpecKeys& keys);
/// ",round=stochastic" suffix helper for canonical specs (defaults are omitted).
std::string roundingSuffix(Rounding r, bool first);

/// The F32 tensor a quantizer works on: checks the dtype (naming the format and the point) and
/// returns a contiguous version.
Tensor checkedInput(const Tensor& x, const std::string& spec, const QuantizeArgs& args);
/// "'layer1.conv.activation'" or "(unnamed quantization point)" for messages.
std::string pointLabel(const QuantizeArgs& args);
/// An Encoded holding one code per element (the elementwise formats).
Encoded elementwiseEncoded(std::string spec, const Shape& shape, Tensor codes);
/// Checks that `e` was produced by a format spelled `spec` with codes of `dtype`, one per element.
void checkEncoded(const Encoded& e, const std::string& spec, DType dtype);

/// Base of the elementwise formats that sit on one FloatGrid (bf16, fp16, E4M3, E5M2, FFP8):
/// quantize runs the shared grid quantizer and, for grids without NaN, turns non-finite inputs
/// into an error naming the quantization point.
class GridFormat : public Format {
 public:
  GridFormat(FloatGrid grid, Rounding rounding) : grid_(grid), rounding_(rounding) {}
  Tensor quantize(const Tensor& x, const QuantizeArgs& args,
                  FormatState* state = nullptr) const override;

  const FloatGrid& grid() const { return grid_; }
  Rounding rounding() const { return rounding_; }

 protected:
  FloatGrid grid_;
  Rounding rounding_;
};

}  // namespace mantissa::formats::detail
