#pragma once

// Naive reference kernels for conv2d and convTranspose2d (PyTorch semantics): every kernel is
// one loop over all (output position, kernel tap) pairs with double accumulation. Used by the
// tests to check core/ops/Conv.

#include "core/Tensor.h"
#include "core/ops/Conv.h"

namespace mantissa::reference {

Tensor conv2dForward(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dOptions& opts);
Tensor conv2dBackwardData(const Tensor& gradOut, const Tensor& w, const Shape& inputShape,
                          const Conv2dOptions& opts);
WeightGrads conv2dBackwardWeights(const Tensor& x, const Tensor& gradOut, const Shape& weightShape,
                                  const Conv2dOptions& opts, bool withBias);

Tensor convTranspose2dForward(const Tensor& x, const Tensor& w, const Tensor& b,
                              const ConvTranspose2dOptions& opts);
Tensor convTranspose2dBackwardData(const Tensor& gradOut, const Tensor& w, const Shape& inputShape,
                                   const ConvTranspose2dOptions& opts);
WeightGrads convTranspose2dBackwardWeights(const Tensor& x, const Tensor& gradOut,
                                           const Shape& weightShape,
                                           const ConvTranspose2dOptions& opts, bool withBias);

}  // namespace mantissa::reference
