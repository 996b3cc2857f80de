#include "layers/LocalResponseNorm.h"

#include <sstream>

#include "core/ops/Norm.h"

namespace mantissa::nn {

LocalResponseNorm::LocalResponseNorm(int64_t size, LocalResponseNormOptions opts)
    : Module("LocalResponseNorm"), size_(size), opts_(opts) {
  MANTISSA_CHECK(size > 0 && size % 2 == 1, "LocalResponseNorm: size ", size,
                 " must be odd and positive");
  MANTISSA_CHECK(opts.k > 0 && opts.alpha >= 0 && opts.beta >= 0, "LocalResponseNorm: need k > 0",
                 ", alpha >= 0, beta >= 0 (got k=", opts.k, ", alpha=", opts.alpha,
                 ", beta=", opts.beta, ")");
}

Tensor LocalResponseNorm::forward(const Tensor& x) {
  MANTISSA_CHECK(x.dim() == 4, "LocalResponseNorm: input must be [N, C, H, W], got ",
                 toString(x.shape()));
  return lrn(x, {.size = size_, .alpha = opts_.alpha, .beta = opts_.beta, .k = opts_.k});
}

std::string LocalResponseNorm::extraRepr() const {
  std::ostringstream os;
  os << size_ << ", alpha=" << opts_.alpha << ", beta=" << opts_.beta << ", k=" << opts_.k;
  return os.str();
}

}  // namespace mantissa::nn
