#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mantissa {

/// Sizes of a tensor, outermost first (PyTorch order: NCHW for images, [out, in] for Linear).
using Shape = std::vector<int64_t>;

/// Product of the sizes (1 for a scalar shape {}).
int64_t numelOf(const Shape& shape);
/// "[2, 3, 4]".
std::string toString(const Shape& shape);
/// Contiguous (row-major) strides for `shape`.
Shape contiguousStrides(const Shape& shape);
/// Wraps a possibly negative axis into [0, rank); errors name `what` when out of range.
int64_t normalizeAxis(int64_t axis, int64_t rank, const char* what = "axis");
/// NumPy broadcasting of two shapes; throws naming `op` when they are incompatible.
Shape broadcastShapes(const Shape& a, const Shape& b, const char* op = "broadcast");

}  // namespace mantissa
