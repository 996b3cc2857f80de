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
  // K the GEMM's reduction axis (the axis the HBFP blocks of both operands run along), from the
  // operands' codes (forward, backward-data) or values (backward-weights).
  namespace od = ops::detail;
  // One operand: row r, k at offset r * sr + k * sk; with codes, the exponent of row r, block kb
  // at r * er + kb * eb. `hold` keeps what the source points at alive.
  struct Src {
    const Int8Operand& op;
    int64_t sr, sk, er, eb;
    int bits;
  };
  auto source = [](const Src& o, int64_t rows, int64_t K, Tensor hold[2]) {
    od::BfpSource src{.rows1 = rows, .segLen = K, .s1 = o.sr, .sk = o.sk, .bits = o.bits};
    if (o.op.hasCodes()) {
      hold[0] = o.op.codes.codes.contiguous(), hold[1] = o.op.codes.exponents.contiguous();
      src.mantissas = hold[0].data<int8_t>(), src.exponents = hold[1].data<int16_t>();
      src.e1 = o.er, src.eb = o.eb;
    } else {
      hold[0] = o.op.f32.contiguous();
      src.values = hold[0].data<float>();
    }
    return src;
  };
  // C [M, N] = A Bᵀ.
  auto int8 = [source](const Src& a, const Src& b, int64_t M, int64_t N, int64_t K, int64_t block) {
    Tensor c = Tensor::uninitialized({M, N}), ha[2], hb[2];
    const od::BfpSource A = source(a, M, K, ha), B = source(b, N, K, hb);
    return od::bfpGemm(A, B, block, c.data<float>(), N, od::bestBfpIsa()) ? c : Tensor();
  };
  // forward: y [N, out] = x [N, in] · w [out, in]ᵀ, K = in; exponents [N, in/block] and
  // [out, in/block].
  g.int8Forward = [int8](const Int8Operand& x, const Int8Operand& w, const Int8Operands& o) {
    const Shape& xs = x.hasCodes() ? x.codes.shape : x.f32.shape();
    const Shape& ws = w.hasCodes() ? w.codes.shape : w.f32.shape();
    const int64_t n = xs[0], in = xs[1], out = ws[0], KB = (in + o.block - 1) / o.block;
    return int8({x, in, 1, KB, 1, o.bitsA}, {w, in, 1, KB, 1, o.bitsB}, n, out, in, o.block);
  };
  // backward-data: gx [N, in] = gy [N, out] · w [out, in], K = out (w read down its columns);
  // exponents [N, out/block] and [out/block, in].
  g.int8BackwardData = [int8](const Int8Operand& gy, const Int8Operand& w, const Int8Operands& o) {
    const Shape& gs = gy.hasCodes() ? gy.codes.shape : gy.f32.shape();
    const Shape& ws = w.hasCodes() ? w.codes.shape : w.f32.shape();
    const int64_t n = gs[0], out = gs[1], in = ws[1], OB = (out + o.block - 1) / o.block;
    return int8({gy, out, 1, OB, 1, o.bitsA}, {w, 1, in, 1, in, o.bitsB}, n, in, out, o.block);
  };
  // backward-weights: gw [out, in] = gy [N, out]ᵀ · x [N, in], K = N (both read down columns;
  // values).
  g.int8BackwardWeights = [int8](const Int8Operand& x, const Int8Operand& gy,
                                 const Int8Operands& o) {
    const int64_t n = x.f32.size(0), in = x.f32.size(1), out = gy.f32.size(1);
    return int8({gy, 1, out, 0, 0, o.bitsB}, {x, 1, in, 0, 0, o.bitsA}, out, in, n, o.block);
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
