#pragma once

#include "layers/Module.h"

namespace mantissa::nn {

/// max(x, 0) elementwise, PyTorch `nn.ReLU` (the gradient at 0 is 0).
class ReLU : public Module {
 public:
  ReLU() : Module("ReLU") {}

  Tensor forward(const Tensor& x) override;
};

}  // namespace mantissa::nn
