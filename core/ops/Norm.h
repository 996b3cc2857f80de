#pragma once

#include "core/Tensor.h"

namespace mantissa {

/// Options of batchNorm, PyTorch `F.batch_norm` semantics.
struct BatchNormOptions {
  /// True: normalise with the batch statistics and update the running ones. False (PyTorch's
  /// default, inference): normalise with the running statistics.
  bool training = false;
  /// running = (1 - momentum) * running + momentum * batch statistic.
  double momentum = 0.1;
  /// Added to the variance before the square root.
  double eps = 1e-5;
};

/// Batch normalisation over all axes but the channel axis 1 of an [N, C], [N, C, L] or
/// [N, C, H, W] input
/// (oneDNN batch_normalization):  y = (x - mean) / sqrt(var + eps) * gamma + beta.
/// `gamma`, `beta` are [C] or undefined (no affine transform: gamma 1, beta 0).
/// `runningMean`, `runningVar` are contiguous F32 [C] buffers. Training mode normalises with the
/// batch mean and biased variance and, when the buffers are defined, updates them in place with
/// the batch mean and the *unbiased* variance (n/(n-1) correction), exactly as PyTorch does.
/// Inference mode requires them and normalises with them. Gradients flow to x, gamma and beta
/// (never to the running statistics).
/// Training mode runs on Mantissa's kernels: per channel the mean and biased variance by two
/// passes summed in double (accurate for data with a large mean), y = ((x - mean_hi) - mean_lo)
/// * (gamma / sigma) + beta as one FMA, and the backward sums in double; channels in parallel,
/// each summed in one fixed order, so the bits do not depend on the thread count.
Tensor batchNorm(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                 const Tensor& runningMean, const Tensor& runningVar,
                 const BatchNormOptions& opts = {});

/// relu(batchNorm(...)) with the same bits, gradients included. In inference mode without
/// autograd the two run as one pass over the data (the eval-mode forward of conv - bn - relu
/// blocks); in training mode as one pass after the statistics, with one autograd node whose
/// backward recomputes relu's mask from x; otherwise it is exactly the composition.
Tensor batchNormRelu(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                     const Tensor& runningMean, const Tensor& runningVar,
                     const BatchNormOptions& opts = {});

/// relu(add(batchNorm(...), residual)) with the same bits (the end of a ResNet basic block:
/// bn2, the shortcut add, relu). In inference mode without autograd and with a residual of x's
/// shape this is one pass over the data; in training mode with a residual of x's shape it is
/// fused as in batchNormRelu (the residual's gradient is relu's masked gradient); otherwise
/// exactly the composition (add broadcasts).
Tensor batchNormAddRelu(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                        const Tensor& runningMean, const Tensor& runningVar, const Tensor& residual,
                        const BatchNormOptions& opts = {});

/// leakyRelu(batchNorm(...), slope) with the same bits, gradients included: in training mode one
/// pass after the statistics and one autograd node (as batchNormRelu); otherwise exactly the
/// composition (the DCGAN discriminator's BatchNorm2d - LeakyReLU).
Tensor batchNormLeakyRelu(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                          const Tensor& runningMean, const Tensor& runningVar, float slope,
                          const BatchNormOptions& opts = {});

namespace detail {
/// Testing hook: route the forward of inference-mode batchNorm / batchNormRelu /
/// batchNormAddRelu through oneDNN's batch_normalization primitive (its ncsp_bnorm kernel, used
/// before Mantissa had its own loop) and the separate add and relu ops, instead of Mantissa's
/// one-pass kernel, so tests can compare the two bit for bit. Process-wide.
void setBatchNormDnnlInference(bool on);
/// Testing hook: run lrn's backward on oneDNN's reference kernel (its only one for plain NCHW)
/// instead of Mantissa's loop with the same arithmetic, so tests can compare them bit for bit.
void setLrnDnnlBackward(bool on);
}  // namespace detail

/// Options of lrn. Defaults are AlexNet's (Krizhevsky et al. 2012, §3.3): note k = 2, whereas
/// PyTorch's `nn.LocalResponseNorm` defaults to k = 1.
struct LrnOptions {
  /// Number of neighbouring channels summed, the channel itself included; must be odd.
  int64_t size = 5;
  double alpha = 1e-4;
  double beta = 0.75;
  double k = 2.0;
};

/// Local response normalisation across channels of an [N, C, H, W] input, PyTorch
/// `nn.LocalResponseNorm` semantics (alpha is divided by size):
///   y_c = x_c / (k + alpha/size * Σ_{|c'-c| <= size/2} x_{c'}^2)^beta
/// with channels outside [0, C) counting as zero (oneDNN lrn_across_channels).
Tensor lrn(const Tensor& x, const LrnOptions& opts = {});

}  // namespace mantissa
