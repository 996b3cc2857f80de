#include "layers/ReLU.h"

#include "core/ops/Elementwise.h"

namespace mantissa::nn {

Tensor ReLU::forward(const Tensor& x) { return mantissa::relu(x); }

}  // namespace mantissa::nn
