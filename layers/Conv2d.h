#pragma once

#include "core/Rng.h"
#include "core/ops/Conv.h"
#include "layers/DotProduct.h"

namespace mantissa::nn {

/// Options of the Conv2d layer, PyTorch `nn.Conv2d` keyword arguments. Spatial fields take one
/// integer or an {h, w} pair: `Conv2dOptions{.stride = 2, .padding = 1, .bias = false}`.
struct Conv2dOptions {
  Size2d stride = 1;
  Size2d padding = 0;
  Size2d dilation = 1;
  int64_t groups = 1;
  bool bias = true;

  /// The options of the conv2d op (everything but `bias`).
  mantissa::Conv2dOptions op() const {
    return {.stride = stride, .padding = padding, .dilation = dilation, .groups = groups};
  }
};

/// 2-D convolution, PyTorch `nn.Conv2d`: x [N, in, H, W] -> [N, out, H', W'], weight
/// [out, in/groups, kH, kW] (OIHW), bias [out]. Initialised like PyTorch: weight and bias
/// ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = in/groups * kH * kW.
///
/// Quantization (FORMATS.md A.3): each GEMM sees its operands blocked along its own reduction
/// axis, within a group: forward blocks x along its channels and w along its input-channel
/// axis 1 (separately for every output channel and kernel tap); backward-data blocks the
/// output gradient along its channels and w along its output-channel axis 0; backward-weights
/// blocks x and the output gradient along (N, H, W). With groups > 1 a block never crosses a
/// group boundary. The master copy of the weight is blocked along axis 1.
class Conv2d : public DotProductLayer {
 public:
  Conv2d(int64_t inChannels, int64_t outChannels, Size2d kernel, Rng& rng, Conv2dOptions opts = {});

  Tensor forward(const Tensor& x) override;
  /// "3, 16, kernel=3, stride=1, padding=1, bias=false" (only non-default options).
  std::string extraRepr() const override;

  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }
  int64_t inChannels() const { return in_; }
  int64_t outChannels() const { return out_; }
  Size2d kernel() const { return kernel_; }
  const Conv2dOptions& options() const { return opts_; }

 private:
  int64_t in_, out_;
  Size2d kernel_;
  Conv2dOptions opts_;
  Tensor weight_, bias_;
};

}  // namespace mantissa::nn
