#pragma once

#include "layers/BatchNorm.h"

namespace mantissa::nn {

/// Batch normalisation of [N, C, H, W] inputs, PyTorch `nn.BatchNorm2d`: statistics over N, H, W
/// per channel.
class BatchNorm2d : public BatchNorm {
 public:
  explicit BatchNorm2d(int64_t numFeatures, BatchNormOptions opts = {});

  Tensor forward(const Tensor& x) override;
};

}  // namespace mantissa::nn
