#pragma once

#include <cstdint>

#include "core/Tensor.h"

namespace mantissa {

/// How a loss combines its per-element (or per-sample) values.
enum class Reduction : uint8_t {
  Mean,  ///< average: a scalar (shape {})
  Sum,   ///< total: a scalar (shape {})
  None,  ///< one value per sample (crossEntropy: [N]) or per element (the others)
};

/// softmax along `axis` (negative counts from the end), computed as exp(x - max) / sum so large
/// logits do not overflow. Gradient: y * (g - sum(g * y)).
Tensor softmax(const Tensor& x, int64_t axis = -1);

/// log(softmax(x)) along `axis`, computed as x - max - log(sum(exp(x - max))) (never
/// log of a rounded-to-zero probability). Gradient: g - softmax(x) * sum(g).
Tensor logSoftmax(const Tensor& x, int64_t axis = -1);

struct CrossEntropyOptions {
  Reduction reduction = Reduction::Mean;
  /// Szegedy et al. 2016 (PyTorch `label_smoothing`): the target is (1-e) * onehot + e / C.
  /// Must lie in [0, 1].
  float labelSmoothing = 0.f;
};

/// Cross-entropy of F32 logits [N, C] against integer class labels [N] (I64 or I32), fused:
/// the forward pass computes one log-sum-exp per row (kept for backward, nothing else), the
/// backward pass writes softmax(x) - target directly; no log-softmax graph is built.
/// Mean divides by N. A label outside [0, C) is an Error naming its index and value.
Tensor crossEntropy(const Tensor& logits, const Tensor& labels, CrossEntropyOptions opts = {});

/// Binary cross-entropy on logits x with targets t in [0, 1] (same shape, both F32), in the
/// stable form max(x, 0) - x t + log1p(exp(-|x|)) (PyTorch BCEWithLogitsLoss). Gradients:
/// sigmoid(x) - t for x and -x for t. Mean divides by the element count.
Tensor binaryCrossEntropyWithLogits(const Tensor& logits, const Tensor& targets,
                                    Reduction reduction = Reduction::Mean);

/// Squared error (a - b)^2 of two equally shaped F32 tensors. Mean divides by the element count.
Tensor mseLoss(const Tensor& a, const Tensor& b, Reduction reduction = Reduction::Mean);

}  // namespace mantissa
