#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "formats/Format.h"

namespace mantissa::formats {

/// Squeeze and shift of one S2FP8 conversion (FORMATS.md §4.1), with the statistics they came
/// from. alpha and beta are stored as FP32, as the paper keeps them.
struct S2fp8Params {
  float alpha = 1.0f;
  float beta = 0.0f;
  double meanLog2 = 0.0;  // mu over the non-zero finite elements
  double maxLog2 = 0.0;   // m
  int64_t count = 0;      // non-zero finite elements
};

/// S2FP8 per-tensor state: the parameters of the last conversion (for logs and checkpoints) and
/// the number of conversions. The statistics are recomputed at every conversion (§4.2); the
/// state never influences the result.
class S2fp8State : public FormatState {
 public:
  const S2fp8Params& last() const { return last_; }
  int64_t conversions() const { return conversions_; }
  void record(const S2fp8Params& p);

  std::unique_ptr<FormatState> clone() const override;
  void saveState(io::StateDict& out, const std::string& prefix) const override;
  void loadState(const io::StateDict& in, const std::string& prefix) override;
  std::string describe() const override;
  /// "alpha", "beta", "mean_log2", "max_log2".
  std::vector<std::pair<std::string, double>> metrics() const override;

 private:
  S2fp8Params last_;
  int64_t conversions_ = 0;
};

/// S2FP8 (Cambier et al., "Shifted and Squeezed 8-bit Floating Point Format for Low-Precision
/// Training of Deep Neural Networks", ICLR 2020): an E5M2 payload Y with |Y| = 2^beta |X|^alpha
/// (sign kept), alpha = 15 / (m - mu), beta = -alpha mu, where mu and m are the mean and max of
/// log2|X| over the non-zero finite elements; decode |X| = (|Y| 2^-beta)^(1/alpha). The payload
/// is the RNE (ties to even) rounding of the exact map. Guards: no non-zero finite element ->
/// alpha = 1, beta = 0; m - mu < 2^-20 (constant magnitude) -> alpha = 1, beta = -m (the
/// magnitude maps to 1). Zeros stay (signed) zeros, NaN stays NaN and ±Inf stays ±Inf (E5M2 has
/// both); non-finite elements are left out of the statistics. Spec: `s2fp8`.
class S2fp8 : public Format {
 public:
  S2fp8() = default;

  std::string spec() const override { return "s2fp8"; }
  /// 8 + 64 / numel (two FP32 scalars per tensor).
  double bitsPerValue(const Shape& shape, int64_t blockAxis = -1) const override;
  std::unique_ptr<FormatState> makeState() const override;
  /// Computes alpha and beta from x, maps, rounds and decodes. Records them in `state` (an
  /// S2fp8State, optional).
  Tensor quantize(const Tensor& x, const QuantizeArgs& args,
                  FormatState* state = nullptr) const override;
  /// Codes: U8 E5M2 payload (S.EEEEE.MM); scalars: {alpha, beta}.
  Encoded encode(const Tensor& x, const QuantizeArgs& args,
                 FormatState* state = nullptr) const override;
  Encoded encodeWithValues(const Tensor& x, const QuantizeArgs& args, FormatState* state,
                           Tensor& values) const override;
  Tensor decode(const Encoded& e) const override;

  /// The squeeze and shift S2FP8 uses for x (the statistics pass alone).
  static S2fp8Params paramsFor(const Tensor& x);

 private:
  /// The one conversion pass behind quantize and encode: statistics, tables, and the map writing
  /// the values and/or the codes (whichever pointer is non-null); records the parameters in
  /// `state` and counts into args.stats. Returns the parameters.
  S2fp8Params convert(const Tensor& x, const QuantizeArgs& args, FormatState* state, Tensor* values,
                      Tensor* codes) const;
  /// encode, writing the values too when `values` is non-null (one map pass for both).
  Encoded encodeInto(const Tensor& x, const QuantizeArgs& args, FormatState* state,
                     Tensor* values) const;
};

}  // namespace mantissa::formats
