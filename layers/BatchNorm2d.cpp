#include "layers/BatchNorm2d.h"

namespace mantissa::nn {

BatchNorm2d::BatchNorm2d(int64_t numFeatures, BatchNormOptions opts)
    : BatchNorm("BatchNorm2d", numFeatures, opts) {}

Tensor BatchNorm2d::forward(const Tensor& x) {
  MANTISSA_CHECK(x.dim() == 4, "BatchNorm2d(", numFeatures(), "): input must be [N, C, H, W], got ",
                 toString(x.shape()));
  return normalize(x);
}

Tensor BatchNorm2d::forwardRelu(const Tensor& x) {
  MANTISSA_CHECK(x.dim() == 4, "BatchNorm2d(", numFeatures(), "): input must be [N, C, H, W], got ",
                 toString(x.shape()));
  return normalize(x, true);
}

Tensor BatchNorm2d::forwardAddRelu(const Tensor& x, const Tensor& residual) {
  MANTISSA_CHECK(x.dim() == 4, "BatchNorm2d(", numFeatures(), "): input must be [N, C, H, W], got ",
                 toString(x.shape()));
  return normalize(x, true, residual);
}

Tensor BatchNorm2d::forwardLeakyRelu(const Tensor& x, float slope) {
  MANTISSA_CHECK(x.dim() == 4, "BatchNorm2d(", numFeatures(), "): input must be [N, C, H, W], got ",
                 toString(x.shape()));
  return normalize(x, true, Tensor(), slope);
}

}  // namespace mantissa::nn
