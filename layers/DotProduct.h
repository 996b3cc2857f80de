#pragma once

#include <functional>
#include <string>
#include <vector>

#include "layers/Module.h"

namespace mantissa::nn {

/// What the int8 block-FP kernel of a GEMM (DotProductLayer::Gemms) is told about its two HBFP
/// operands: the block size they share and their mantissa widths N.
struct Int8Operands {
  int64_t block;
  int bitsA, bitsB;  // N of the first and second operand
};
/// One operand of an int8 block-FP kernel (Int8Gemm) as its quantization point produced it: the
/// HBFP codes (`codes`: I8 mantissas in the operand's shape, I16 shared exponents, blocks along
/// codes.blockAxis; QuantPoint::encodeForward / encodeBackward) for forward and backward-data,
/// for a convolution's backward-weights blocked along N, H, W (codes.blockAxes;
/// encodeForwardAlong / encodeBackwardAlong), and the quantized FP32 values (`f32`) for Linear's
/// backward-weights (its kernel reads values). values() is the
/// FP32 operand either way, bit for bit (decode(encode(x)) == quantize(x)): what a kernel reading
/// FP32 takes and what the FP32 GEMM gets when the int8 kernel declines.
struct Int8Operand {
  formats::Encoded codes;
  formats::FormatPtr format;  // decodes `codes`
  Tensor f32;
  bool hasCodes() const { return codes.codes.defined(); }
  /// f32, or the decoded codes.
  Tensor values() const { return hasCodes() ? format->decode(codes) : f32; }
};
/// An int8 block-FP GEMM kernel: the undefined tensor when it declines (DotProductLayer::Gemms).
using Int8Gemm =
    std::function<Tensor(const Int8Operand& a, const Int8Operand& b, const Int8Operands& operands)>;

/// Base of the layers whose work is a dot product (Linear, Conv2d, ConvTranspose2d). It owns
/// the three quantization points of FORMATS.md A.2 and the master format of the weight:
///   `activation`  forward: the input operand (role activation); backward: fp32 (the input
///                 gradient leaves in FP32, the upstream layer quantizes it as its error)
///   `weight`      forward: the weight operand (role weight); backward: the weight gradient
///                 (role weight_grad)
///   `error`       backward only: the output gradient entering both backward GEMMs
/// Blocked formats (HBFP) are re-quantized for each GEMM along that GEMM's reduction axes
/// (A.3); other formats quantize each tensor once and reuse it, so adaptive state (Autoflex,
/// S2FP8) advances exactly once per tensor and step.
///
/// bf16 GEMM path (docs/ops.md): when both operands of a GEMM come from formats with at most 8
/// significant bits (Format::significandBits: bf16, e4m3, e5m2, FFP8, hbfpN with N <= 9) and
/// their values pass the exactness check of ops::detail::toBf16Exact, the GEMM runs on oneDNN's
/// bf16 primitives: the FP32 emulation's result up to summation order, at up to twice the rate.
/// An operand bound for it is quantized by Format::quantizeBf16 (HBFP writes the bf16 patterns
/// in its quantizing pass). Operands kept for backward are then kept as bf16 (half the bytes).
/// setBf16GemmEnabled (core/ops/Linalg.h) turns it off.
///
/// int8 block-FP path (docs/performance.md "int8 block-floating-point path"): when both
/// operands of a GEMM are HBFP with N <= 8 and the same block size and the layer provides an
/// int8 kernel for it (Linear: all three GEMMs; Conv2d: forward, backward-data and
/// backward-weights of stride-1 "same" convolutions, forward of the others from 64 channels per
/// group), the GEMM runs on the integer mantissas with per-block exponents (AVX-512 VNNI): the
/// emulation's result up to summation order. It takes precedence over the bf16 path;
/// on by default where the CPU has VNNI, setInt8BfpEnabled switches it. The operands reach the kernels as Int8Operand (HBFP codes,
/// except Linear's backward-weights operands, which are values).
class DotProductLayer : public Module {
 public:
  explicit DotProductLayer(std::string typeName);

  bool isDotProduct() const override { return true; }
  const formats::QuantPointPtr& activationPoint() const { return activation_; }
  const formats::QuantPointPtr& weightPoint() const { return weightPoint_; }
  const formats::QuantPointPtr& errorPoint() const { return error_; }
  /// The current policy of this layer.
  const FormatPolicy& policy() const { return policy_; }

 protected:
  void applyPolicy(const FormatPolicy& policy) override;
  Named<MasterFormat> ownMasterFormats() const override;

  /// Everything the three GEMMs of a layer need: for each operand, the axes that the GEMM
  /// reading it reduces over (blocks run along them), and the raw kernels.
  struct Gemms {
    std::vector<int64_t> xForward, xWeightGrad;    // input x: forward, backward-weights GEMM
    std::vector<int64_t> wForward, wDataGrad;      // weight: forward, backward-data GEMM
    std::vector<int64_t> gyDataGrad, gyWeightGrad; // output gradient: the two backward GEMMs
    std::function<Tensor(const Tensor& x, const Tensor& w)> forward;
    std::function<Tensor(const Tensor& gy, const Tensor& w)> backwardData;
    std::function<Tensor(const Tensor& x, const Tensor& gy)> backwardWeights;
    /// int8 block-FP kernels (ops::detail::bfpGemm, bfpConv2d) of the same GEMMs, given the
    /// same quantized operands (Int8Operand) when both are HBFP with N <= 8 and equal blocks
    /// (Int8Operands); they return an undefined tensor when the kernel declines (a block product
    /// would not be exact), and the FP32 kernel above runs instead on values(). Empty: the layer
    /// has none for that GEMM.
    Int8Gemm int8Forward, int8BackwardData, int8BackwardWeights;
    std::string opName;
  };
  /// Runs forward with quantized operands and records the quantized backward. The bias (if
  /// defined) is added in FP32 by `addBias` and gets the FP32 sum of the output gradient.
  Tensor run(const Tensor& x, const Tensor& w, const Tensor& bias, const Gemms& g,
             const std::function<Tensor(const Tensor& y, const Tensor& b)>& addBias,
             const std::function<Tensor(const Tensor& gy)>& biasGrad);

  /// Axis of the weight's forward-GEMM reduction (the master copy is blocked along it).
  int64_t weightBlockAxis_ = 1;

 private:
  formats::QuantPointPtr activation_, weightPoint_, error_;
  FormatPolicy policy_;
};

/// Quantizes `t` with one direction of `point` so that blocks run along the flattened `axes`
/// (in order). For unblocked formats the axes do not matter and `t` is quantized as a whole.
Tensor quantizeAlong(formats::QuantPoint& point, bool backward, const Tensor& t,
                     const std::vector<int64_t>& axes);
/// quantizeAlong producing an operand of the bf16 GEMM path in the same conversion
/// (QuantPoint::quantizeForwardBf16 / quantizeBackwardBf16): the same values, point state and
/// statistics, and the bf16 patterns and verdict of ops::detail::toBf16Exact on those values.
formats::Bf16Quantized quantizeAlongBf16(formats::QuantPoint& point, bool backward, const Tensor& t,
                                         const std::vector<int64_t>& axes);

}  // namespace mantissa::nn
