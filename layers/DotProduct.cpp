#include "layers/DotProduct.h"

#include <numeric>

#include "core/autograd/Autograd.h"

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
  if (axes.size() == 1) return q(t, axes[0]);
  // Several reduction axes (e.g. N, H, W of the weight-gradient GEMM): move them last, flatten
  // them into one, block along it, and restore the layout.
  std::vector<int64_t> perm, inverse(t.dim());
  std::vector<bool> reduced(t.dim(), false);
  for (int64_t a : axes) reduced[normalizeAxis(a, t.dim(), "quantizeAlong: axis")] = true;
  Shape kept;
  for (int64_t i = 0; i < t.dim(); ++i) {
    if (!reduced[i]) {
      perm.push_back(i);
      kept.push_back(t.shape()[i]);
    }
  }
  for (int64_t a : axes) perm.push_back(normalizeAxis(a, t.dim()));
  for (size_t i = 0; i < perm.size(); ++i) inverse[perm[i]] = static_cast<int64_t>(i);
  Tensor moved = t.permute(perm).contiguous();
  Shape movedShape = moved.shape();
  kept.push_back(-1);
  Tensor blocked = q(moved.reshape(kept), -1);
  return blocked.reshape(movedShape).permute(inverse).contiguous();
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

Tensor DotProductLayer::run(const Tensor& x, const Tensor& w, const Tensor& bias, const Gemms& g,
                            const std::function<Tensor(const Tensor& y, const Tensor& b)>& addBias,
                            const std::function<Tensor(const Tensor& gy)>& biasGrad) {
  Tensor xd = x.detach(), wd = w.detach();
  Tensor xq = quantizeAlong(*activation_, false, xd, g.xForward);
  Tensor wq = quantizeAlong(*weightPoint_, false, wd, g.wForward);
  Tensor y = g.forward(xq, wq);
  if (bias.defined()) y = addBias(y, bias.detach());
  if (!autograd::needsGrad({x, w, bias})) return y;

  // Keep the FP32 operands only when a blocked format must re-block them for backward.
  bool reblockX = activation_->forwardFormat()->isBlocked();
  bool reblockW = weightPoint_->forwardFormat()->isBlocked();
  autograd::record(
      y, g.opName, {x, w, bias},
      [act = activation_, wp = weightPoint_, err = error_, g, xq, wq, xs = reblockX ? xd : Tensor(), ws = reblockW ? wd : Tensor(),
       needX = x.needsGrad(), needW = w.needsGrad(), hasBias = bias.defined(), biasGrad](
          const Tensor& gy) -> autograd::GradList {
        autograd::GradList grads(3);
        const bool blockedErr = err->backwardFormat()->isBlocked();
        Tensor eData = quantizeAlong(*err, true, gy, g.gyDataGrad);
        Tensor eWeight = blockedErr ? quantizeAlong(*err, true, gy, g.gyWeightGrad) : eData;
        if (needX) {
          Tensor wData = ws.defined() ? quantizeAlong(*wp, false, ws, g.wDataGrad) : wq;
          grads[0] = quantizeAlong(*act, true, g.backwardData(eData, wData), g.xForward);
        }
        if (needW) {
          Tensor xWeight = xs.defined() ? quantizeAlong(*act, false, xs, g.xWeightGrad) : xq;
          grads[1] = quantizeAlong(*wp, true, g.backwardWeights(xWeight, eWeight),
                                   g.wForward);
        }
        if (hasBias) grads[2] = biasGrad(gy);  // bias arithmetic stays FP32 (A.2)
        return grads;
      });
  return y;
}

}  // namespace mantissa::nn
