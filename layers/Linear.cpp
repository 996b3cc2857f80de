#include "layers/Linear.h"

#include <cmath>

#include "core/ops/Elementwise.h"
#include "core/ops/Linalg.h"
#include "core/ops/Reduce.h"
#include "core/ops/detail/BfpGemm.h"

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
  // int8 block-FP kernels (DotProductLayer::Gemms): A [M, K] and B [N, K] read in place, with
  // K the GEMM's reduction axis (the axis the HBFP blocks of both operands run along). They take
  // the FP32 values (Gemms::int8Codes false: bfpGemm recovers the integers from them).
  namespace od = ops::detail;
  // C [M, N] = A Bᵀ; A row m, k at a[m * am + k * ak]; B row n, k at b[n * bn + k * bk].
  auto int8 = [](const Tensor& a, int64_t am, int64_t ak, int bitsA, const Tensor& b, int64_t bn,
                 int64_t bk, int bitsB, int64_t M, int64_t N, int64_t K, int64_t block) {
    Tensor c = Tensor::uninitialized({M, N});
    const od::BfpSource A{.rows1 = M, .segLen = K, .values = a.data<float>(), .s1 = am, .sk = ak,
                          .bits = bitsA};
    const od::BfpSource B{.rows1 = N, .segLen = K, .values = b.data<float>(), .s1 = bn, .sk = bk,
                          .bits = bitsB};
    return od::bfpGemm(A, B, block, c.data<float>(), N, od::bestBfpIsa()) ? c : Tensor();
  };
  // forward: y [N, out] = x [N, in] · w [out, in]ᵀ, K = in.
  g.int8Forward = [int8](const Int8Operand& x, const Int8Operand& w, const Int8Operands& o) {
    Tensor xc = x.values().contiguous(), wc = w.values().contiguous();
    const int64_t n = xc.size(0), in = xc.size(1), out = wc.size(0);
    return int8(xc, in, 1, o.bitsA, wc, in, 1, o.bitsB, n, out, in, o.block);
  };
  // backward-data: gx [N, in] = gy [N, out] · w [out, in], K = out (w read down its columns).
  g.int8BackwardData = [int8](const Int8Operand& gy, const Int8Operand& w, const Int8Operands& o) {
    Tensor gc = gy.values().contiguous(), wc = w.values().contiguous();
    const int64_t n = gc.size(0), out = gc.size(1), in = wc.size(1);
    return int8(gc, out, 1, o.bitsA, wc, 1, in, o.bitsB, n, in, out, o.block);
  };
  // backward-weights: gw [out, in] = gy [N, out]ᵀ · x [N, in], K = N (both read down columns).
  g.int8BackwardWeights = [int8](const Int8Operand& x, const Int8Operand& gy,
                                 const Int8Operands& o) {
    Tensor xc = x.values().contiguous(), gc = gy.values().contiguous();
    const int64_t n = xc.size(0), in = xc.size(1), out = gc.size(1);
    return int8(gc, 1, out, o.bitsB, xc, 1, in, o.bitsA, out, in, n, o.block);
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
