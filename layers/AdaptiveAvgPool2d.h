#pragma once

#include "core/ops/Size2d.h"
#include "layers/Module.h"

namespace mantissa::nn {

/// Adaptive average pooling of an [N, C, H, W] input to [N, C, oh, ow], PyTorch
/// `nn.AdaptiveAvgPool2d`. The default output 1x1 is global average pooling (ResNet's
/// `avgpool`). Other output sizes are supported when they divide the input size (then the
/// windows are exactly PyTorch's: kernel = stride = H/oh); other cases are an error that names
/// the sizes.
class AdaptiveAvgPool2d : public Module {
 public:
  explicit AdaptiveAvgPool2d(Size2d outputSize = 1);

  Tensor forward(const Tensor& x) override;
  /// "output_size=1".
  std::string extraRepr() const override;

 private:
  Size2d out_;
};

}  // namespace mantissa::nn
