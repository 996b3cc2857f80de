#pragma once

#include "core/Rng.h"
#include "layers/DotProduct.h"

namespace mantissa::nn {

struct LinearOptions {
  bool bias = true;
};

/// y = x wᵀ + b with x [N, in], w [out, in] (PyTorch layout), b [out]. Initialised like
/// PyTorch: w, b ~ U(-1/sqrt(in), 1/sqrt(in)) (Kaiming-uniform with a = sqrt(5)).
class Linear : public DotProductLayer {
 public:
  Linear(int64_t inFeatures, int64_t outFeatures, Rng& rng, LinearOptions opts = {});

  Tensor forward(const Tensor& x) override;
  std::string extraRepr() const override;

  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }

 private:
  int64_t in_, out_;
  Tensor weight_, bias_;
};

}  // namespace mantissa::nn
