#pragma once

#include <string>

#include "formats/Format.h"

namespace mantissa::formats {

/// Options of hbfpN.
struct HbfpOptions {
  /// N: mantissa width including the sign bit, 2..24 (hbfp8 = sign + 7 magnitude bits, the
  /// emulator's mant_bits = 7).
  int bits = 8;
  /// Values per shared exponent, consecutive along QuantizeArgs::blockAxis.
  int64_t block = 64;
  Rounding rounding = Rounding::NearestEven;
};

/// HBFP block floating point (Drumond et al., NeurIPS 2018; Accuracy Boosters, Harma et al.;
/// FORMATS.md A.3, §3): blocks of `block` consecutive values along `args.blockAxis` (any axis
/// of any rank; the last block of each line may be shorter) share one exponent
/// e = ceil(log2 max|x|) (exact, no eps), ulp = 2^(e - (N-1)), mantissas rounded (RNE or
/// stochastic) and clamped to ±(2^(N-1) - 1). The shared exponent has 8 bits: e is clamped to
/// [-126, 128]; blocks below 2^-126 use e = -126 (gradual underflow). No NaN/Inf: non-finite
/// input is an error naming the quantization point. Stateless.
/// Spec: `hbfp8[:block=64,round=nearest|stochastic]`.
class Hbfp : public Format {
 public:
  explicit Hbfp(HbfpOptions options = {});

  const HbfpOptions& options() const { return options_; }

  std::string spec() const override;
  /// N + 8 * numBlocks / numel (the last, partial block of each line counted as a block).
  double bitsPerValue(const Shape& shape, int64_t blockAxis = -1) const override;
  bool isBlocked() const override { return true; }
  /// N - 1: the magnitude of a mantissa is below 2^(N-1).
  int significandBits() const override { return options_.bits - 1; }
  Tensor quantize(const Tensor& x, const QuantizeArgs& args,
                  FormatState* state = nullptr) const override;
  /// N <= 9: one pass that writes the bf16 patterns of the values (detail::Bf16Bits) and finds
  /// their smallest exponent; wider: quantize, then convert (the default).
  Bf16Quantized quantizeBf16(const Tensor& x, const QuantizeArgs& args,
                             FormatState* state = nullptr) const override;
  /// Codes: mantissas (I8 for N <= 8, I16 for N <= 16, I32 above) in the tensor's shape;
  /// exponents: I16, the tensor's shape with the block axis shortened to the number of blocks.
  Encoded encode(const Tensor& x, const QuantizeArgs& args,
                 FormatState* state = nullptr) const override;
  Tensor decode(const Encoded& e) const override;

 private:
  HbfpOptions options_;
};

}  // namespace mantissa::formats
