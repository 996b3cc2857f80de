#pragma once

// Naive reference kernels for batch normalisation and LRN (PyTorch semantics, double
// accumulation, textbook gradient formulas). Used by the tests to check core/ops/Norm.

#include "core/Tensor.h"
#include "core/ops/Norm.h"

namespace mantissa::reference {

/// Forward of batchNorm; updates the running statistics in place in training mode, like the op.
/// gamma/beta undefined mean 1/0.
Tensor batchNorm(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                 const Tensor& runningMean, const Tensor& runningVar, const BatchNormOptions& opts);

struct BatchNormGrads {
  Tensor x, gamma, beta;
};
/// Gradients of batchNorm for upstream gradient `gradOut` (training mode: through the batch
/// statistics; inference mode: the running statistics are constants).
BatchNormGrads batchNormBackward(const Tensor& x, const Tensor& gamma, const Tensor& runningMean,
                                 const Tensor& runningVar, const Tensor& gradOut,
                                 const BatchNormOptions& opts);

Tensor lrn(const Tensor& x, const LrnOptions& opts);
Tensor lrnBackward(const Tensor& x, const Tensor& gradOut, const LrnOptions& opts);

}  // namespace mantissa::reference
