#pragma once

#include "formats/Format.h"

namespace mantissa::formats {

/// `fp32`: the identity format, the baseline of every comparison. quantize returns its input
/// unchanged (no copy); the packed codes are the float32 values themselves.
class Fp32 final : public Format {
 public:
  std::string spec() const override { return "fp32"; }
  double bitsPerValue(const Shape&, int64_t = -1) const override { return 32.0; }
  bool isIdentity() const override { return true; }
  Tensor quantize(const Tensor& x, const QuantizeArgs& args,
                  FormatState* state = nullptr) const override;
  Encoded encode(const Tensor& x, const QuantizeArgs& args,
                 FormatState* state = nullptr) const override;
  Tensor decode(const Encoded& e) const override;
};

}  // namespace mantissa::formats
