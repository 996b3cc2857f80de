#pragma once

#include "core/Tensor.h"
#include "core/ops/Size2d.h"

namespace mantissa {

/// Options of maxPool2d and avgPool2d, PyTorch `nn.MaxPool2d` / `nn.AvgPool2d` semantics.
struct Pool2dOptions {
  /// Window size; required (no default).
  Size2d kernel = 0;
  /// Window step; 0 means "equal to the kernel", PyTorch's default.
  Size2d stride = 0;
  /// Implicit padding on both sides; at most half the kernel (PyTorch's rule). Max pooling
  /// never selects a padded position; average pooling counts it as a zero (see below).
  Size2d padding = 0;
  /// Spacing between window taps (max pooling only, as in PyTorch).
  Size2d dilation = 1;
  /// Round the output size up instead of down; a last window that would start in the right
  /// padding is dropped (PyTorch's rule).
  bool ceilMode = false;
  /// Average pooling only. True (PyTorch's default): the divisor counts padded positions, but
  /// not the extra right margin that ceilMode adds. False: only real input elements count.
  bool countIncludePad = true;
};

/// Output shape [N, C, OH, OW] of pooling an [N, C, H, W] input; validates the options.
Shape pool2dOutputShape(const Shape& input, const Pool2dOptions& opts);

/// Max pooling over windows of an [N, C, H, W] input (oneDNN pooling_max; the workspace of
/// selected positions is kept for the backward, which routes each gradient to its maximum).
Tensor maxPool2d(const Tensor& x, const Pool2dOptions& opts);
/// maxPool2d with kernel = stride = `kernel`, no padding.
Tensor maxPool2d(const Tensor& x, Size2d kernel);

/// Average pooling (oneDNN pooling_avg) with PyTorch's divisor rules, see Pool2dOptions.
Tensor avgPool2d(const Tensor& x, const Pool2dOptions& opts);
/// avgPool2d with kernel = stride = `kernel`, no padding.
Tensor avgPool2d(const Tensor& x, Size2d kernel);

/// Mean over H and W of an [N, C, H, W] input, kept 4-D as [N, C, 1, 1] like PyTorch's
/// `AdaptiveAvgPool2d(1)`; use `.flatten(1)` for an [N, C] classifier input.
Tensor globalAvgPool2d(const Tensor& x);

}  // namespace mantissa
