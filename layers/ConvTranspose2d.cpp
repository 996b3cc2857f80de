#include "layers/ConvTranspose2d.h"

#include <cmath>

#include "core/ops/Elementwise.h"
#include "core/ops/Reduce.h"

namespace mantissa::nn {

ConvTranspose2d::ConvTranspose2d(int64_t inChannels, int64_t outChannels, Size2d kernel, Rng& rng,
                                 ConvTranspose2dOptions opts)
    : DotProductLayer("ConvTranspose2d"),
      in_(inChannels),
      out_(outChannels),
      kernel_(kernel),
      opts_(opts) {
  MANTISSA_CHECK(inChannels > 0 && outChannels > 0,
                 "ConvTranspose2d: channels must be positive, got ", inChannels, " -> ",
                 outChannels);
  MANTISSA_CHECK(kernel.h > 0 && kernel.w > 0, "ConvTranspose2d: kernel ", kernel.toString(),
                 " must be positive");
  MANTISSA_CHECK(opts.groups > 0 && inChannels % opts.groups == 0 && outChannels % opts.groups == 0,
                 "ConvTranspose2d: groups ", opts.groups, " must divide both in (", inChannels,
                 ") and out (", outChannels, ") channels");
  // PyTorch computes fan_in with _calculate_fan_in_and_fan_out(weight), which reads dim 1 of
  // the weight; for the transposed layout [in, out/groups, kH, kW] that is out/groups.
  const int64_t fanIn = outChannels / opts.groups * kernel.h * kernel.w;
  const float bound = 1.0f / std::sqrt(static_cast<float>(fanIn));
  weight_ = registerParameter(
      "weight", Tensor::rand({inChannels, outChannels / opts.groups, kernel.h, kernel.w}, rng,
                             -bound, bound));
  if (opts.bias) bias_ = registerParameter("bias", Tensor::rand({outChannels}, rng, -bound, bound));
  weightBlockAxis_ = 0;
}

Tensor ConvTranspose2d::forward(const Tensor& input) {
  MANTISSA_CHECK(input.dim() == 4 && input.size(1) == in_, "ConvTranspose2d(", in_, ", ", out_,
                 "): input of shape ", toString(input.shape()), " (expected [N, ", in_, ", H, W])");
  const mantissa::ConvTranspose2dOptions o = opts_.op();
  const Shape xShape = input.shape(), wShape = weight_.shape();
  const Shape yShape = convTranspose2dOutputShape(xShape, wShape, o);
  const int64_t G = opts_.groups, n = xShape[0];
  // Grouped views (see Conv2d): blocks never cross a group boundary.
  const Shape x5{n, G, in_ / G, xShape[2], xShape[3]};
  const Shape w5{G, in_ / G, out_ / G, wShape[2], wShape[3]};
  const Shape y5{n, G, out_ / G, yShape[2], yShape[3]};

  Gemms g;
  g.opName = "conv_transpose2d";
  // x [N, G, Cin/G, H, W]: forward reduces over input channels; backward-weights over N, H, W.
  g.xForward = {2};
  g.xWeightGrad = {0, 3, 4};
  // w [G, Cin/G, Cout/G, kH, kW]: forward reduces over input channels; backward-data (a plain
  // strided convolution of the output gradient) over output channels.
  g.wForward = {1};
  g.wDataGrad = {2};
  // gy [N, G, Cout/G, H', W']: backward-data over output channels; backward-weights over N, H', W'.
  g.gyDataGrad = {2};
  g.gyWeightGrad = {0, 3, 4};
  g.forward = [=](const Tensor& x, const Tensor& w) {
    return convTranspose2dForward(x.reshape(xShape), w.reshape(wShape), Tensor(), o).reshape(y5);
  };
  g.backwardData = [=](const Tensor& gy, const Tensor& w) {
    return convTranspose2dBackwardData(gy.reshape(yShape), w.reshape(wShape), xShape, o)
        .reshape(x5);
  };
  g.backwardWeights = [=](const Tensor& x, const Tensor& gy) {
    return convTranspose2dBackwardWeights(x.reshape(xShape), gy.reshape(yShape), wShape, o, false)
        .weight.reshape(w5);
  };
  const Shape b5{1, G, out_ / G, 1, 1};
  Tensor y = run(
      input.reshape(x5), weight_.reshape(w5), bias_, g,
      [b5](const Tensor& out, const Tensor& b) { return add(out, b.reshape(b5)); },
      [o = out_](const Tensor& gy) {
        return sum(gy, {0, 3, 4}).reshape({o});
      });
  return y.reshape(yShape);
}

std::string ConvTranspose2d::extraRepr() const {
  std::string s =
      std::to_string(in_) + ", " + std::to_string(out_) + ", kernel=" + kernel_.toString();
  if (!(opts_.stride == Size2d(1))) s += ", stride=" + opts_.stride.toString();
  if (!(opts_.padding == Size2d(0))) s += ", padding=" + opts_.padding.toString();
  if (!(opts_.outputPadding == Size2d(0)))
    s += ", output_padding=" + opts_.outputPadding.toString();
  if (!(opts_.dilation == Size2d(1))) s += ", dilation=" + opts_.dilation.toString();
  if (opts_.groups != 1) s += ", groups=" + std::to_string(opts_.groups);
  if (!opts_.bias) s += ", bias=false";
  return s;
}

}  // namespace mantissa::nn
