#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "formats/detail/GridFormat.h"

namespace mantissa::formats {

/// One FFP8 configuration (Huang et al. 2021, "All-You-Can-Fit 8-Bit Flexible Floating-Point
/// Format"): s sign bits (0 or 1), e exponent bits, f fraction bits with s + e + f = 8, and any
/// integer exponent bias b. No Inf/NaN: every code is finite; E = 0 codes are subnormals
/// 0.F·2^(1-b). e = 0 is allowed and gives a scaled fixed-point format.
struct Ffp8Params {
  int s = 1, e = 4, f = 3, b = 7;

  /// "ffp8:e=4,f=3,b=7,s=1" (all four keys, always).
  std::string spec() const;
  detail::MiniFloat layout() const;
  /// Largest representable magnitude: (2 - 2^-f)·2^(2^e - 1 - b) (e >= 1).
  float maxValue() const;
  /// Biases whose whole range fits the FP32 emulation (min normal >= 2^-126, max < 2^128) for
  /// this (e, f): [2^e - 128, 127] for e >= 1, [-126, 127] for e = 0.
  static std::pair<int, int> biasRange(int e);
  /// Throws (quoting `context`) unless s + e + f = 8, s ∈ {0,1}, 0 <= e <= 7 and b in range.
  void validate(const std::string& context) const;
  bool operator==(const Ffp8Params&) const = default;
};

/// `ffp8:e=..,f=..,b=..,s=..`: a fixed FFP8 format. RNE, saturating to ±max (unsigned: negative
/// inputs clamp to 0), values below half the smallest subnormal flush to zero. A NaN or Inf
/// input is an error naming the quantization point. Codes are U8 ([s][e][f], msb first).
class Ffp8 final : public detail::GridFormat {
 public:
  explicit Ffp8(Ffp8Params params);
  const Ffp8Params& params() const { return params_; }

  std::string spec() const override { return params_.spec(); }
  double bitsPerValue(const Shape&, int64_t = -1) const override { return 8.0; }
  /// f + 1 (implicit bit) with an exponent field, f (<= 8) for the fixed-point e = 0.
  int significandBits() const override { return params_.e > 0 ? params_.f + 1 : params_.f; }
  Encoded encode(const Tensor& x, const QuantizeArgs& args,
                 FormatState* state = nullptr) const override;
  Encoded encodeWithValues(const Tensor& x, const QuantizeArgs& args, FormatState* state,
                           Tensor& values) const override;
  Tensor decode(const Encoded& e) const override;
  Tensor decodeBf16(const Encoded& e) const override;

 private:
  Ffp8Params params_;
};

/// One candidate of a calibration: a configuration and its mean squared error on the samples.
struct Ffp8Candidate {
  Ffp8Params params;
  double mse = 0.0;
};

/// Result of calibrateFfp8.
struct Ffp8Calibration {
  Ffp8Params best;
  double mse = 0.0;                     // of `best`
  std::vector<Ffp8Candidate> candidates;  // one per exponent width, in order of e
  double maxAbs = 0.0;                  // observed max |x|
  bool nonNegative = false;             // every sample >= 0, so the sign bit was dropped
  int64_t count = 0;                    // values seen
};

/// FFP8 calibration (FORMATS.md A.4): drop the sign bit when every value is >= 0 and give it to
/// the fraction; for each exponent width e = 1..7 (f = 8 - s - e) take the largest bias whose
/// max representable value still covers the observed max |x| (clamped to the allowed range);
/// keep the configuration with the lowest mean squared error over all samples (ties: fewer
/// exponent bits). Throws on empty or non-finite samples, naming the sample.
Ffp8Calibration calibrateFfp8(const std::vector<Tensor>& samples);

/// State of `ffp8:auto`: the configuration chosen on the first tensor seen (checkpointed).
class Ffp8AutoState final : public FormatState {
 public:
  std::optional<Ffp8Params> chosen;
  double mse = 0.0;  // calibration error of the chosen configuration

  std::unique_ptr<FormatState> clone() const override;
  void saveState(io::StateDict& out, const std::string& prefix) const override;
  void loadState(const io::StateDict& in, const std::string& prefix) override;
  std::string describe() const override;
  std::vector<std::pair<std::string, double>> metrics() const override;
};

/// `ffp8:auto`: the first quantize calibrates (calibrateFfp8) on the tensor it is given and
/// stores the choice in its Ffp8AutoState; later calls reuse it, so weights and activations
/// each get their own configuration per quantization point. Needs the state from makeState().
/// encode() records the chosen fixed spec (e.g. "ffp8:e=3,f=5,b=4,s=0") in Encoded::spec, so
/// the codes decode without the state.
class Ffp8Auto final : public Format {
 public:
  std::string spec() const override { return "ffp8:auto"; }
  double bitsPerValue(const Shape&, int64_t = -1) const override { return 8.0; }
  /// Every candidate has s + e + f = 8, so at most 8 significant bits.
  int significandBits() const override { return 8; }
  std::unique_ptr<FormatState> makeState() const override;
  Tensor quantize(const Tensor& x, const QuantizeArgs& args,
                  FormatState* state = nullptr) const override;
  Encoded encode(const Tensor& x, const QuantizeArgs& args,
                 FormatState* state = nullptr) const override;
  Encoded encodeWithValues(const Tensor& x, const QuantizeArgs& args, FormatState* state,
                           Tensor& values) const override;
  /// Decodes codes of any fixed FFP8 spec.
  Tensor decode(const Encoded& e) const override;
  Tensor decodeBf16(const Encoded& e) const override;

 private:
  /// The fixed format for `state`, calibrating on `x` first if needed.
  Ffp8 resolve(const Tensor& x, const QuantizeArgs& args, FormatState* state) const;
};

}  // namespace mantissa::formats
