#pragma once

#include "layers/Module.h"

namespace mantissa::nn {

/// Hyperbolic tangent elementwise, PyTorch `nn.Tanh` (the DCGAN generator output).
class Tanh : public Module {
 public:
  Tanh() : Module("Tanh") {}

  Tensor forward(const Tensor& x) override;
};

}  // namespace mantissa::nn
