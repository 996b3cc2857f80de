#pragma once

#include "optim/Optimizer.h"

namespace mantissa::optim {

/// Options of RmsProp, with PyTorch's meanings and defaults (torch.optim.RMSprop).
struct RmsPropOptions {
  double lr = 1e-2;
  /// Smoothing constant of the squared-gradient average, in [0, 1].
  double alpha = 0.99;
  double eps = 1e-8;
  /// L2 penalty added to the gradient: g + weightDecay * p.
  double weightDecay = 0;
  double momentum = 0;
  /// Normalise by an estimate of the gradient's variance instead of its second moment.
  bool centered = false;
};

/// RMSprop (Hinton, Coursera lecture 6e), exactly PyTorch's update:
///   g = grad + wd * p
///   s = alpha * s + (1 - alpha) * g^2
///   a = lerp(a, g, 1 - alpha);  d = sqrt(s - a^2) + eps     (centered)
///   d = sqrt(s) + eps                                       (otherwise)
///   buf = momentum * buf + g / d;  p = p - lr * buf         (momentum > 0)
///   p = p - lr * g / d                                      (otherwise)
/// State slots: "square_avg", plus "momentum_buffer" (momentum > 0) and "grad_avg" (centered),
/// all starting at zero.
class RmsProp : public Optimizer {
 public:
  RmsProp(NamedParameters params, RmsPropOptions opts = {});
  const RmsPropOptions& options() const { return opts_; }

 protected:
  void update(Tensor& param, const Tensor& grad, Slots& slots, int64_t step) override;
  std::vector<std::string> slotNames() const override;

 private:
  RmsPropOptions opts_;
};

}  // namespace mantissa::optim
