#pragma once

#include "core/Tensor.h"
#include "core/ops/Linalg.h"
#include "core/ops/Size2d.h"

namespace mantissa {

/// Options of conv2d, PyTorch `nn.Conv2d` semantics. Every spatial field takes one integer for
/// both axes or an {h, w} pair: `Conv2dOptions{.stride = 2, .padding = {1, 2}}`.
struct Conv2dOptions {
  Size2d stride = 1;
  /// Zero padding added on both sides of each spatial axis.
  Size2d padding = 0;
  /// Spacing between kernel taps (1 = dense kernel).
  Size2d dilation = 1;
  /// Input and output channels are split into `groups` independent convolutions.
  int64_t groups = 1;
};

/// Options of convTranspose2d, PyTorch `nn.ConvTranspose2d` semantics (the adjoint of conv2d
/// with the same stride, padding, dilation and groups).
struct ConvTranspose2dOptions {
  Size2d stride = 1;
  /// Crops `padding` rows/columns from both sides of the full transposed output (PyTorch's
  /// meaning: conv2d with this padding is the adjoint of convTranspose2d).
  Size2d padding = 0;
  /// Extra rows/columns added at the bottom/right of the output to reach sizes that stride
  /// rounding made ambiguous; must be smaller than stride or dilation (PyTorch's rule).
  Size2d outputPadding = 0;
  Size2d dilation = 1;
  int64_t groups = 1;
};

/// Output shape of conv2d for input [N, C, H, W] and weight [O, C/groups, kH, kW]:
/// [N, O, (H + 2p - d(k-1) - 1)/s + 1, ...] (floor). Validates shapes and options.
Shape conv2dOutputShape(const Shape& input, const Shape& weight, const Conv2dOptions& opts);
/// Output shape of convTranspose2d for input [N, Cin, H, W] and weight [Cin, Cout/groups, kH,
/// kW]: [N, Cout, (H-1)s - 2p + d(k-1) + outputPadding + 1, ...]. Validates shapes and options.
Shape convTranspose2dOutputShape(const Shape& input, const Shape& weight,
                                 const ConvTranspose2dOptions& opts);

// ---- autograd ops (oneDNN convolution / deconvolution, F32 NCHW) ----------------------------

/// 2-D cross-correlation, PyTorch `F.conv2d`: x [N, C, H, W], w [O, C/groups, kH, kW] (OIHW),
/// b [O] or undefined. Gradients to x, w and b.
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b = Tensor(),
              const Conv2dOptions& opts = {});

/// Transposed convolution, PyTorch `F.conv_transpose2d`: x [N, Cin, H, W],
/// w [Cin, Cout/groups, kH, kW] (PyTorch's ConvTranspose2d weight layout), b [Cout] or
/// undefined. Gradients to x, w and b.
Tensor convTranspose2d(const Tensor& x, const Tensor& w, const Tensor& b = Tensor(),
                       const ConvTranspose2dOptions& opts = {});

// ---- raw GEMM kernels (no autograd) --------------------------------------------------------
// The three GEMMs of each op, public so layers can quantize each GEMM's operands separately
// and call them from their own backward closures. Inputs are used detached; outputs are new
// contiguous NCHW / weight-layout tensors. conv2d and convTranspose2d are built from these.

/// y = conv2d(x, w) + b.
Tensor conv2dForward(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dOptions& opts);
/// dL/dx of conv2d for an input of shape `inputShape` (needed: strides make it ambiguous).
Tensor conv2dBackwardData(const Tensor& gradOut, const Tensor& w, const Shape& inputShape,
                          const Conv2dOptions& opts);
/// dL/dw (of shape `weightShape`) and, when `withBias`, dL/db = Σ_{N,H,W} gradOut.
WeightGrads conv2dBackwardWeights(const Tensor& x, const Tensor& gradOut, const Shape& weightShape,
                                  const Conv2dOptions& opts, bool withBias);

/// y = convTranspose2d(x, w) + b.
Tensor convTranspose2dForward(const Tensor& x, const Tensor& w, const Tensor& b,
                              const ConvTranspose2dOptions& opts);
/// dL/dx of convTranspose2d (a strided convolution of gradOut with w).
Tensor convTranspose2dBackwardData(const Tensor& gradOut, const Tensor& w, const Shape& inputShape,
                                   const ConvTranspose2dOptions& opts);
/// dL/dw (of shape `weightShape`, [Cin, Cout/groups, kH, kW]) and optionally dL/db.
WeightGrads convTranspose2dBackwardWeights(const Tensor& x, const Tensor& gradOut,
                                           const Shape& weightShape,
                                           const ConvTranspose2dOptions& opts, bool withBias);

}  // namespace mantissa
