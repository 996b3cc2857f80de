#pragma once

#include "layers/Module.h"

namespace mantissa::nn {

/// x for x > 0, negativeSlope * x otherwise, PyTorch `nn.LeakyReLU` (default slope 0.01; the
/// DCGAN discriminator uses 0.2).
class LeakyReLU : public Module {
 public:
  explicit LeakyReLU(float negativeSlope = 0.01f);

  Tensor forward(const Tensor& x) override;
  /// "negative_slope=0.2".
  std::string extraRepr() const override;
  float negativeSlope() const { return slope_; }

 private:
  float slope_;
};

}  // namespace mantissa::nn
