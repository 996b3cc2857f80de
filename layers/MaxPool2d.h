#pragma once

#include "core/ops/Pool.h"
#include "layers/Module.h"

namespace mantissa::nn {

/// Options of MaxPool2d, PyTorch `nn.MaxPool2d` keyword arguments.
struct MaxPool2dOptions {
  /// Window step; 0 (default) means equal to the kernel, as in PyTorch.
  Size2d stride = 0;
  Size2d padding = 0;
  Size2d dilation = 1;
  bool ceilMode = false;
};

/// Max pooling over windows of an [N, C, H, W] input, PyTorch `nn.MaxPool2d`. Overlapping
/// pooling (AlexNet) is kernel 3, stride 2.
class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(Size2d kernel, MaxPool2dOptions opts = {});

  Tensor forward(const Tensor& x) override;
  /// "kernel=3, stride=2" plus non-default options.
  std::string extraRepr() const override;
  /// The options of the maxPool2d op.
  const Pool2dOptions& poolOptions() const { return pool_; }

 private:
  Pool2dOptions pool_;
};

}  // namespace mantissa::nn
