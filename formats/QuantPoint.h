#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/io/StateDict.h"
#include "formats/Format.h"

namespace mantissa::formats {

/// One direction of a quantization point: its format, the format's adaptive state, and what
/// the last conversion did.
struct QuantDirection {
  FormatPtr format;
  std::unique_ptr<FormatState> state;
  Role role = Role::Activation;
  uint64_t calls = 0;      // conversions so far (the `step` of stochastic rounding)
  QuantStats lastStats;    // counters of the most recent conversion
  QuantStats totalStats;   // since construction or the last resetStats()
};

/// A named place where a tensor is snapped to a format on the way forward and its gradient on
/// the way back (DESIGN.md "QuantPoint"). Each point owns the adaptive state of its tensors
/// (Autoflex history, S2FP8 statistics), so no two tensors ever share it. Both formats start
/// as fp32. Points are held by shared_ptr; autograd closures keep them alive.
class QuantPoint : public io::Stateful {
 public:
  QuantPoint(std::string name, Role forwardRole, Role backwardRole);

  const std::string& name() const { return name_; }
  const QuantDirection& forward() const { return fwd_; }
  const QuantDirection& backward() const { return bwd_; }
  const FormatPtr& forwardFormat() const { return fwd_.format; }
  const FormatPtr& backwardFormat() const { return bwd_.format; }

  /// Sets both formats (null = fp32). A direction whose spec changes gets fresh state; an
  /// unchanged one keeps its state (so re-applying a policy every epoch is harmless).
  void setFormats(FormatPtr forward, FormatPtr backward);
  /// Run seed for stochastic rounding (combined with a hash of the name and the call count).
  void setSeed(uint64_t seed) { seed_ = seed; }
  /// Renames the point (modules give it its dotted path, "layer1.0.conv1.activation", when a
  /// policy is applied); the name keys its stochastic-rounding stream and error messages.
  void setName(std::string name);

  /// Snaps x with the forward format. `blockAxis` is used by blocked formats only.
  Tensor quantizeForward(const Tensor& x, int64_t blockAxis = -1);
  /// Snaps a gradient with the backward format.
  Tensor quantizeBackward(const Tensor& g, int64_t blockAxis = -1);
  /// As quantizeForward / quantizeBackward with blocks along the flattened `blockAxes` (in
  /// order; QuantizeArgs::blockAxes): one conversion, the same as blocking a copy with those
  /// axes moved last and merged.
  Tensor quantizeForwardAlong(const Tensor& x, std::span<const int64_t> blockAxes);
  Tensor quantizeBackwardAlong(const Tensor& g, std::span<const int64_t> blockAxes);

  /// quantizeForward / quantizeForwardAlong producing an operand of the bf16 GEMM path
  /// (Format::quantizeBf16) in the same conversion: blocks along `blockAxes` (none: blockAxis
  /// -1; one: that axis; several: flattened in order), with the same arguments,
  /// stochastic-rounding stream and step, state, statistics and errors, so the point advances
  /// exactly as the FP32 call would. fp32: x itself, converted, and no conversion counted.
  Bf16Quantized quantizeForwardBf16(const Tensor& x, std::span<const int64_t> blockAxes = {});
  /// As quantizeForwardBf16 with the backward format (quantizeBackward / ...Along).
  Bf16Quantized quantizeBackwardBf16(const Tensor& g, std::span<const int64_t> blockAxes = {});

  /// As quantizeForward, but packed: the forward format's codes (Format::encodeWithValues) with
  /// the same arguments, stochastic-rounding stream, step and statistics, so the adaptive state
  /// advances exactly as one quantizeForward would. `values` receives the quantized values,
  /// bit for bit those quantizeForward would have returned (for fp32: x itself, and the codes
  /// are a copy). Decode the codes with the forward format (forwardFormat()->decode). The
  /// dot-product layers keep the codes of the operands backward reuses (docs/performance.md
  /// "Packed saved activations").
  Encoded encodeForward(const Tensor& x, Tensor& values, int64_t blockAxis = -1);
  /// As quantizeForward / quantizeBackward, but the codes only (Format::encode): the same
  /// arguments, stochastic-rounding stream and step, state, statistics and errors, so the point
  /// advances exactly as the quantize call would, and decode(codes) is bit for bit its result.
  /// For fp32 the codes are a copy of x and no conversion is counted. The int8 kernels take
  /// their HBFP operands this way (1-byte mantissas instead of FP32 values).
  Encoded encodeForward(const Tensor& x, int64_t blockAxis);
  Encoded encodeBackward(const Tensor& g, int64_t blockAxis);
  /// As quantizeForwardAlong / quantizeBackwardAlong, but the codes only: blocks along the
  /// flattened `blockAxes` (Encoded::blockAxes), the same bookkeeping as encodeForward. The
  /// int8 weight-gradient kernel of the convolutions takes its operands this way.
  Encoded encodeForwardAlong(const Tensor& x, std::span<const int64_t> blockAxes);
  Encoded encodeBackwardAlong(const Tensor& g, std::span<const int64_t> blockAxes);

  /// Clears totalStats of both directions.
  void resetStats();
  /// Scalar metrics for logs: format state metrics and saturation/flush fractions, prefixed
  /// with "fwd." / "bwd.".
  std::vector<std::pair<std::string, double>> metrics() const;
  /// "conv1.activation  fwd=hbfp8 bwd=fp32".
  std::string describe() const;

  /// Saves both specs, call counts and format states; loading checks that the specs match
  /// the ones currently set (a different recipe must be applied explicitly before loading).
  void saveState(io::StateDict& out, const std::string& prefix) const override;
  void loadState(const io::StateDict& in, const std::string& prefix) override;

 private:
  /// One conversion of `dir`: builds the arguments, calls convert(args, state) and books the
  /// statistics. Used by every quantize and encode call.
  template <class Convert>
  auto convert(QuantDirection& dir, int64_t blockAxis, std::span<const int64_t> blockAxes,
               const Convert& fn);
  Tensor run(QuantDirection& dir, const Tensor& x, int64_t blockAxis,
             std::span<const int64_t> blockAxes = {});
  Encoded runEncode(QuantDirection& dir, const Tensor& x, int64_t blockAxis,
                    std::span<const int64_t> blockAxes = {});
  Bf16Quantized runBf16(QuantDirection& dir, const Tensor& x, std::span<const int64_t> blockAxes);

  std::string name_;
  uint64_t stream_;
  uint64_t seed_ = 0;
  QuantDirection fwd_, bwd_;
};

using QuantPointPtr = std::shared_ptr<QuantPoint>;

/// The autograd `quantize` op: forward snaps x with the point's forward format, backward passes
/// the gradient straight through and snaps it with the point's backward format.
Tensor quantize(const Tensor& x, const QuantPointPtr& point, int64_t blockAxis = -1);

/// 64-bit FNV-1a of a name: the stochastic-rounding stream of a point, stable across runs.
uint64_t streamOf(std::string_view name);

/// Whether the dot-product layers (Linear, Conv2d, ConvTranspose2d) keep the quantized forward
/// operands that backward reuses as their format's packed codes (8 or 16 bits a value instead of
/// FP32) and decode them in backward. On by default; MANTISSA_PACKED_SAVES=0 starts a process
/// with it off. Results are bit-identical either way; tests and benchmarks compare the two.
void setPackedSavesEnabled(bool on);
bool packedSavesEnabled();

}  // namespace mantissa::formats
