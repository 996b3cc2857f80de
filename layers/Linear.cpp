#include "layers/Linear.h"

#include <cmath>

#include "core/ops/Elementwise.h"
#include "core/ops/Linalg.h"
#include "core/ops/Reduce.h"

namespace mantissa::nn {

Linear::Linear(int64_t inFeatures, int64_t outFeatures, Rng& rng, LinearOptions opts)
    : DotProductLayer("Linear"), in_(inFeatures), out_(outFeatures) {
  MANTISSA_CHECK(inFeatures > 0 && outFeatures > 0, "Linear: features must be positive, got ",
                 inFeatures, " -> ", outFeatures);
  float bound = 1.0f / std::sqrt(static_cast<float>(inFeatures));
  weight_ = registerParameter("weight", Tensor::rand({outFeatures, inFeatures}, rng, -bound, bound));
  if (opts.bias) bias_ = registerParameter("bias", Tensor::rand({outFeatures}, rng, -bound, bound));
  weightBlockAxis_ = 1;
}

Tensor Linear::forward(const Tensor& input) {
  MANTISSA_CHECK(input.dim() >= 2 && input.size(-1) == in_, "Linear(", in_, " -> ", out_,
                 "): input of shape ", toString(input.shape()), " (expected [N, ", in_, "])");
  Tensor x = input.dim() == 2 ? input : input.reshape({-1, in_});
  Gemms g;
  g.opName = "linear";
  // x [N, in]: forward reduces over in; backward-weights (gyᵀ x) over N.
  g.xForward = {1};
  g.xWeightGrad = {0};
  // w [out, in]: forward reduces over in; backward-data (gy w) over out.
  g.wForward = {1};
  g.wDataGrad = {0};
  // gy [N, out]: backward-data over out; backward-weights over N.
  g.gyDataGrad = {1};
  g.gyWeightGrad = {0};
  g.forward = [](const Tensor& a, const Tensor& w) { return linearForward(a, w, Tensor()); };
  g.backwardData = [](const Tensor& gy, const Tensor& w) { return linearBackwardData(gy, w); };
  g.backwardWeights = [](const Tensor& a, const Tensor& gy) {
    return linearBackwardWeights(a, gy, false).weight;
  };
  Tensor y = run(
      x, weight_, bias_, g, [](const Tensor& out, const Tensor& b) { return add(out, b); },
      [](const Tensor& gy) { return sum(gy, {0}); });
  if (input.dim() == 2) return y;
  Shape s = input.shape();
  s.back() = out_;
  return y.reshape(s);
}

std::string Linear::extraRepr() const {
  return std::to_string(in_) + ", " + std::to_string(out_) + (bias_.defined() ? "" : ", bias=false");
}

}  // namespace mantissa::nn
