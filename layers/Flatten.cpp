#include "layers/Flatten.h"

namespace mantissa::nn {

Flatten::Flatten(int64_t startDim, int64_t endDim)
    : Module("Flatten"), start_(startDim), end_(endDim) {}

Tensor Flatten::forward(const Tensor& x) {
  const int64_t s = normalizeAxis(start_, x.dim(), "Flatten: start_dim");
  const int64_t e = normalizeAxis(end_, x.dim(), "Flatten: end_dim");
  MANTISSA_CHECK(s <= e, "Flatten: start_dim ", start_, " comes after end_dim ", end_,
                 " for an input of shape ", toString(x.shape()));
  return x.flatten(s, e);
}

std::string Flatten::extraRepr() const {
  return "start_dim=" + std::to_string(start_) + ", end_dim=" + std::to_string(end_);
}

}  // namespace mantissa::nn
