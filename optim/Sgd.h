#pragma once

#include "optim/Optimizer.h"

namespace mantissa::optim {

/// Options of Sgd, with PyTorch's meanings and defaults (torch.optim.SGD).
struct SgdOptions {
  double lr = 1e-3;
  double momentum = 0;
  /// Fraction of the gradient withheld from the momentum buffer (0 = none).
  double dampening = 0;
  /// L2 penalty added to the gradient: g + weightDecay * p.
  double weightDecay = 0;
  /// Nesterov momentum; needs momentum > 0 and dampening = 0.
  bool nesterov = false;
};

/// Stochastic gradient descent with momentum, exactly PyTorch's update:
///   g = grad + wd * p
///   buf = g                                  (first update of the parameter)
///   buf = momentum * buf + (1 - dampening) * g   (later updates)
///   g = nesterov ? g + momentum * buf : buf      (when momentum != 0)
///   p = p - lr * g
/// State slot: "momentum_buffer" (only when momentum != 0).
class Sgd : public Optimizer {
 public:
  Sgd(NamedParameters params, SgdOptions opts = {});
  const SgdOptions& options() const { return opts_; }

 protected:
  void update(Tensor& param, const Tensor& grad, Slots& slots, int64_t step) override;
  std::vector<std::string> slotNames() const override;

 private:
  SgdOptions opts_;
};

}  // namespace mantissa::optim
