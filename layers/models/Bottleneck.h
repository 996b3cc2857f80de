#pragma once

#include <memory>

#include "core/Rng.h"
#include "layers/BatchNorm2d.h"
#include "layers/Conv2d.h"
#include "layers/ReLU.h"
#include "layers/Sequential.h"

namespace mantissa::nn {

/// The three-convolution residual block of ResNet-50 (torchvision's `Bottleneck`, "ResNet
/// v1.5": the stride sits on the 3x3 convolution): conv1 1x1 - bn1 - relu - conv2 3x3 (stride
/// s) - bn2 - relu - conv3 1x1 (4x planes) - bn3, plus the shortcut (identity, or the
/// projection `downsample` = 1x1 conv + BN when the shape changes), then relu.
class Bottleneck : public Module {
 public:
  static constexpr int64_t kExpansion = 4;

  Bottleneck(int64_t inPlanes, int64_t planes, int64_t stride, Rng& rng);

  Tensor forward(const Tensor& x) override;

  const std::shared_ptr<BatchNorm2d>& bn3() const { return bn3_; }

 private:
  std::shared_ptr<Conv2d> conv1_, conv2_, conv3_;
  std::shared_ptr<BatchNorm2d> bn1_, bn2_, bn3_;
  std::shared_ptr<ReLU> relu_;
  std::shared_ptr<Sequential> downsample_;
};

}  // namespace mantissa::nn
