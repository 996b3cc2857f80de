#pragma once

#include "layers/BatchNorm.h"

namespace mantissa::nn {

/// Batch normalisation of [N, C, H, W] inputs, PyTorch `nn.BatchNorm2d`: statistics over N, H, W
/// per channel.
class BatchNorm2d : public BatchNorm {
 public:
  explicit BatchNorm2d(int64_t numFeatures, BatchNormOptions opts = {});

  Tensor forward(const Tensor& x) override;
  /// relu(forward(x)) with the same bits, as one pass over the data in eval mode without
  /// autograd (conv - bn - relu in the ResNets).
  Tensor forwardRelu(const Tensor& x);
  /// relu(forward(x) + residual) with the same bits, one pass in eval mode without autograd (the
  /// end of a ResNet basic block).
  Tensor forwardAddRelu(const Tensor& x, const Tensor& residual);
  /// leakyRelu(forward(x), slope) with the same bits and gradients, one pass after the
  /// statistics in training mode (the DCGAN discriminator's BatchNorm2d - LeakyReLU).
  Tensor forwardLeakyRelu(const Tensor& x, float slope);
};

}  // namespace mantissa::nn
