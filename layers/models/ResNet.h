#pragma once

#include <memory>

#include "core/Rng.h"
#include "layers/AdaptiveAvgPool2d.h"
#include "layers/BatchNorm2d.h"
#include "layers/Conv2d.h"
#include "layers/Linear.h"
#include "layers/MaxPool2d.h"
#include "layers/ReLU.h"
#include "layers/Sequential.h"
#include "layers/models/Model.h"

namespace mantissa::nn {

/// Options of the ImageNet-style ResNet.
struct ResNetOptions {
  /// 18 or 34 (BasicBlock, [2,2,2,2] / [3,4,6,3]) or 50 (Bottleneck, [3,4,6,3]).
  int depth = 18;
  int64_t inChannels = 3;
  int64_t numClasses = 1000;
  /// torchvision's `zero_init_residual`: the last BN of every block starts at weight 0.
  bool zeroInitResidual = false;
};

/// ImageNet ResNet-18/34/50 (He et al. 2016), torchvision's structure and state names exactly:
/// conv1 7x7/2 (64, no bias) - bn1 - relu - maxpool 3x3/2 pad 1 - layer1..layer4 (64, 128,
/// 256, 512 planes; stride 2 from layer2 on, projection shortcuts `downsample`) - avgpool
/// (global) - fc. Any input of at least 32x32 works; 224x224 gives the 7x7 final map.
/// Parameters (3 input channels, 1000 classes): ResNet-18 11,689,512; ResNet-34 21,797,672;
/// ResNet-50 25,557,032. Initialised like torchvision: convolutions kaiming-normal (fan_out,
/// ReLU gain), BN weight 1 / bias 0, fc PyTorch's Linear default.
class ResNet : public Model {
 public:
  ResNet(const ResNetOptions& opts, Rng& rng);

  Tensor forward(const Tensor& x) override;
  /// "resnet18", "resnet34", "resnet50".
  std::string name() const override;
  /// "depth=18, in_channels=3, num_classes=1000".
  std::string extraRepr() const override;
  const ResNetOptions& options() const { return opts_; }

 private:
  std::shared_ptr<Sequential> makeLayer(int64_t& inPlanes, int64_t planes, int64_t blocks,
                                        int64_t stride, Rng& rng);

  ResNetOptions opts_;
  bool bottleneck_ = false;
  std::shared_ptr<Conv2d> conv1_;
  std::shared_ptr<BatchNorm2d> bn1_;
  std::shared_ptr<ReLU> relu_;
  std::shared_ptr<MaxPool2d> maxpool_;
  std::shared_ptr<Sequential> layer1_, layer2_, layer3_, layer4_;
  std::shared_ptr<AdaptiveAvgPool2d> avgpool_;
  std::shared_ptr<Linear> fc_;
};

}  // namespace mantissa::nn
