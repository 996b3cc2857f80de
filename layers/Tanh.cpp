#include "layers/Tanh.h"

#include "core/ops/Elementwise.h"

namespace mantissa::nn {

Tensor Tanh::forward(const Tensor& x) { return mantissa::tanh(x); }

}  // namespace mantissa::nn
