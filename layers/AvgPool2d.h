#pragma once

#include "core/ops/Pool.h"
#include "layers/Module.h"

namespace mantissa::nn {

/// Options of AvgPool2d, PyTorch `nn.AvgPool2d` keyword arguments.
struct AvgPool2dOptions {
  /// Window step; 0 (default) means equal to the kernel, as in PyTorch.
  Size2d stride = 0;
  Size2d padding = 0;
  bool ceilMode = false;
  /// Padded positions count in the divisor (PyTorch's default).
  bool countIncludePad = true;
};

/// Average pooling over windows of an [N, C, H, W] input, PyTorch `nn.AvgPool2d`.
class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(Size2d kernel, AvgPool2dOptions opts = {});

  Tensor forward(const Tensor& x) override;
  /// "kernel=2, stride=2" plus non-default options.
  std::string extraRepr() const override;
  /// The options of the avgPool2d op.
  const Pool2dOptions& poolOptions() const { return pool_; }

 private:
  Pool2dOptions pool_;
};

}  // namespace mantissa::nn
