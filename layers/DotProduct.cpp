#include "layers/DotProduct.h"

#include <numeric>

#include "core/autograd/Autograd.h"
#include "core/ops/Linalg.h"
#include "core/ops/detail/Bf16.h"

namespace mantissa::nn {

using formats::Role;

Tensor quantizeAlong(formats::QuantPoint& point, bool backward, const Tensor& t,
                     const std::vector<int64_t>& axes) {
  const formats::FormatPtr& f = backward ? point.backwardFormat() : point.forwardFormat();
  if (f->isIdentity()) return t;
  auto q = [&](const Tensor& v, int64_t axis) {
    return backward ? point.quantizeBackward(v, axis) : point.quantizeForward(v, axis);
  };
  if (!f->isBlocked()) return q(t, -1);
  MANTISSA_CHECK(!axes.empty(), "quantizeAlong: no reduction axes for '", point.name(), "'");
  if (axes.size() == 1) return q(t, axes[0]);
  // Several reduction axes (e.g. N, H, W of the weight-gradient GEMM): the format blocks along
  // them flattened, in place (QuantizeArgs::blockAxes), without moving them last and back.
  return backward ? point.quantizeBackwardAlong(t, axes) : point.quantizeForwardAlong(t, axes);
}

DotProductLayer::DotProductLayer(std::string typeName) : Module(std::move(typeName)) {
  activation_ = registerQuantPoint("activation", Role::Activation, Role::Error);
  weightPoint_ = registerQuantPoint("weight", Role::Weight, Role::WeightGrad);
  error_ = registerQuantPoint("error", Role::Activation, Role::Error);
  policy_ = FormatPolicy::fp32();
}

void DotProductLayer::applyPolicy(const FormatPolicy& policy) {
  policy_ = policy;
  activation_->setFormats(policy.activation, nullptr);
  weightPoint_->setFormats(policy.weight, policy.weightGrad);
  error_->setFormats(nullptr, policy.error);
}

Named<MasterFormat> DotProductLayer::ownMasterFormats() const {
  if (!policy_.master || policy_.master->isIdentity()) return {};
  return {{"weight", MasterFormat{policy_.master, weightBlockAxis_}}};
}

namespace {

namespace od = ops::detail;

// ---- bf16 GEMM path (docs/ops.md "bf16 GEMM path") -----------------------------------------
// Every value of a format with at most 8 significant bits is a bf16 value (within bf16's
// exponent range) and a bf16 x bf16 product is exact in FP32, so a GEMM whose two operands come
// from such formats gives the FP32 emulation's result up to summation order on oneDNN's bf16
// primitives. Exactness is checked per call, never assumed (od::toBf16Exact,
// od::bf16ProductsNormal); a GEMM that fails the check runs in FP32.

/// Whether the values of `f` may go to the bf16 kernels.
bool bf16Format(const formats::FormatPtr& f) {
  return f && !f->isIdentity() && f->significandBits() <= 8;
}

/// One GEMM operand: its FP32 values, their bf16 bit patterns when the conversion was tried and
/// exact, or both.
struct Operand {
  Tensor f32;
  od::Bf16Operand bf16;
  bool tried = false;  // the format qualified and the path was on: a conversion was attempted
};

Operand makeOperand(Tensor q, bool convert) {
  Operand o;
  o.f32 = std::move(q);
  if (convert) {
    o.tried = true;
    o.bf16 = od::toBf16Exact(o.f32);
  }
  return o;
}

/// What a backward closure keeps: only the bf16 copy when it is exact (half the bytes of FP32,
/// the packed activation of issue 8 point 4), else the FP32 values.
Operand packed(Operand o) {
  if (o.bf16.exact()) o.f32 = Tensor();
  return o;
}

Tensor f32Of(const Operand& o) { return o.f32.defined() ? o.f32 : od::widenBf16(o.bf16.bits); }

/// fn(a, b) on bf16 operands when both conversions were tried and are exact and no product can
/// be an FP32 denormal; otherwise on FP32 operands.
template <class F>
Tensor callGemm(const F& fn, const Operand& a, const Operand& b) {
  if (a.tried && b.tried) {
    if (a.bf16.exact() && b.bf16.exact() && od::bf16ProductsNormal(a.bf16, b.bf16)) {
      od::countBf16Gemm();
      return fn(a.bf16.bits, b.bf16.bits);
    }
    od::countBf16Inexact();
  }
  return fn(f32Of(a), f32Of(b));
}

}  // namespace

Tensor DotProductLayer::run(const Tensor& x, const Tensor& w, const Tensor& bias, const Gemms& g,
                            const std::function<Tensor(const Tensor& y, const Tensor& b)>& addBias,
                            const std::function<Tensor(const Tensor& gy)>& biasGrad) {
  Tensor xd = x.detach(), wd = w.detach();
  const bool needBackward = autograd::needsGrad({x, w, bias});
  // Blocked formats (HBFP) re-block the FP32 operands for each backward GEMM; the others reuse
  // the forward operand.
  const bool reblockX = activation_->forwardFormat()->isBlocked();
  const bool reblockW = weightPoint_->forwardFormat()->isBlocked();
  // Which GEMMs may run on bf16 (A.2 roles: x and w in forward, error and w in backward-data,
  // x and error in backward-weights), decided once per call so forward and backward agree.
  const bool on = bf16GemmEnabled();
  const bool fx = on && bf16Format(activation_->forwardFormat());
  const bool fw = on && bf16Format(weightPoint_->forwardFormat());
  const bool fe = on && needBackward && bf16Format(error_->backwardFormat());
  // Convert x (w) when a GEMM uses it: the forward one, or a backward one that reuses the
  // forward operand (unblocked formats only).
  Operand xo = makeOperand(quantizeAlong(*activation_, false, xd, g.xForward),
                           fx && (fw || (fe && !reblockX && w.needsGrad())));
  Operand wo = makeOperand(quantizeAlong(*weightPoint_, false, wd, g.wForward),
                           fw && (fx || (fe && !reblockW && x.needsGrad())));
  Tensor y = callGemm(g.forward, xo, wo);
  if (bias.defined()) y = addBias(y, bias.detach());
  if (!needBackward) return y;

  // Saved for backward: the raw FP32 operand when it must be re-blocked, else the quantized one
  // (as bf16 bits when exact). Nothing that backward does not read.
  const bool needX = x.needsGrad(), needW = w.needsGrad();
  Operand xSaved = !reblockX && needW ? packed(std::move(xo)) : Operand();
  Operand wSaved = !reblockW && needX ? packed(std::move(wo)) : Operand();
  autograd::record(
      y, g.opName, {x, w, bias},
      [act = activation_, wp = weightPoint_, err = error_, g, xSaved, wSaved,
       xs = reblockX && needW ? xd : Tensor(), ws = reblockW && needX ? wd : Tensor(), needX,
       needW, fx, fw, fe, hasBias = bias.defined(), biasGrad](
          const Tensor& gy) -> autograd::GradList {
        autograd::GradList grads(3);
        const bool blockedErr = err->backwardFormat()->isBlocked();
        Operand eData = makeOperand(quantizeAlong(*err, true, gy, g.gyDataGrad),
                                    fe && ((needX && fw) || (needW && fx && !blockedErr)));
        if (needX) {
          Operand wData = ws.defined()
                              ? makeOperand(quantizeAlong(*wp, false, ws, g.wDataGrad), fe && fw)
                              : wSaved;
          grads[0] = quantizeAlong(*act, true, callGemm(g.backwardData, eData, wData),
                                   g.xForward);
        }
        if (needW) {
          Operand eWeight =
              blockedErr ? makeOperand(quantizeAlong(*err, true, gy, g.gyWeightGrad), fe && fx)
                         : eData;
          Operand xWeight = xs.defined()
                                ? makeOperand(quantizeAlong(*act, false, xs, g.xWeightGrad), fx && fe)
                                : xSaved;
          grads[1] = quantizeAlong(*wp, true, callGemm(g.backwardWeights, xWeight, eWeight),
                                   g.wForward);
        }
        if (hasBias) grads[2] = biasGrad(gy);  // bias arithmetic stays FP32 (A.2)
        return grads;
      });
  return y;
}

}  // namespace mantissa::nn
