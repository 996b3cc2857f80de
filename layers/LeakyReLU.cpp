#include "layers/LeakyReLU.h"

#include <cmath>
#include <sstream>

#include "core/ops/Elementwise.h"

namespace mantissa::nn {

LeakyReLU::LeakyReLU(float negativeSlope) : Module("LeakyReLU"), slope_(negativeSlope) {
  MANTISSA_CHECK(std::isfinite(negativeSlope), "LeakyReLU: negative slope must be finite, got ",
                 negativeSlope);
}

Tensor LeakyReLU::forward(const Tensor& x) { return leakyRelu(x, slope_); }

std::string LeakyReLU::extraRepr() const {
  std::ostringstream os;
  os << "negative_slope=" << slope_;
  return os.str();
}

}  // namespace mantissa::nn
