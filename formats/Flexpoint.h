#pragma once

#include <memory>
#include <string>

#include "formats/Autoflex.h"
#include "formats/Format.h"

namespace mantissa::formats {

/// Options of flexN+M: N = `autoflex.mantissaBits`, M = `exponentBits`.
struct FlexpointOptions {
  /// M: width of the shared exponent. Only enters the storage figure (N + M / numel bits per
  /// value) and the default dec range [0, 2^M] (= the port's [0, 32] for M = 5).
  int exponentBits = 5;
  /// Mantissa width and the Autoflex constants.
  AutoflexConfig autoflex = {};
};

/// Flexpoint flexN+M (Köster et al., NIPS 2017; FORMATS.md §2): N-bit two's-complement integer
/// mantissas M in [-2^(N-1), 2^(N-1) - 1] and one shared power-of-two exponent per tensor,
/// value = M * 2^-dec. Rounding is RNE with saturation; there is no NaN or Inf (a non-finite
/// input is an error naming the quantization point). The exponent is chosen by the Autoflex
/// state (makeState(), one per tensor) from earlier writes; see Autoflex for the protocol.
/// Spec: `flex16+5[:history=16,sigmas=3,margin=100,rare_margin=4096,init_dec=8,init_tries=10,
/// dec_min=0,dec_max=32]` (keys equal to their defaults are omitted from spec()).
class Flexpoint : public Format {
 public:
  explicit Flexpoint(FlexpointOptions options = {});

  const FlexpointOptions& options() const { return options_; }
  int mantissaBits() const { return options_.autoflex.mantissaBits; }

  std::string spec() const override;
  /// N + M / numel.
  double bitsPerValue(const Shape& shape, int64_t blockAxis = -1) const override;
  /// A fresh Autoflex state.
  std::unique_ptr<FormatState> makeState() const override;
  /// One write of the tensor: the exponent comes from `state` (an Autoflex from makeState()),
  /// which is then advanced. A null state stands for a fresh one that is thrown away (the
  /// initialisation search alone picks the exponent for this tensor).
  Tensor quantize(const Tensor& x, const QuantizeArgs& args,
                  FormatState* state = nullptr) const override;
  /// Codes: I8 for N <= 8, I16 for N <= 16, I32 above; exponents: one I16 holding dec.
  Encoded encode(const Tensor& x, const QuantizeArgs& args,
                 FormatState* state = nullptr) const override;
  Encoded encodeWithValues(const Tensor& x, const QuantizeArgs& args, FormatState* state,
                           Tensor& values) const override;
  Tensor decode(const Encoded& e) const override;

  /// Quantizes with a fixed exponent (scale 2^-dec), leaving any Autoflex state alone: what one
  /// write does once its exponent is known. Non-finite inputs are an error naming `args`.
  Tensor quantizeWithDec(const Tensor& x, int dec, const QuantizeArgs& args = {}) const;

 private:
  /// encode, writing the values too when `values` is non-null (one pass for both).
  Encoded encodeInto(const Tensor& x, const QuantizeArgs& args, FormatState* state,
                     Tensor* values) const;

  FlexpointOptions options_;
};

}  // namespace mantissa::formats
