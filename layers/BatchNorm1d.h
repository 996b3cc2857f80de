#pragma once

#include "layers/BatchNorm.h"

namespace mantissa::nn {

/// Batch normalisation of [N, C] or [N, C, L] inputs, PyTorch `nn.BatchNorm1d`: statistics over
/// N (and L) per channel.
class BatchNorm1d : public BatchNorm {
 public:
  explicit BatchNorm1d(int64_t numFeatures, BatchNormOptions opts = {});

  Tensor forward(const Tensor& x) override;
};

}  // namespace mantissa::nn
