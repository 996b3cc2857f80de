#include "layers/DotProduct.h"

#include <numeric>
#include <optional>
#include <span>

#include "core/autograd/Autograd.h"
#include "core/ops/Linalg.h"
#include "core/ops/detail/Bf16.h"
#include "core/ops/detail/BfpGemm.h"
#include "formats/Hbfp.h"

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

formats::Bf16Quantized quantizeAlongBf16(formats::QuantPoint& point, bool backward, const Tensor& t,
                                         const std::vector<int64_t>& axes) {
  const formats::FormatPtr& f = backward ? point.backwardFormat() : point.forwardFormat();
  // The axes quantizeAlong would use: none for unblocked formats (blockAxis -1).
  std::span<const int64_t> along;
  if (f->isBlocked()) {
    MANTISSA_CHECK(!axes.empty(), "quantizeAlong: no reduction axes for '", point.name(), "'");
    along = axes;
  }
  return backward ? point.quantizeBackwardBf16(t, along) : point.quantizeForwardBf16(t, along);
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

/// The operand `point` quantizes along `axes` (quantizeAlong); when `convert`, in the same pass
/// as its bf16 patterns (quantizeAlongBf16: the values and verdict of makeOperand(q, true)).
Operand quantizedOperand(formats::QuantPoint& point, bool backward, const Tensor& t,
                         const std::vector<int64_t>& axes, bool convert) {
  if (!convert) return makeOperand(quantizeAlong(point, backward, t, axes), false);
  formats::Bf16Quantized q = quantizeAlongBf16(point, backward, t, axes);
  Operand o;
  o.tried = true;
  o.f32 = std::move(q.values);
  o.bf16.bits = std::move(q.bits);
  o.bf16.minExponent = q.minExponent;
  return o;
}

/// What a backward closure keeps: only the bf16 copy when it is exact (half the bytes of FP32,
/// the packed activation of issue 8 point 4), else the FP32 values.
Operand packed(Operand o) {
  if (o.bf16.exact()) o.f32 = Tensor();
  return o;
}

Tensor f32Of(const Operand& o) { return o.f32.defined() ? o.f32 : od::widenBf16(o.bf16.bits); }

// ---- packed saved operands (docs/performance.md "Packed saved activations") -----------------
// A forward operand that backward reuses (x for backward-weights, w for backward-data) is
// produced by encoding when its format packs it below FP32: the forward GEMM multiplies with the
// values, backward keeps only the codes (1 or 2 bytes a value) and decodes them when it runs.
// decode(encode(x)) == quantize(x) bit for bit, so the results do not change.

/// Whether the forward operand of `f` is encoded for backward: not FP32 (nothing to pack, the
/// operand is the input itself), not blocked (HBFP re-blocks the FP32 input per GEMM), and not
/// when the bf16 GEMM path takes it (`bf16Path`) and its codes are 16 bits or more (bf16): the
/// exact bf16 bits are as small and need no decoding.
bool packable(const formats::FormatPtr& f, bool bf16Path) {
  if (!formats::packedSavesEnabled() || f->isIdentity() || f->isBlocked()) return false;
  // Per-tensor scalars and exponents amortised over a large tensor: the width of one code.
  return !(bf16Path && f->bitsPerValue({int64_t{1} << 30}) >= 16.0);
}

/// The forward operand of `point` for x (converted when `convert`): quantized, or when `pack`
/// encoded (codes in `codes`; same state, statistics and stochastic-rounding step either way).
Operand forwardOperand(formats::QuantPoint& point, const Tensor& x,
                       const std::vector<int64_t>& axes, bool pack, bool convert,
                       formats::Encoded& codes) {
  if (!pack) return quantizedOperand(point, false, x, axes, convert);
  Tensor values;
  codes = point.encodeForward(x, values);
  return makeOperand(std::move(values), convert);
}

/// What a backward closure keeps of a forward operand: its codes when they are smaller than
/// the operand's own form (FP32, or bf16 bits on the bf16 GEMM path), else the operand.
struct Saved {
  Operand op;
  formats::Encoded codes;
  formats::FormatPtr format;  // decodes `codes`
  bool convert = false;       // the forward operand went to the bf16 path: the decoded one does
  // The forward conversion's verdict on these values (convert only): exact, smallest exponent.
  bool bf16Exact = false;
  uint32_t bf16MinExponent = od::kNoNonZero;
};

Saved keep(Operand o, formats::Encoded codes, const formats::FormatPtr& format) {
  Saved s;
  s.convert = o.tried;
  s.bf16Exact = o.bf16.exact();
  s.bf16MinExponent = o.bf16.minExponent;
  if (codes.codes.defined()) {
    const size_t codeBytes = elementSize(codes.codes.dtype());
    const size_t opBytes = o.bf16.exact() ? 2 : 4;
    if (codeBytes < opBytes) {
      s.codes = std::move(codes);
      s.format = format;
      return s;
    }
  }
  s.op = packed(std::move(o));
  return s;
}

/// The operand backward multiplies with: the kept one, or the decoded codes. When the forward
/// operand went to bf16 exactly, the codes decode straight to bf16 patterns (Format::decodeBf16,
/// the same bits toBf16Exact gives the values) with the forward's smallest exponent; otherwise
/// they decode to FP32, converted again when the forward operand was (the same verdict).
Operand restore(const Saved& s) {
  if (!s.codes.codes.defined()) return s.op;
  if (s.convert && s.bf16Exact) {
    Tensor bits = s.format->decodeBf16(s.codes);
    if (bits.defined()) {
      Operand o;
      o.tried = true;
      o.bf16.bits = std::move(bits);
      o.bf16.minExponent = s.bf16MinExponent;
      return o;
    }
  }
  return makeOperand(s.format->decode(s.codes), s.convert);
}

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

// ---- int8 block-FP path (docs/performance.md "int8 block-floating-point path") ---------------

/// The int8 kernel's view of a GEMM's two formats: both HBFP with N <= 8 and the same block
/// (at most 1024 values, so block sums stay exact in float); else nothing.
std::optional<Int8Operands> int8Pair(const formats::FormatPtr& a, const formats::FormatPtr& b) {
  const auto* ha = dynamic_cast<const formats::Hbfp*>(a.get());
  const auto* hb = dynamic_cast<const formats::Hbfp*>(b.get());
  if (!ha || !hb) return {};
  const formats::HbfpOptions &oa = ha->options(), &ob = hb->options();
  if (oa.bits > 8 || ob.bits > 8 || oa.block != ob.block || oa.block > 1024) return {};
  return Int8Operands{oa.block, oa.bits, ob.bits};
}

/// The operand `point` gives an int8 kernel of forward or backward-data: its codes when the
/// blocks run along one axis, else its quantized values (quantizeAlong). The point advances the
/// same either way.
Int8Operand int8Operand(formats::QuantPoint& point, bool backward, const Tensor& t,
                        const std::vector<int64_t>& axes) {
  Int8Operand o;
  if (axes.size() == 1) {
    o.codes = backward ? point.encodeBackward(t, axes[0]) : point.encodeForward(t, axes[0]);
    o.format = backward ? point.backwardFormat() : point.forwardFormat();
  } else {
    o.f32 = quantizeAlong(point, backward, t, axes);
  }
  return o;
}

/// The operand `point` gives the int8 kernel of backward-weights: its codes blocked along the
/// flattened `axes` when there are several (a convolution's N, H, W: encodeForwardAlong /
/// encodeBackwardAlong), else its quantized values (Linear's kernel reads values). The point
/// advances as quantizeAlong would either way.
Int8Operand int8WeightGradOperand(formats::QuantPoint& point, bool backward, const Tensor& t,
                                  const std::vector<int64_t>& axes) {
  Int8Operand o;
  if (axes.size() > 1) {
    o.codes = backward ? point.encodeBackwardAlong(t, axes) : point.encodeForwardAlong(t, axes);
    o.format = backward ? point.backwardFormat() : point.forwardFormat();
  } else {
    o.f32 = quantizeAlong(point, backward, t, axes);
  }
  return o;
}

/// fn8(a, b, int8) when the kernel accepts the operands, otherwise fn on their FP32 values (the
/// int8 operands are never converted to bf16).
template <class F>
Tensor callInt8(const Int8Gemm& fn8, const Int8Operands& int8, const F& fn, const Int8Operand& a,
                const Int8Operand& b) {
  Tensor out = fn8(a, b, int8);
  if (out.defined()) {
    od::countInt8BfpGemm();
    return out;
  }
  od::countInt8BfpInexact();
  return fn(a.values(), b.values());
}

/// callInt8 on operands held as FP32 (or bf16) values when `int8` holds the operands'
/// description, otherwise callGemm(fn, a, b) (FP32, or bf16 when converted).
template <class F>
Tensor callGemm(const Int8Gemm& fn8, const std::optional<Int8Operands>& int8,
                const F& fn, const Operand& a, const Operand& b) {
  if (int8)
    return callInt8(fn8, *int8, fn, Int8Operand{.f32 = f32Of(a)}, Int8Operand{.f32 = f32Of(b)});
  return callGemm(fn, a, b);
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
  // Which GEMMs run on the int8 block-FP kernels instead (then they convert nothing to bf16).
  using Int8 = std::optional<Int8Operands>;
  const bool needX = x.needsGrad(), needW = w.needsGrad();
  const bool i8 = int8BfpEnabled();
  const Int8 i8Fwd = i8 && g.int8Forward
                         ? int8Pair(activation_->forwardFormat(), weightPoint_->forwardFormat())
                         : Int8();
  const Int8 i8Data = i8 && g.int8BackwardData && needX
                          ? int8Pair(error_->backwardFormat(), weightPoint_->forwardFormat())
                          : Int8();
  const Int8 i8Wgt = i8 && g.int8BackwardWeights && needW
                         ? int8Pair(activation_->forwardFormat(), error_->backwardFormat())
                         : Int8();
  // Encode x (w) when backward reuses it and its format packs it (packable).
  const bool packX = needW && !reblockX && packable(activation_->forwardFormat(), fx);
  const bool packW = needX && !reblockW && packable(weightPoint_->forwardFormat(), fw);
  formats::Encoded xCodes, wCodes;
  // Convert x (w) when a GEMM uses it: the forward one, or a backward one that reuses the
  // forward operand (unblocked formats only).
  // The int8 path's operands are HBFP, so re-blocked for backward (neither kept nor packed).
  Operand xo, wo;
  Tensor y;
  if (i8Fwd) {
    const Int8Operand x8 = int8Operand(*activation_, false, xd, g.xForward);
    const Int8Operand w8 = int8Operand(*weightPoint_, false, wd, g.wForward);
    y = callInt8(g.int8Forward, *i8Fwd, g.forward, x8, w8);
  } else {
    xo = forwardOperand(*activation_, xd, g.xForward, packX,
                        fx && (fw || (fe && !reblockX && needW)), xCodes);
    wo = forwardOperand(*weightPoint_, wd, g.wForward, packW,
                        fw && (fx || (fe && !reblockW && needX)), wCodes);
    y = callGemm(g.forward, xo, wo);
  }
  if (bias.defined()) y = addBias(y, bias.detach());
  if (!needBackward) return y;

  // Saved for backward: the raw FP32 operand when it must be re-blocked, else the quantized one
  // as its codes, or as bf16 bits / FP32 values when those are not larger (keep). Nothing that
  // backward does not read.
  Saved xSaved = !reblockX && needW
                     ? keep(std::move(xo), std::move(xCodes), activation_->forwardFormat())
                     : Saved();
  Saved wSaved = !reblockW && needX
                     ? keep(std::move(wo), std::move(wCodes), weightPoint_->forwardFormat())
                     : Saved();
  autograd::record(
      y, g.opName, {x, w, bias},
      [act = activation_, wp = weightPoint_, err = error_, g, xSaved, wSaved,
       xs = reblockX && needW ? xd : Tensor(), ws = reblockW && needX ? wd : Tensor(), needX,
       needW, fx, fw, fe, i8Data, i8Wgt, hasBias = bias.defined(), biasGrad](
          const Tensor& gy) -> autograd::GradList {
        autograd::GradList grads(3);
        const bool blockedErr = err->backwardFormat()->isBlocked();
        // On the int8 path both operands are HBFP (re-blocked: eData is not reused below).
        Operand eData;
        if (i8Data) {
          const Int8Operand e8 = int8Operand(*err, true, gy, g.gyDataGrad);
          const Int8Operand w8 = int8Operand(*wp, false, ws, g.wDataGrad);
          grads[0] = quantizeAlong(*act, true,
                                   callInt8(g.int8BackwardData, *i8Data, g.backwardData, e8, w8),
                                   g.xForward);
        } else {
          eData = quantizedOperand(*err, true, gy, g.gyDataGrad,
                                   fe && ((needX && fw) || (needW && fx && !blockedErr)));
        }
        if (needX && !i8Data) {
          Operand wData = ws.defined() ? quantizedOperand(*wp, false, ws, g.wDataGrad, fe && fw)
                                       : restore(wSaved);
          grads[0] = quantizeAlong(*act, true, callGemm(g.backwardData, eData, wData), g.xForward);
        }
        if (needW && i8Wgt) {
          // Both operands HBFP (re-blocked along N, H, W for a convolution), error point first.
          const Int8Operand e8 = int8WeightGradOperand(*err, true, gy, g.gyWeightGrad);
          const Int8Operand x8 = int8WeightGradOperand(*act, false, xs, g.xWeightGrad);
          grads[1] = quantizeAlong(
              *wp, true, callInt8(g.int8BackwardWeights, *i8Wgt, g.backwardWeights, x8, e8),
              g.wForward);
        } else if (needW) {
          Operand eWeight =
              blockedErr ? quantizedOperand(*err, true, gy, g.gyWeightGrad, fe && fx && !i8Wgt)
                         : eData;
          Operand xWeight =
              xs.defined() ? quantizedOperand(*act, false, xs, g.xWeightGrad, fx && fe && !i8Wgt)
                           : restore(xSaved);
          grads[1] = quantizeAlong(
              *wp, true,
              callGemm(g.int8BackwardWeights, i8Wgt, g.backwardWeights, xWeight, eWeight),
              g.wForward);
        }
        if (hasBias) grads[2] = biasGrad(gy);  // bias arithmetic stays FP32 (A.2)
        return grads;
      });
  return y;
}

}  // namespace mantissa::nn
