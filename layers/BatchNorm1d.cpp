#include "layers/BatchNorm1d.h"

namespace mantissa::nn {

BatchNorm1d::BatchNorm1d(int64_t numFeatures, BatchNormOptions opts)
    : BatchNorm("BatchNorm1d", numFeatures, opts) {}

Tensor BatchNorm1d::forward(const Tensor& x) {
  MANTISSA_CHECK(x.dim() == 2 || x.dim() == 3, "BatchNorm1d(", numFeatures(),
                 "): input must be [N, C] or [N, C, L], got ", toString(x.shape()));
  if (x.dim() == 2) return normalize(x);
  // [N, C, L] -> [N, C, L, 1]: the op's 4-D form reduces over N and L.
  return normalize(x.unsqueeze(3)).squeeze(3);
}

}  // namespace mantissa::nn
