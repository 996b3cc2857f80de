#pragma once

#include <memory>

#include "core/Rng.h"
#include "layers/AdaptiveAvgPool2d.h"
#include "layers/BatchNorm2d.h"
#include "layers/Conv2d.h"
#include "layers/Linear.h"
#include "layers/ReLU.h"
#include "layers/Sequential.h"
#include "layers/models/BasicBlock.h"
#include "layers/models/Model.h"

namespace mantissa::nn {

/// Options of the CIFAR-style ResNet.
struct CifarResNetOptions {
  /// 6n + 2: 20, 32, 44, 56, 110 in the paper (any 6n + 2 >= 8 is accepted).
  int depth = 20;
  int64_t inChannels = 3;
  int64_t numClasses = 10;
  /// A (default, as most PyTorch CIFAR ResNets and the paper's CIFAR runs): parameter-free
  /// zero-padded identity; B: 1x1 conv + BN projection where the shape changes.
  ShortcutType shortcut = ShortcutType::A;
};

/// CIFAR ResNet-(6n+2) of He et al. 2016, §4.2: conv1 3x3 (16, no bias) - bn1 - relu - layer1
/// (n BasicBlocks, 16 planes) - layer2 (n, 32, stride 2) - layer3 (n, 64, stride 2) - avgpool
/// (global) - fc. Names follow torchvision (conv1, bn1, layer1.0.conv1, ..., fc). For 32x32
/// inputs the maps are 32, 16, 8; 28x28 inputs give 28, 14, 7. Parameters with option A,
/// 3 input channels, 10 classes: ResNet-20 269,722; -32 464,154; -44 658,586; -56 853,018;
/// -110 1,727,962. Initialised like the common PyTorch port (akamaster/pytorch_resnet_cifar10):
/// kaiming-normal (fan_in, ReLU gain) for every convolution and the fc weight.
class CifarResNet : public Model {
 public:
  CifarResNet(const CifarResNetOptions& opts, Rng& rng);

  Tensor forward(const Tensor& x) override;
  /// "resnet20" with option A, "resnet20b" with option B.
  std::string name() const override;
  /// "depth=20, in_channels=3, num_classes=10, shortcut=A".
  std::string extraRepr() const override;
  const CifarResNetOptions& options() const { return opts_; }

 private:
  CifarResNetOptions opts_;
  std::shared_ptr<Conv2d> conv1_;
  std::shared_ptr<BatchNorm2d> bn1_;
  std::shared_ptr<ReLU> relu_;
  std::shared_ptr<Sequential> layer1_, layer2_, layer3_;
  std::shared_ptr<AdaptiveAvgPool2d> avgpool_;
  std::shared_ptr<Linear> fc_;
};

}  // namespace mantissa::nn
