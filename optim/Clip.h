#pragma once

#include <limits>
#include <vector>

#include "core/Tensor.h"
#include "optim/Optimizer.h"

namespace mantissa::optim {

/// Gradient clipping by global norm (PyTorch clip_grad_norm_): computes the `normType`-norm of
/// all gradients taken together (infinity for the max-abs norm) and, when it exceeds maxNorm,
/// scales every gradient in place by maxNorm / (norm + 1e-6). Parameters without a gradient are
/// skipped. Returns the norm before clipping; when it is not finite the gradients are left
/// untouched (check the return value). The norm is accumulated in double over fixed chunks, so
/// it does not depend on the thread count.
double clipGradNorm(const std::vector<Tensor>& params, double maxNorm, double normType = 2.0);
double clipGradNorm(const NamedParameters& params, double maxNorm, double normType = 2.0);

/// Weight clipping (Arjovsky et al. 2017, WGAN critic): clamps every parameter in place to
/// [-c, c], under NoGradGuard. c must be > 0.
void clipWeights(const std::vector<Tensor>& params, double c);
void clipWeights(const NamedParameters& params, double c);

}  // namespace mantissa::optim
