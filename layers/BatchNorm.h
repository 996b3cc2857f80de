#pragma once

#include <optional>

#include "layers/Module.h"

namespace mantissa::nn {

/// Options of BatchNorm1d / BatchNorm2d, PyTorch's keyword arguments and defaults.
struct BatchNormOptions {
  double eps = 1e-5;
  /// running = (1 - momentum) * running + momentum * batch statistic; std::nullopt gives
  /// PyTorch's `momentum=None`: a cumulative average with factor 1/num_batches_tracked.
  std::optional<double> momentum = 0.1;
  /// Learnable per-channel scale `weight` (init 1) and shift `bias` (init 0).
  bool affine = true;
  /// Keep running_mean / running_var / num_batches_tracked buffers and normalise with them in
  /// eval mode. Without them batch statistics are used in both modes (PyTorch's rule).
  bool trackRunningStats = true;
};

/// Shared part of BatchNorm1d and BatchNorm2d (PyTorch's `_BatchNorm`): parameters `weight`,
/// `bias` [C] and buffers `running_mean` (0), `running_var` (1) [C] and `num_batches_tracked`
/// (I64 scalar), named as in PyTorch's state_dict. Runs in FP32 under every precision recipe.
class BatchNorm : public Module {
 public:
  BatchNorm(std::string typeName, int64_t numFeatures, BatchNormOptions opts);

  /// "16, eps=1e-05, momentum=0.1" plus non-default flags.
  std::string extraRepr() const override;

  int64_t numFeatures() const { return c_; }
  const BatchNormOptions& options() const { return opts_; }
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }
  const Tensor& runningMean() const { return runningMean_; }
  const Tensor& runningVar() const { return runningVar_; }
  /// Training-mode forward passes seen so far (0 without running statistics).
  int64_t numBatchesTracked() const;

 protected:
  /// Normalises an [N, C] or [N, C, H, W] tensor over every axis but 1, updating the running
  /// statistics in training mode; with `relu`, relu(normalised + residual) (residual optional;
  /// one pass in eval mode without autograd, see batchNormRelu and batchNormAddRelu); with
  /// `leakySlope`, leakyRelu(normalised, *leakySlope) instead (fused in training mode).
  Tensor normalize(const Tensor& x, bool relu = false, const Tensor& residual = Tensor(),
                   std::optional<float> leakySlope = std::nullopt);

 private:
  int64_t c_;
  BatchNormOptions opts_;
  Tensor weight_, bias_, runningMean_, runningVar_, numBatches_;
};

}  // namespace mantissa::nn
