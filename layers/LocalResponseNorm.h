#pragma once

#include "layers/Module.h"

namespace mantissa::nn {

/// Options of LocalResponseNorm with PyTorch's defaults (`nn.LocalResponseNorm`: k = 1).
/// AlexNet (Krizhevsky et al. 2012, §3.3) writes the sum without dividing by the size and uses
/// n = 5, k = 2, alpha = 1e-4, beta = 0.75; in PyTorch's convention that is alpha = 5e-4.
struct LocalResponseNormOptions {
  double alpha = 1e-4;
  double beta = 0.75;
  double k = 1.0;
};

/// Local response normalisation across channels, PyTorch `nn.LocalResponseNorm`:
///   y_c = x_c / (k + alpha/size * Σ_{|c'-c| <= size/2} x_{c'}^2)^beta
/// over an [N, C, H, W] input. `size` must be odd (oneDNN's across-channel LRN is symmetric).
class LocalResponseNorm : public Module {
 public:
  explicit LocalResponseNorm(int64_t size, LocalResponseNormOptions opts = {});

  Tensor forward(const Tensor& x) override;
  /// "5, alpha=0.0005, beta=0.75, k=2".
  std::string extraRepr() const override;

 private:
  int64_t size_;
  LocalResponseNormOptions opts_;
};

}  // namespace mantissa::nn
