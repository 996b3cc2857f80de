#pragma once

#include "core/Tensor.h"

namespace mantissa {

/// Gradients of a GEMM layer's parameters, as returned by the raw backward-weights kernels.
/// `bias` is undefined when the kernel was asked for no bias gradient.
struct WeightGrads {
  Tensor weight;
  Tensor bias;
};

// ---- autograd ops -------------------------------------------------------------------------
// oneDNN matmul primitives (F32, strict math). Inputs may be any F32 views; outputs are new
// contiguous tensors. Each op records its backward when an input needs a gradient.

/// Matrix product, PyTorch `torch.matmul` for these ranks:
///   a [M, K]    · b [K, N]    -> [M, N]
///   a [B, M, K] · b [B, K, N] -> [B, M, N]   (batched)
///   a [B, M, K] · b [K, N]    -> [B, M, N]   (b shared by every batch)
Tensor matmul(const Tensor& a, const Tensor& b);

/// Fully connected layer, PyTorch `F.linear`: y = x · wᵀ + b with x [..., in], w [out, in],
/// b [out] or undefined (no bias); y is [..., out].
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b = Tensor());

// ---- raw GEMM kernels (no autograd) --------------------------------------------------------
// The building blocks of `matmul` and `linear`, public so that layers can quantize each GEMM's
// operands separately and call the kernels from their own backward closures. They never record
// on the graph (inputs are used detached).

/// op(a) · op(b) for 2-D [M, K]·[K, N] or equal-batch 3-D operands. A transposed view (e.g.
/// `w.transpose(0, 1)`) is passed to oneDNN as strides without a copy; other non-contiguous
/// views are copied first.
Tensor gemm(const Tensor& a, const Tensor& b);

/// y = x · wᵀ + b for x [N, in], w [out, in], b [out] or undefined.
Tensor linearForward(const Tensor& x, const Tensor& w, const Tensor& b);
/// dL/dx = gradOut · w: gradOut [N, out], w [out, in] -> [N, in].
Tensor linearBackwardData(const Tensor& gradOut, const Tensor& w);
/// dL/dw = gradOutᵀ · x ([out, in]) and, when `withBias`, dL/db = Σ_N gradOut ([out]).
WeightGrads linearBackwardWeights(const Tensor& x, const Tensor& gradOut, bool withBias);

}  // namespace mantissa
