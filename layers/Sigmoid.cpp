#include "layers/Sigmoid.h"

#include "core/ops/Elementwise.h"

namespace mantissa::nn {

Tensor Sigmoid::forward(const Tensor& x) { return mantissa::sigmoid(x); }

}  // namespace mantissa::nn
