#pragma once

// Naive reference kernels for the pooling ops (PyTorch semantics, written from PyTorch's
// documented formulas, double accumulation). Used by the tests to check core/ops/Pool.

#include "core/Tensor.h"
#include "core/ops/Pool.h"

namespace mantissa::reference {

Tensor maxPool2d(const Tensor& x, const Pool2dOptions& opts);
/// Routes each gradient to the first maximal element of its window (row-major scan order).
Tensor maxPool2dBackward(const Tensor& x, const Tensor& gradOut, const Pool2dOptions& opts);
Tensor avgPool2d(const Tensor& x, const Pool2dOptions& opts);
Tensor avgPool2dBackward(const Shape& inputShape, const Tensor& gradOut, const Pool2dOptions& opts);

}  // namespace mantissa::reference
