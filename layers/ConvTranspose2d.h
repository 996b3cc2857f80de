#pragma once

#include "core/Rng.h"
#include "core/ops/Conv.h"
#include "layers/DotProduct.h"

namespace mantissa::nn {

/// Options of the ConvTranspose2d layer, PyTorch `nn.ConvTranspose2d` keyword arguments.
struct ConvTranspose2dOptions {
  Size2d stride = 1;
  /// Crops `padding` rows/columns from both sides of the full transposed output.
  Size2d padding = 0;
  /// Extra rows/columns at the bottom/right of the output (smaller than stride or dilation).
  Size2d outputPadding = 0;
  Size2d dilation = 1;
  int64_t groups = 1;
  bool bias = true;

  /// The options of the convTranspose2d op (everything but `bias`).
  mantissa::ConvTranspose2dOptions op() const {
    return {.stride = stride,
            .padding = padding,
            .outputPadding = outputPadding,
            .dilation = dilation,
            .groups = groups};
  }
};

/// Transposed 2-D convolution, PyTorch `nn.ConvTranspose2d`: x [N, in, H, W] ->
/// [N, out, (H-1)s - 2p + d(k-1) + outputPadding + 1, ...], weight [in, out/groups, kH, kW]
/// (PyTorch's layout), bias [out]. Initialised like PyTorch: weight and bias
/// ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) where PyTorch's fan_in comes from weight.size(1), i.e.
/// fan_in = out/groups * kH * kW.
///
/// Quantization (FORMATS.md A.3), within each group: forward blocks x along its channels and w
/// along axis 0 (input channels); backward-data blocks the output gradient along its channels
/// and w along axis 1 (output channels); backward-weights blocks x and the output gradient
/// along (N, H, W). The master copy of the weight is blocked along axis 0.
class ConvTranspose2d : public DotProductLayer {
 public:
  ConvTranspose2d(int64_t inChannels, int64_t outChannels, Size2d kernel, Rng& rng,
                  ConvTranspose2dOptions opts = {});

  Tensor forward(const Tensor& x) override;
  /// "100, 512, kernel=4, stride=2, padding=1, bias=false" (only non-default options).
  std::string extraRepr() const override;

  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }
  int64_t inChannels() const { return in_; }
  int64_t outChannels() const { return out_; }
  Size2d kernel() const { return kernel_; }
  const ConvTranspose2dOptions& options() const { return opts_; }

 private:
  int64_t in_, out_;
  Size2d kernel_;
  ConvTranspose2dOptions opts_;
  Tensor weight_, bias_;
};

}  // namespace mantissa::nn
