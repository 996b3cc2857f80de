#include "core/ops/Linalg.h"

#include "core/autograd/Autograd.h"
#include "core/ops/Reduce.h"
#include "core/ops/detail/DnnlBf16.h"

namespace mantissa {

namespace {

using dnnl::memory;

std::string pairText(const char* na, const Tensor& a, const char* nb, const Tensor& b) {
  return mantissa::detail::concat(na, " ", toString(a.shape()), " and ", nb, " ",
                                  toString(b.shape()));
}

/// A matrix operand as oneDNN sees it. Contiguous tensors and transposed views of contiguous
/// data (last two axes swapped) go in as strides, so gradients like a·bᵀ need no copy; anything
/// else is copied to contiguous first (oneDNN's fast GEMM path wants one unit-stride axis).
struct Operand {
  Tensor t;
  memory::desc desc;
};

Operand gemmOperand(const Tensor& x, memory::data_type dt) {
  Tensor t = x.detach();
  if (!t.isContiguous()) {
    const Shape& s = t.strides();
    const Shape& n = t.shape();
    const int64_t r = t.dim();
    bool transposed = s[r - 2] == 1 && s[r - 1] == n[r - 2] &&
                      (r == 2 || n[0] == 1 || s[0] == n[1] * n[2]);
    if (!transposed) t = t.contiguous();
  }
  return {t, ops::detail::retyped(mantissa::detail::stridedDesc(t.shape(), t.strides()), dt)};
}

/// out = a · b (+ bias broadcast over rows) through the oneDNN matmul primitive.
Tensor gemmImpl(const Tensor& a, const Tensor& b, const Tensor& bias, const char* op) {
  const memory::data_type dt = ops::detail::pairType(op, a, b);  // f32, or bf16 bit patterns
  const int64_t r = a.dim();
  MANTISSA_CHECK((r == 2 || r == 3) && b.dim() == r, op,
                 ": expected two 2-D or two 3-D operands, got ", pairText("a", a, "b", b));
  const int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1);
  MANTISSA_CHECK(b.size(-2) == k, op, ": inner sizes differ (", k, " vs ", b.size(-2), ") for ",
                 pairText("a", a, "b", b));
  MANTISSA_CHECK(r == 2 || a.size(0) == b.size(0), op, ": batch sizes differ for ",
                 pairText("a", a, "b", b));
  Shape outShape = r == 2 ? Shape{m, n} : Shape{a.size(0), m, n};
  Tensor out = Tensor::empty(outShape);
  if (bias.defined()) {
    MANTISSA_CHECK(bias.dtype() == DType::F32 && bias.dim() == 1 && bias.size(0) == n, op,
                   ": bias must be f32 [", n, "], got ", toString(bias.shape()));
  }
  if (out.numel() == 0) return out;
  if (k == 0) {  // empty reduction: the product is zero (plus bias)
    if (!bias.defined()) return out;
    return gemmImpl(Tensor::zeros(r == 2 ? Shape{m, 1} : Shape{a.size(0), m, 1}),
                    Tensor::zeros(r == 2 ? Shape{1, n} : Shape{a.size(0), 1, n}), bias, op);
  }
  Operand oa = gemmOperand(a, dt), ob = gemmOperand(b, dt);
  Tensor bc;
  const bool done = mantissa::detail::dnnlCall(op, pairText("a", a, "b", b), [&] {
    memory::desc dstDesc = mantissa::detail::plainDesc(outShape);  // F32 result in both cases
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, ops::detail::wrapOperand(oa.t, oa.desc)},
                                         {DNNL_ARG_WEIGHTS, ops::detail::wrapOperand(ob.t, ob.desc)},
                                         {DNNL_ARG_DST, mantissa::detail::wrap(out, dstDesc)}};
    dnnl::matmul::primitive_desc pd;
    if (bias.defined()) {
      bc = bias.detach().contiguous();
      memory::desc biasDesc = mantissa::detail::plainDesc(r == 2 ? Shape{1, n} : Shape{1, 1, n});
      args[DNNL_ARG_BIAS] = mantissa::detail::wrap(bc, biasDesc);
      pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(oa.desc, ob.desc, biasDesc, dstDesc),
                                        mantissa::detail::dnnlAttr(), mantissa::detail::dnnlEngine());
    } else {
      pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(oa.desc, ob.desc, dstDesc),
                                        mantissa::detail::dnnlAttr(), mantissa::detail::dnnlEngine());
    }
    if (dt == memory::data_type::bf16 && ops::detail::isReference(pd)) return false;
    mantissa::detail::execute(dnnl::matmul(pd), args);
    return true;
  });
  if (done) return out;
  // bf16 operands but only oneDNN's reference matmul for this shape: FP32 on the widened
  // (exactly equal) values instead.
  ops::detail::countBf16NoKernel();
  return gemmImpl(ops::detail::widenBf16(oa.t), ops::detail::widenBf16(ob.t), bias, op);
}

Tensor transposed(const Tensor& t) { return t.detach().transpose(-2, -1); }

}  // namespace

Tensor gemm(const Tensor& a, const Tensor& b) { return gemmImpl(a, b, Tensor(), "gemm"); }

Tensor linearForward(const Tensor& x, const Tensor& w, const Tensor& b) {
  MANTISSA_CHECK(x.defined() && w.defined(), "linear: undefined input or weight");
  MANTISSA_CHECK(x.dim() == 2 && w.dim() == 2, "linear: expected x [N, in] and w [out, in], got ",
                 pairText("x", x, "w", w));
  MANTISSA_CHECK(x.size(1) == w.size(1), "linear: x has ", x.size(1), " features but w expects ",
                 w.size(1), " (", pairText("x", x, "w", w), ")");
  // w is [out, in]; its transposed view [in, out] reaches oneDNN as strides (no copy).
  return gemmImpl(x, transposed(w), b, "linear");
}

Tensor linearBackwardData(const Tensor& gradOut, const Tensor& w) {
  MANTISSA_CHECK(gradOut.defined() && w.defined() && gradOut.dim() == 2 && w.dim() == 2 &&
                     gradOut.size(1) == w.size(0),
                 "linearBackwardData: expected gradOut [N, out] and w [out, in], got ",
                 pairText("gradOut", gradOut, "w", w));
  return gemmImpl(gradOut, w, Tensor(), "linearBackwardData");
}

WeightGrads linearBackwardWeights(const Tensor& x, const Tensor& gradOut, bool withBias) {
  MANTISSA_CHECK(x.defined() && gradOut.defined() && x.dim() == 2 && gradOut.dim() == 2 &&
                     x.size(0) == gradOut.size(0),
                 "linearBackwardWeights: expected x [N, in] and gradOut [N, out], got ",
                 pairText("x", x, "gradOut", gradOut));
  WeightGrads g;
  g.weight = gemmImpl(transposed(gradOut), x, Tensor(), "linearBackwardWeights");
  if (withBias) {
    g.bias = sum(ops::detail::isBf16Bits(gradOut) ? ops::detail::widenBf16(gradOut) : gradOut.detach(),
                 {0});
  }
  return g;
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  MANTISSA_CHECK(a.defined() && b.defined(), "matmul: undefined operand");
  MANTISSA_CHECK((a.dim() == 2 && b.dim() == 2) || (a.dim() == 3 && (b.dim() == 2 || b.dim() == 3)),
                 "matmul: supported ranks are 2x2, 3x3 and 3x2, got ", pairText("a", a, "b", b));
  // [B, M, K] · [K, N] is one [B*M, K] · [K, N] GEMM.
  const bool shared = a.dim() == 3 && b.dim() == 2;
  auto flat = [](const Tensor& t) { return t.detach().contiguous().reshape({-1, t.size(-1)}); };
  Tensor out;
  if (shared) {
    MANTISSA_CHECK(a.size(2) == b.size(0), "matmul: inner sizes differ (", a.size(2), " vs ",
                   b.size(0), ") for ", pairText("a", a, "b", b));
    out = gemmImpl(flat(a), b, Tensor(), "matmul").reshape({a.size(0), a.size(1), b.size(1)});
  } else {
    out = gemmImpl(a, b, Tensor(), "matmul");
  }
  if (autograd::needsGrad({a, b})) {
    autograd::record(
        out, "matmul", {a, b},
        [a = a.detach(), b = b.detach(), needA = a.needsGrad(), needB = b.needsGrad(), shared,
         flat](const Tensor& g) -> autograd::GradList {
          Tensor ga, gb;
          if (shared) {
            Tensor g2 = flat(g), a2 = flat(a);
            if (needA) ga = gemm(g2, transposed(b)).reshape(a.shape());
            if (needB) gb = gemm(transposed(a2), g2);
          } else {
            if (needA) ga = gemm(g, transposed(b));
            if (needB) gb = gemm(transposed(a), g);
          }
          return {ga, gb};
        });
  }
  return out;
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  MANTISSA_CHECK(x.defined() && w.defined(), "linear: undefined input or weight");
  MANTISSA_CHECK(x.dim() >= 1 && w.dim() == 2, "linear: expected x [..., in] and w [out, in], got ",
                 pairText("x", x, "w", w));
  // Leading axes are batch axes: run one [N, in] GEMM and restore them afterwards.
  Shape outShape = x.shape();
  outShape.back() = w.size(0);
  Tensor x2 = x.detach().contiguous().reshape({-1, x.size(-1)});
  Tensor out = linearForward(x2, w, b).reshape(outShape);
  if (autograd::needsGrad({x, w, b})) {
    autograd::record(
        out, "linear", {x, w, b},
        [x2, w = w.detach(), xShape = x.shape(), needX = x.needsGrad(), needW = w.needsGrad(),
         needB = b.defined() && b.needsGrad()](const Tensor& g) -> autograd::GradList {
          Tensor g2 = g.detach().contiguous().reshape({-1, g.size(-1)});
          Tensor gx;
          if (needX) gx = linearBackwardData(g2, w).reshape(xShape);
          WeightGrads gw;
          if (needW) {
            gw = linearBackwardWeights(x2, g2, needB);
          } else if (needB) {
            gw.bias = sum(g2, {0});
          }
          return {gx, gw.weight, gw.bias};
        });
  }
  return out;
}

}  // namespace mantissa
