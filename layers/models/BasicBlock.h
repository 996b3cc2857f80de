#pragma once

#include <memory>

#include "core/Rng.h"
#include "layers/BatchNorm2d.h"
#include "layers/Conv2d.h"
#include "layers/ReLU.h"
#include "layers/Sequential.h"

namespace mantissa::nn {

/// How a residual block matches its input to its output when the channel count or the
/// resolution changes (He et al. 2016, §3.3 and §4.2).
enum class ShortcutType {
  /// Option A: identity on a stride-subsampled input, the new channels zero-padded (split
  /// evenly before and after, as in the common PyTorch CIFAR ResNets). No parameters.
  A,
  /// Option B: projection by a 1x1 convolution (stride s, no bias) + BatchNorm, registered as
  /// `downsample.0` / `downsample.1` like torchvision.
  B,
};

/// The two-convolution residual block of ResNet-18/34 and the CIFAR ResNets (torchvision's
/// `BasicBlock`): conv1 3x3 (stride s) - bn1 - relu - conv2 3x3 - bn2, plus the shortcut,
/// then relu. State names: conv1, bn1, conv2, bn2, [downsample.0, downsample.1].
class BasicBlock : public Module {
 public:
  static constexpr int64_t kExpansion = 1;

  BasicBlock(int64_t inPlanes, int64_t planes, int64_t stride, ShortcutType shortcut, Rng& rng);

  Tensor forward(const Tensor& x) override;

  const std::shared_ptr<BatchNorm2d>& bn2() const { return bn2_; }

 private:
  int64_t inPlanes_, planes_, stride_;
  bool padShortcut_ = false;  // option A with a shape change
  std::shared_ptr<Conv2d> conv1_, conv2_;
  std::shared_ptr<BatchNorm2d> bn1_, bn2_;
  std::shared_ptr<ReLU> relu_;
  std::shared_ptr<Sequential> downsample_;
};

}  // namespace mantissa::nn
