#pragma once

#include <vector>

#include "core/Tensor.h"

namespace mantissa {

/// Reductions over F32 tensors. `axes` empty means all axes. Accumulation is in double for
/// sums so results do not depend on the thread count beyond the last rounding.
Tensor sum(const Tensor& x);
Tensor sum(const Tensor& x, const std::vector<int64_t>& axes, bool keepDim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, const std::vector<int64_t>& axes, bool keepDim = false);
/// Maximum over one axis; the gradient flows to the first maximal element.
Tensor max(const Tensor& x, int64_t axis, bool keepDim = false);
/// Maximum over all elements.
Tensor max(const Tensor& x);
/// Index of the maximum along `axis` (I64, no gradient).
Tensor argmax(const Tensor& x, int64_t axis, bool keepDim = false);
/// Variance over `axes` (population when `unbiased` is false).
Tensor var(const Tensor& x, const std::vector<int64_t>& axes, bool unbiased = false,
           bool keepDim = false);
/// Sums a broadcast gradient back to `shape` (the inverse of broadcasting `shape` to x).
Tensor reduceTo(const Tensor& x, const Shape& shape);

}  // namespace mantissa
