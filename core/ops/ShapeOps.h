#pragma once

#include <cstdint>
#include <vector>

#include "core/Tensor.h"

namespace mantissa {

/// Joins tensors along an existing `axis` (negative counts from the end). All inputs need the
/// same dtype and rank and equal sizes on every other axis; any dtype is accepted, gradients
/// flow to the F32 inputs that need them (each receives its slice of the output gradient).
Tensor concat(const std::vector<Tensor>& tensors, int64_t axis);

/// Joins equally shaped tensors along a new `axis` in [-(rank+1), rank]; `stack({a, b}, 0)` of
/// two [3, 4] tensors is [2, 3, 4]. Same rules and gradients as concat.
Tensor stack(const std::vector<Tensor>& tensors, int64_t axis = 0);

/// Constant padding of one axis: `before` elements in front of index 0, `after` behind the end.
struct PadWidth {
  int64_t before = 0;
  int64_t after = 0;
};

/// Constant padding with `value`. `pads` lists the widths of the LAST pads.size() axes in axis
/// order (outermost first), so for an NCHW image `pad(x, {{1, 1}, {2, 2}})` pads H by 1 and W
/// by 2 on each side; leading axes not covered are left alone. This is the reverse of PyTorch's
/// F.pad list, which starts from the last axis: F.pad(x, (2, 2, 1, 1)) is the same call.
/// Widths must be >= 0 (no cropping; use slice). The gradient is the un-padded window of the
/// output gradient.
Tensor pad(const Tensor& x, const std::vector<PadWidth>& pads, float value = 0.f);

/// Converts a PyTorch F.pad list (last axis first: left, right, top, bottom, ...) into PadWidth
/// order for `pad`. The list must have an even length.
std::vector<PadWidth> padWidthsFromTorch(const std::vector<int64_t>& torchPads);

}  // namespace mantissa
