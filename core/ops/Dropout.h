#pragma once

#include "core/Tensor.h"

namespace mantissa {

class Rng;

/// Inverted dropout: in training each element is zeroed with probability `p` and the survivors
/// are scaled by 1/(1-p), so the expected value is unchanged and evaluation needs no rescaling.
/// Returns `x` itself when `training` is false or p == 0. `p` must lie in [0, 1).
///
/// Randomness: one call draws exactly two 32-bit words from `rng` (a Philox key) and derives
/// element i's uniform from philox4x32(key, counter i/4), so the mask depends only on the
/// generator's state and the element index: the same seed gives the same mask at any thread count, and the
/// generator advances by the same amount whatever the tensor size. The backward pass multiplies
/// the gradient by the very mask used forward.
Tensor dropout(const Tensor& x, float p, bool training, Rng& rng);

}  // namespace mantissa
