#include "core/ops/Conv.h"

#include <map>
#include <mutex>

#include "core/autograd/Autograd.h"
#include "core/ops/Reduce.h"
#include "core/ops/detail/DnnlBf16.h"
#include "core/parallel/ParallelFor.h"

namespace mantissa {

namespace {

using dnnl::memory;
namespace dd = mantissa::detail;
namespace od = mantissa::ops::detail;
using DataType = memory::data_type;

/// Everything oneDNN needs to know about one convolution or deconvolution, derived once from
/// the Mantissa shapes and options (and validated there, so every kernel reports the same error).
struct Geometry {
  Shape input, weight, output;
  memory::dims strides, dilates, padL, padR;
  memory::dims weightDims;         // oneDNN logical weight dims ([G, ...] when grouped)
  memory::format_tag weightTag;    // where PyTorch's weight layout puts each of those dims
  std::string text;                // shapes and options, for error messages
};

std::string describe(const Shape& in, const Shape& w, Size2d stride, Size2d pad, Size2d dil,
                     int64_t groups) {
  return dd::concat("input ", toString(in), ", weight ", toString(w), ", stride ",
                    stride.toString(), ", padding ", pad.toString(), ", dilation ",
                    dil.toString(), ", groups ", groups);
}

Geometry geometry(const char* op, const Shape& in, const Shape& w, Size2d stride, Size2d pad,
                  Size2d dil, int64_t groups, Size2d outPad, bool transposed) {
  Geometry g;
  g.text = describe(in, w, stride, pad, dil, groups);
  MANTISSA_CHECK(in.size() == 4, op, ": input must be 4-D [N, C, H, W] (", g.text, ")");
  MANTISSA_CHECK(w.size() == 4, op, ": weight must be 4-D (", g.text, ")");
  MANTISSA_CHECK(stride.h >= 1 && stride.w >= 1, op, ": stride must be positive (", g.text, ")");
  MANTISSA_CHECK(dil.h >= 1 && dil.w >= 1, op, ": dilation must be positive (", g.text, ")");
  MANTISSA_CHECK(pad.h >= 0 && pad.w >= 0, op, ": padding must be non-negative (", g.text, ")");
  MANTISSA_CHECK(groups >= 1, op, ": groups must be positive (", g.text, ")");
  MANTISSA_CHECK(w[2] >= 1 && w[3] >= 1, op, ": empty kernel (", g.text, ")");
  const int64_t kh = w[2], kw = w[3];
  const int64_t effH = (kh - 1) * dil.h + 1, effW = (kw - 1) * dil.w + 1;
  int64_t inC = in[1], outC, oh, ow;
  if (!transposed) {
    MANTISSA_CHECK(inC % groups == 0, op, ": groups ", groups, " do not divide the ", inC,
                   " input channels (", g.text, ")");
    MANTISSA_CHECK(w[0] % groups == 0, op, ": groups ", groups, " do not divide the ", w[0],
                   " output channels (", g.text, ")");
    MANTISSA_CHECK(w[1] * groups == inC, op, ": weight expects ", w[1] * groups,
                   " input channels but the input has ", inC, " (", g.text, ")");
    outC = w[0];
    MANTISSA_CHECK(in[2] + 2 * pad.h >= effH && in[3] + 2 * pad.w >= effW, op,
                   ": the (dilated) kernel is larger than the padded input (", g.text, ")");
    oh = (in[2] + 2 * pad.h - effH) / stride.h + 1;
    ow = (in[3] + 2 * pad.w - effW) / stride.w + 1;
    // The right padding that makes the last window end where it does (may be below the left
    // padding, or negative, when the stride skips trailing input rows).
    g.padR = {(oh - 1) * stride.h + effH - in[2] - pad.h, (ow - 1) * stride.w + effW - in[3] - pad.w};
    if (groups == 1) {
      g.weightDims = {outC, inC, kh, kw};
      g.weightTag = memory::format_tag::oihw;
    } else {
      g.weightDims = {groups, outC / groups, inC / groups, kh, kw};
      g.weightTag = memory::format_tag::goihw;
    }
  } else {
    MANTISSA_CHECK(w[0] == inC, op, ": weight [Cin, Cout/groups, kH, kW] expects ", w[0],
                   " input channels but the input has ", inC, " (", g.text, ")");
    MANTISSA_CHECK(inC % groups == 0, op, ": groups ", groups, " do not divide the ", inC,
                   " input channels (", g.text, ")");
    MANTISSA_CHECK(outPad.h >= 0 && outPad.w >= 0 && outPad.h < std::max(stride.h, dil.h) &&
                       outPad.w < std::max(stride.w, dil.w),
                   op, ": outputPadding ", outPad.toString(),
                   " must be non-negative and smaller than stride or dilation (", g.text, ")");
    outC = w[1] * groups;
    oh = (in[2] - 1) * stride.h - 2 * pad.h + effH + outPad.h;
    ow = (in[3] - 1) * stride.w - 2 * pad.w + effW + outPad.w;
    MANTISSA_CHECK(oh >= 1 && ow >= 1, op, ": padding leaves an empty output (", g.text, ")");
    // oneDNN deconvolution crops padL and padR; the output padding is a negative right crop.
    g.padR = {pad.h - outPad.h, pad.w - outPad.w};
    if (groups == 1) {
      g.weightDims = {outC, inC, kh, kw};
      g.weightTag = memory::format_tag::iohw;
    } else {
      g.weightDims = {groups, outC / groups, inC / groups, kh, kw};
      g.weightTag = memory::format_tag::giohw;
    }
  }
  MANTISSA_CHECK(in[0] >= 1 && inC >= 1 && outC >= 1 && in[2] >= 1 && in[3] >= 1, op,
                 ": empty input or weight (", g.text, ")");
  g.input = in;
  g.weight = w;
  g.output = {in[0], outC, oh, ow};
  g.strides = {stride.h, stride.w};
  g.dilates = {dil.h - 1, dil.w - 1};  // oneDNN counts the gaps, PyTorch the spacing
  g.padL = {pad.h, pad.w};
  return g;
}

Geometry convGeometry(const char* op, const Shape& in, const Shape& w, const Conv2dOptions& o) {
  return geometry(op, in, w, o.stride, o.padding, o.dilation, o.groups, 0, false);
}

Geometry deconvGeometry(const char* op, const Shape& in, const Shape& w,
                        const ConvTranspose2dOptions& o) {
  return geometry(op, in, w, o.stride, o.padding, o.dilation, o.groups, o.outputPadding, true);
}

struct ConvKind {
  using Fwd = dnnl::convolution_forward;
  using BwdData = dnnl::convolution_backward_data;
  using BwdWeights = dnnl::convolution_backward_weights;
  static constexpr dnnl::algorithm kAlg = dnnl::algorithm::convolution_direct;
  static constexpr bool kTransposed = false;
};

struct DeconvKind {
  using Fwd = dnnl::deconvolution_forward;
  using BwdData = dnnl::deconvolution_backward_data;
  using BwdWeights = dnnl::deconvolution_backward_weights;
  static constexpr dnnl::algorithm kAlg = dnnl::algorithm::deconvolution_direct;
  static constexpr bool kTransposed = true;
};

// Layout choice: the primitives are created with format_tag::any and Mantissa's NCHW/OIHW
// tensors are reordered to the layouts oneDNN picks (blocked nChw16c on AVX-512). Measured on
// the 128x64x32x32 3x3 benchmark (docs/ops.md): the blocked JIT kernels plus reorders run
// forward+backward about 3x faster than the plain-layout GEMM kernels, and deconvolution has
// no plain-layout JIT kernel at all.
// bf16 operands (od::isBf16Bits) get bf16 src / weights / diff_dst descriptors; results (dst,
// diff_src, diff_weights) and the bias stay F32, so the primitives accumulate in FP32.
memory::desc anyWeights(const Geometry& g, DataType dt = DataType::f32) {
  return memory::desc(g.weightDims, dt, memory::format_tag::any);
}
memory::desc plainWeights(const Geometry& g, DataType dt = DataType::f32) {
  return memory::desc(g.weightDims, dt, g.weightTag);
}
memory::desc anyOperand(const Shape& s, DataType dt) { return od::retyped(dd::anyDesc(s), dt); }
memory::desc plainOperand(const Shape& s, DataType dt) { return od::retyped(dd::plainDesc(s), dt); }
memory::desc biasDesc(const Geometry& g) { return dd::plainDesc({g.output[1]}); }

template <class K>
typename K::Fwd::primitive_desc forwardPd(const Geometry& g, bool withBias,
                                          DataType dt = DataType::f32) {
  using D = typename K::Fwd::desc;
  const auto prop = dnnl::prop_kind::forward_training;
  D d = withBias ? D(prop, K::kAlg, anyOperand(g.input, dt), anyWeights(g, dt), biasDesc(g),
                     dd::anyDesc(g.output), g.strides, g.dilates, g.padL, g.padR)
                 : D(prop, K::kAlg, anyOperand(g.input, dt), anyWeights(g, dt),
                     dd::anyDesc(g.output), g.strides, g.dilates, g.padL, g.padR);
  return typename K::Fwd::primitive_desc(d, dd::dnnlAttr(), dd::dnnlEngine());
}

// ---- Plans: primitives created once per geometry ---------------------------------------------
// Creating a convolution primitive descriptor (oneDNN walks its implementation list) and one
// reorder descriptor per operand costs tens of microseconds each, single-threaded, on every call;
// a ResNet-20 inference ran 19 convolutions and ~56 reorders per batch. A Plan holds the
// primitive and its reorders for one (direction, kind, data type, bias, geometry); the
// descriptors are built exactly as before, so oneDNN picks the same implementations and the
// results keep their bits.

enum class Direction : int64_t { Forward, BackwardData, BackwardWeights };

/// A primitive with two inputs a, b and one result, and the reorders around it.
struct Plan {
  dnnl::primitive prim;                   // empty when `reference` and the operands are bf16
  bool reference = false;                 // oneDNN offers only its reference kernel
  memory::desc aPlain, bPlain, outPlain;  // Mantissa's (plain) layouts
  memory::desc a, b, out;                 // the primitive's layouts
  dnnl::reorder aIn, bIn, outBack;        // plain -> primitive (and back); empty when equal
};

std::vector<int64_t> planKey(Direction dir, bool transposed, const Geometry& g, DataType dt,
                             bool withBias) {
  // The thread count too: oneDNN sizes a primitive's work split and scratchpad for the threads
  // available when it is created (its own primitive cache keys on it for the same reason), so a
  // plan made for 1 thread must not run after setNumThreads(2).
  std::vector<int64_t> key{static_cast<int64_t>(dir), transposed, static_cast<int64_t>(dt),
                           withBias, numThreads()};
  for (const std::vector<int64_t>* v :
       {&g.input, &g.weight, &g.strides, &g.dilates, &g.padL, &g.padR, &g.weightDims}) {
    key.push_back(static_cast<int64_t>(v->size()));
    key.insert(key.end(), v->begin(), v->end());
  }
  return key;
}

/// The plan for `key`, made by `make` on first use. Bounded: a process that cycles through many
/// shapes (the tests) starts over after kMaxPlans; plans in use stay alive through their
/// shared_ptr.
template <class Make>
std::shared_ptr<const Plan> cachedPlan(std::vector<int64_t> key, const Make& make) {
  constexpr size_t kMaxPlans = 512;
  static std::mutex mutex;
  // Intentionally leaked: primitives must not be destroyed after oneDNN's own statics at exit.
  static auto* plans = new std::map<std::vector<int64_t>, std::shared_ptr<const Plan>>();
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = plans->find(key);
    if (it != plans->end()) return it->second;
  }
  auto plan = std::make_shared<const Plan>(make());  // outside the lock: may take milliseconds
  std::lock_guard<std::mutex> lock(mutex);
  if (plans->size() >= kMaxPlans) plans->clear();
  plans->emplace(std::move(key), plan);
  return plan;
}

/// Fills the layouts and reorders of a plan from the primitive descriptor's choices.
template <class Pd, class Prim>
Plan makePlan(const Pd& pd, DataType dt, memory::desc aPlain, memory::desc bPlain,
              memory::desc outPlain, memory::desc a, memory::desc b, memory::desc out) {
  Plan p;
  p.reference = od::isReference(pd);
  if (!(dt == DataType::bf16 && p.reference)) p.prim = Prim(pd);
  p.aPlain = aPlain;
  p.bPlain = bPlain;
  p.outPlain = outPlain;
  p.a = a;
  p.b = b;
  p.out = out;
  p.aIn = dd::reorderPrimitive(aPlain, a);
  p.bIn = dd::reorderPrimitive(bPlain, b);
  p.outBack = dd::reorderPrimitive(out, outPlain);
  return p;
}

/// Runs a plan: reorders the plain operands a and b (memory over Mantissa tensors) to the
/// primitive's layouts, executes it with `args` plus a, b and the result, and leaves the result
/// in `result` (a contiguous F32 tensor of outPlain's shape) in plain layout.
void runPlan(const Plan& p, int argA, const memory& a, int argB, const memory& b, int argOut,
             const Tensor& result, std::unordered_map<int, memory> args) {
  dd::ScratchOwner s1, s2, s3;
  args[argA] = dd::toLayout(p.aIn, a, p.a, s1);
  args[argB] = dd::toLayout(p.bIn, b, p.b, s2);
  memory plainOut = dd::wrap(result, p.outPlain);
  memory out = p.outBack ? dd::scratchMemory(p.out, s3) : plainOut;
  args[argOut] = out;
  dd::execute(p.prim, args);
  if (p.outBack) dd::reorderInto(p.outBack, out, plainOut);
}

void checkGradOut(const char* op, const Tensor& gradOut, const Geometry& g) {
  MANTISSA_CHECK(gradOut.defined() && gradOut.shape() == g.output, op, ": gradOut has shape ",
                 gradOut.defined() ? toString(gradOut.shape()) : std::string("(undefined)"),
                 ", expected ", toString(g.output), " (", g.text, ")");
}

/// Contiguous detached operand (F32 or bf16 bit patterns); errors name `op` and `what`.
Tensor operandInput(const Tensor& t, const char* op, const char* what) {
  MANTISSA_CHECK(t.defined(), op, ": undefined ", what);
  return od::isBf16Bits(t) ? t.detach().contiguous() : dd::kernelInput(t, op, what);
}

template <class K>
Tensor forwardKernel(const char* op, const Geometry& g, const Tensor& x, const Tensor& w,
                     const Tensor& b) {
  const DataType dt = od::pairType(op, x, w);
  Tensor xc = operandInput(x, op, "input"), wc = operandInput(w, op, "weight"), bc;
  if (b.defined()) {
    bc = dd::kernelInput(b, op, "bias");
    MANTISSA_CHECK(bc.shape() == Shape{g.output[1]}, op, ": bias has shape ",
                   toString(bc.shape()), ", expected [", g.output[1], "] (", g.text, ")");
  }
  Tensor out = Tensor::uninitialized(g.output);
  const bool done = dd::dnnlCall(op, g.text, [&] {
    auto plan = cachedPlan(planKey(Direction::Forward, K::kTransposed, g, dt, b.defined()), [&] {
      auto pd = forwardPd<K>(g, b.defined(), dt);
      return makePlan<decltype(pd), typename K::Fwd>(
          pd, dt, plainOperand(g.input, dt), plainWeights(g, dt), dd::plainDesc(g.output),
          pd.src_desc(), pd.weights_desc(), pd.dst_desc());
    });
    if (dt == DataType::bf16 && plan->reference) return false;
    std::unordered_map<int, memory> args;
    if (b.defined()) args[DNNL_ARG_BIAS] = dd::wrap(bc);
    runPlan(*plan, DNNL_ARG_SRC, od::wrapOperand(xc, plan->aPlain), DNNL_ARG_WEIGHTS,
            od::wrapOperand(wc, plan->bPlain), DNNL_ARG_DST, out, std::move(args));
    return true;
  });
  if (done) return out;
  // bf16 operands, but oneDNN has only its reference kernel for this geometry: the FP32 JIT
  // kernel on the widened (identical) values is much faster.
  od::countBf16NoKernel();
  return forwardKernel<K>(op, g, od::widenBf16(xc), od::widenBf16(wc), b);
}

template <class K>
Tensor backwardDataKernel(const char* op, const Geometry& g, const Tensor& gradOut,
                          const Tensor& w) {
  checkGradOut(op, gradOut, g);
  const DataType dt = od::pairType(op, gradOut, w);
  Tensor gc = operandInput(gradOut, op, "gradOut"), wc = operandInput(w, op, "weight");
  Tensor gx = Tensor::uninitialized(g.input);
  const bool done = dd::dnnlCall(op, g.text, [&] {
    auto plan = cachedPlan(planKey(Direction::BackwardData, K::kTransposed, g, dt, false), [&] {
      typename K::BwdData::primitive_desc pd(
          typename K::BwdData::desc(K::kAlg, dd::anyDesc(g.input), anyWeights(g, dt),
                                    anyOperand(g.output, dt), g.strides, g.dilates, g.padL, g.padR),
          dd::dnnlAttr(), dd::dnnlEngine(), forwardPd<K>(g, false, dt));
      return makePlan<decltype(pd), typename K::BwdData>(
          pd, dt, plainOperand(g.output, dt), plainWeights(g, dt), dd::plainDesc(g.input),
          pd.diff_dst_desc(), pd.weights_desc(), pd.diff_src_desc());
    });
    if (dt == DataType::bf16 && plan->reference) return false;
    runPlan(*plan, DNNL_ARG_DIFF_DST, od::wrapOperand(gc, plan->aPlain), DNNL_ARG_WEIGHTS,
            od::wrapOperand(wc, plan->bPlain), DNNL_ARG_DIFF_SRC, gx, {});
    return true;
  });
  if (done) return gx;
  od::countBf16NoKernel();
  return backwardDataKernel<K>(op, g, od::widenBf16(gc), od::widenBf16(wc));
}

template <class K>
WeightGrads backwardWeightsKernel(const char* op, const Geometry& g, const Tensor& x,
                                  const Tensor& gradOut, bool withBias) {
  checkGradOut(op, gradOut, g);
  MANTISSA_CHECK(x.defined() && x.shape() == g.input, op, ": input has shape ",
                 x.defined() ? toString(x.shape()) : std::string("(undefined)"), ", expected ",
                 toString(g.input), " (", g.text, ")");
  const DataType dt = od::pairType(op, x, gradOut);
  Tensor xc = operandInput(x, op, "input"), gc = operandInput(gradOut, op, "gradOut");
  if (dt == DataType::bf16 && withBias) {
    // The bias gradient is an FP32 sum of the (exactly widened) output gradient.
    WeightGrads grads = backwardWeightsKernel<K>(op, g, xc, gc, false);
    grads.bias = sum(od::widenBf16(gc), {0, 2, 3});
    return grads;
  }
  WeightGrads grads;
  grads.weight = Tensor::uninitialized(g.weight);
  if (withBias) grads.bias = Tensor::uninitialized({g.output[1]});
  const bool done = dd::dnnlCall(op, g.text, [&] {
    auto plan =
        cachedPlan(planKey(Direction::BackwardWeights, K::kTransposed, g, dt, withBias), [&] {
          using D = typename K::BwdWeights::desc;
          D d = withBias ? D(K::kAlg, dd::anyDesc(g.input), anyWeights(g), biasDesc(g),
                             dd::anyDesc(g.output), g.strides, g.dilates, g.padL, g.padR)
                         : D(K::kAlg, anyOperand(g.input, dt), anyWeights(g),
                             anyOperand(g.output, dt), g.strides, g.dilates, g.padL, g.padR);
          typename K::BwdWeights::primitive_desc pd(d, dd::dnnlAttr(), dd::dnnlEngine(),
                                                    forwardPd<K>(g, withBias, dt));
          return makePlan<decltype(pd), typename K::BwdWeights>(
              pd, dt, plainOperand(g.input, dt), plainOperand(g.output, dt), plainWeights(g),
              pd.src_desc(), pd.diff_dst_desc(), pd.diff_weights_desc());
        });
    if (dt == DataType::bf16 && plan->reference) return false;
    std::unordered_map<int, memory> args;
    if (withBias) args[DNNL_ARG_DIFF_BIAS] = dd::wrap(grads.bias);
    runPlan(*plan, DNNL_ARG_SRC, od::wrapOperand(xc, plan->aPlain), DNNL_ARG_DIFF_DST,
            od::wrapOperand(gc, plan->bPlain), DNNL_ARG_DIFF_WEIGHTS, grads.weight,
            std::move(args));
    return true;
  });
  if (done) return grads;
  od::countBf16NoKernel();
  return backwardWeightsKernel<K>(op, g, od::widenBf16(xc), od::widenBf16(gc), withBias);
}

}  // namespace

Shape conv2dOutputShape(const Shape& input, const Shape& weight, const Conv2dOptions& opts) {
  return convGeometry("conv2d", input, weight, opts).output;
}

Shape convTranspose2dOutputShape(const Shape& input, const Shape& weight,
                                 const ConvTranspose2dOptions& opts) {
  return deconvGeometry("convTranspose2d", input, weight, opts).output;
}

Tensor conv2dForward(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dOptions& opts) {
  MANTISSA_CHECK(x.defined() && w.defined(), "conv2d: undefined input or weight");
  return forwardKernel<ConvKind>("conv2d", convGeometry("conv2d", x.shape(), w.shape(), opts), x,
                                 w, b);
}

Tensor conv2dBackwardData(const Tensor& gradOut, const Tensor& w, const Shape& inputShape,
                          const Conv2dOptions& opts) {
  const char* op = "conv2dBackwardData";
  MANTISSA_CHECK(w.defined(), op, ": undefined weight");
  return backwardDataKernel<ConvKind>(op, convGeometry(op, inputShape, w.shape(), opts), gradOut, w);
}

WeightGrads conv2dBackwardWeights(const Tensor& x, const Tensor& gradOut, const Shape& weightShape,
                                  const Conv2dOptions& opts, bool withBias) {
  const char* op = "conv2dBackwardWeights";
  MANTISSA_CHECK(x.defined(), op, ": undefined input");
  return backwardWeightsKernel<ConvKind>(op, convGeometry(op, x.shape(), weightShape, opts), x,
                                         gradOut, withBias);
}

Tensor convTranspose2dForward(const Tensor& x, const Tensor& w, const Tensor& b,
                              const ConvTranspose2dOptions& opts) {
  const char* op = "convTranspose2d";
  MANTISSA_CHECK(x.defined() && w.defined(), op, ": undefined input or weight");
  return forwardKernel<DeconvKind>(op, deconvGeometry(op, x.shape(), w.shape(), opts), x, w, b);
}

Tensor convTranspose2dBackwardData(const Tensor& gradOut, const Tensor& w, const Shape& inputShape,
                                   const ConvTranspose2dOptions& opts) {
  const char* op = "convTranspose2dBackwardData";
  MANTISSA_CHECK(w.defined(), op, ": undefined weight");
  return backwardDataKernel<DeconvKind>(op, deconvGeometry(op, inputShape, w.shape(), opts),
                                        gradOut, w);
}

WeightGrads convTranspose2dBackwardWeights(const Tensor& x, const Tensor& gradOut,
                                           const Shape& weightShape,
                                           const ConvTranspose2dOptions& opts, bool withBias) {
  const char* op = "convTranspose2dBackwardWeights";
  MANTISSA_CHECK(x.defined(), op, ": undefined input");
  return backwardWeightsKernel<DeconvKind>(op, deconvGeometry(op, x.shape(), weightShape, opts),
                                           x, gradOut, withBias);
}

namespace {

/// Shared autograd wiring of conv2d and convTranspose2d: the closure calls the raw kernels and
/// computes only the gradients that are needed (the bias alone is a plain sum over N, H, W).
template <class Opts, class Fwd, class BwdData, class BwdWeights>
Tensor convOp(const char* name, const Tensor& x, const Tensor& w, const Tensor& b,
              const Opts& opts, Fwd fwd, BwdData bwdData, BwdWeights bwdWeights) {
  MANTISSA_CHECK(x.defined() && w.defined(), name, ": undefined input or weight");
  Tensor xc = x.detach().contiguous();
  Tensor out = fwd(xc, w.detach(), b.defined() ? b.detach() : Tensor(), opts);
  if (autograd::needsGrad({x, w, b})) {
    autograd::record(
        out, name, {x, w, b},
        [xc, w = w.detach(), opts, needX = x.needsGrad(), needW = w.needsGrad(),
         needB = b.defined() && b.needsGrad(), bwdData, bwdWeights](const Tensor& g) -> autograd::GradList {
          Tensor gx;
          if (needX) gx = bwdData(g, w, xc.shape(), opts);
          WeightGrads gw;
          if (needW) {
            gw = bwdWeights(xc, g, w.shape(), opts, needB);
          } else if (needB) {
            gw.bias = sum(g, {0, 2, 3});
          }
          return {gx, gw.weight, gw.bias};
        });
  }
  return out;
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dOptions& opts) {
  return convOp("conv2d", x, w, b, opts, conv2dForward, conv2dBackwardData, conv2dBackwardWeights);
}

Tensor convTranspose2d(const Tensor& x, const Tensor& w, const Tensor& b,
                       const ConvTranspose2dOptions& opts) {
  return convOp("convTranspose2d", x, w, b, opts, convTranspose2dForward,
                convTranspose2dBackwardData, convTranspose2dBackwardWeights);
}

}  // namespace mantissa
