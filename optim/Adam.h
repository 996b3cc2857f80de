#pragma once

#include <utility>

#include "optim/Optimizer.h"

namespace mantissa::optim {

/// Options of Adam, with PyTorch's meanings and defaults (torch.optim.Adam).
struct AdamOptions {
  double lr = 1e-3;
  /// Decay rates of the first and second moment estimates, each in [0, 1).
  std::pair<double, double> betas = {0.9, 0.999};
  double eps = 1e-8;
  /// L2 penalty added to the gradient (coupled; AdamW decouples it).
  double weightDecay = 0;
  /// Use the maximum of all second-moment estimates so far (Reddi et al. 2018).
  bool amsgrad = false;
};

/// Options of AdamW: the same as Adam with PyTorch's AdamW default weight decay.
struct AdamWOptions {
  double lr = 1e-3;
  std::pair<double, double> betas = {0.9, 0.999};
  double eps = 1e-8;
  /// Decoupled decay (Loshchilov & Hutter 2019): p *= 1 - lr * weightDecay before the step.
  double weightDecay = 1e-2;
  bool amsgrad = false;
};

/// Adam (Kingma & Ba 2015), exactly PyTorch's update with t = this parameter's step count:
///   g = grad + wd * p                      (Adam; AdamW instead does p *= 1 - lr * wd)
///   m = lerp(m, g, 1 - beta1);  v = beta2 * v + (1 - beta2) * g^2
///   vmax = max(vmax, v)                    (amsgrad; then v := vmax below)
///   p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
/// State slots: "exp_avg", "exp_avg_sq", and "max_exp_avg_sq" with amsgrad.
class Adam : public Optimizer {
 public:
  Adam(NamedParameters params, AdamOptions opts = {});
  const AdamOptions& options() const { return opts_; }
  bool decoupledWeightDecay() const { return decoupled_; }

 protected:
  Adam(std::string type, NamedParameters params, AdamOptions opts, bool decoupled);
  void update(Tensor& param, const Tensor& grad, Slots& slots, int64_t step) override;
  std::vector<std::string> slotNames() const override;

 private:
  AdamOptions opts_;
  bool decoupled_ = false;
};

/// AdamW: Adam with decoupled weight decay (saved with type "adamw").
class AdamW : public Adam {
 public:
  AdamW(NamedParameters params, AdamWOptions opts = {});
};

}  // namespace mantissa::optim
