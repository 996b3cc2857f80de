#pragma once

// Naive reference kernels for the oneDNN GEMM ops: plain loops with double accumulation,
// written for obviousness, not speed. Used by the tests to check core/ops/Linalg.

#include "core/Tensor.h"
#include "core/ops/Linalg.h"

namespace mantissa::reference {

/// [M, K]·[K, N], [B, M, K]·[B, K, N] or [B, M, K]·[K, N].
Tensor matmul(const Tensor& a, const Tensor& b);
/// x [N, in] · w[out, in]ᵀ + b (b may be undefined).
Tensor linearForward(const Tensor& x, const Tensor& w, const Tensor& b);
Tensor linearBackwardData(const Tensor& gradOut, const Tensor& w);
WeightGrads linearBackwardWeights(const Tensor& x, const Tensor& gradOut, bool withBias);

}  // namespace mantissa::reference
