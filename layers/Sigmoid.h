#pragma once

#include "layers/Module.h"

namespace mantissa::nn {

/// 1 / (1 + exp(-x)) elementwise, PyTorch `nn.Sigmoid` (the DCGAN discriminator output).
class Sigmoid : public Module {
 public:
  Sigmoid() : Module("Sigmoid") {}

  Tensor forward(const Tensor& x) override;
};

}  // namespace mantissa::nn
