#include "core/ops/Pool.h"

#include "core/autograd/Autograd.h"
#include "core/parallel/ParallelFor.h"
#include "core/parallel/detail/Dnnl.h"

namespace mantissa {

namespace {

using dnnl::memory;
namespace dd = mantissa::detail;

struct PoolGeometry {
  Shape input, output;
  Size2d kernel, stride, padding, dilation;
  memory::dims kDims, sDims, dDims, padL, padR;
  std::string text;
};

/// PyTorch's pooling_output_shape: floor (or ceil) of the window count; in ceil mode a last
/// window that would start in the right padding is dropped.
int64_t outSize(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil) {
  const int64_t span = in + 2 * p - d * (k - 1) - 1;
  int64_t out = (ceil ? (span + s - 1) / s : span / s) + 1;
  if (ceil && (out - 1) * s >= in + p) --out;
  return out;
}

PoolGeometry poolGeometry(const char* op, const Shape& in, const Pool2dOptions& o) {
  PoolGeometry g;
  g.kernel = o.kernel;
  g.stride = {o.stride.h == 0 ? o.kernel.h : o.stride.h, o.stride.w == 0 ? o.kernel.w : o.stride.w};
  g.padding = o.padding;
  g.dilation = o.dilation;
  g.text = dd::concat("input ", toString(in), ", kernel ", o.kernel.toString(), ", stride ",
                      g.stride.toString(), ", padding ", o.padding.toString(), ", dilation ",
                      o.dilation.toString(), o.ceilMode ? ", ceil mode" : "");
  MANTISSA_CHECK(in.size() == 4, op, ": input must be 4-D [N, C, H, W] (", g.text, ")");
  MANTISSA_CHECK(o.kernel.h >= 1 && o.kernel.w >= 1, op, ": kernel must be positive (", g.text, ")");
  MANTISSA_CHECK(g.stride.h >= 1 && g.stride.w >= 1, op, ": stride must be positive (", g.text, ")");
  MANTISSA_CHECK(o.dilation.h >= 1 && o.dilation.w >= 1, op, ": dilation must be positive (",
                 g.text, ")");
  MANTISSA_CHECK(o.padding.h >= 0 && o.padding.w >= 0 && o.padding.h <= o.kernel.h / 2 &&
                     o.padding.w <= o.kernel.w / 2,
                 op, ": padding must be between 0 and half the kernel (", g.text, ")");
  MANTISSA_CHECK(in[0] >= 1 && in[1] >= 1, op, ": empty input (", g.text, ")");
  const int64_t effH = (o.kernel.h - 1) * o.dilation.h + 1, effW = (o.kernel.w - 1) * o.dilation.w + 1;
  MANTISSA_CHECK(in[2] + 2 * o.padding.h >= effH && in[3] + 2 * o.padding.w >= effW, op,
                 ": the window is larger than the padded input (", g.text, ")");
  const int64_t oh = outSize(in[2], o.kernel.h, g.stride.h, o.padding.h, o.dilation.h, o.ceilMode);
  const int64_t ow = outSize(in[3], o.kernel.w, g.stride.w, o.padding.w, o.dilation.w, o.ceilMode);
  g.input = in;
  g.output = {in[0], in[1], oh, ow};
  g.kDims = {o.kernel.h, o.kernel.w};
  g.sDims = {g.stride.h, g.stride.w};
  g.dDims = {o.dilation.h - 1, o.dilation.w - 1};
  g.padL = {o.padding.h, o.padding.w};
  // Ceil mode shows up as extra right padding; it may also be below the left padding when the
  // stride skips trailing rows.
  g.padR = {(oh - 1) * g.stride.h + effH - in[2] - o.padding.h,
            (ow - 1) * g.stride.w + effW - in[3] - o.padding.w};
  return g;
}

dnnl::pooling_v2_forward::primitive_desc forwardPd(
    const PoolGeometry& g, dnnl::algorithm alg,
    dnnl::prop_kind prop = dnnl::prop_kind::forward_training) {
  return dnnl::pooling_v2_forward::primitive_desc(
      dnnl::pooling_v2_forward::desc(prop, alg,
                                     dd::plainDesc(g.input), dd::plainDesc(g.output), g.sDims,
                                     g.kDims, g.dDims, g.padL, g.padR),
      dd::dnnlAttr(), dd::dnnlEngine());
}

/// Backward pass of the pooling `alg` (pooling layouts stay plain NCHW: pooling is memory-bound
/// and a reorder would cost as much as the op).
Tensor backwardKernel(const char* op, const PoolGeometry& g, dnnl::algorithm alg,
                      const Tensor& gradOut, const Tensor& workspace) {
  Tensor gc = dd::kernelInput(gradOut, op, "gradOut");
  Tensor gx = Tensor::uninitialized(g.input);
  dd::dnnlCall(op, g.text, [&] {
    auto fwd = forwardPd(g, alg);
    dnnl::pooling_v2_backward::primitive_desc pd(
        dnnl::pooling_v2_backward::desc(alg, dd::plainDesc(g.input), dd::plainDesc(g.output),
                                        g.sDims, g.kDims, g.dDims, g.padL, g.padR),
        dd::dnnlAttr(), dd::dnnlEngine(), fwd);
    std::unordered_map<int, memory> args{{DNNL_ARG_DIFF_DST, dd::wrap(gc)},
                                         {DNNL_ARG_DIFF_SRC, dd::wrap(gx)}};
    if (workspace.defined()) args[DNNL_ARG_WORKSPACE] = dd::wrap(workspace, pd.workspace_desc());
    dd::execute(dnnl::pooling_v2_backward(pd), args);
  });
  return gx;
}

/// Per-output-position factor turning oneDNN's exclude-padding average into PyTorch's
/// count_include_pad average: (#real elements) / (PyTorch divisor). PyTorch's divisor counts the
/// padding but not the extra right margin of ceil mode; oneDNN's include-padding mode would count
/// that margin too, so ceil-mode windows that reach it are computed this way instead.
std::vector<float> includePadFactors(const PoolGeometry& g) {
  auto axis = [](int64_t out, int64_t in, int64_t k, int64_t s, int64_t p) {
    std::vector<std::pair<int64_t, int64_t>> v;  // (real count, PyTorch count)
    for (int64_t i = 0; i < out; ++i) {
      int64_t a = i * s - p, b = std::min(a + k, in + p);
      v.push_back({std::min(b, in) - std::max<int64_t>(a, 0), b - a});
    }
    return v;
  };
  auto hs = axis(g.output[2], g.input[2], g.kernel.h, g.stride.h, g.padding.h);
  auto ws = axis(g.output[3], g.input[3], g.kernel.w, g.stride.w, g.padding.w);
  std::vector<float> f;
  for (auto [hr, hp] : hs)
    for (auto [wr, wp] : ws) f.push_back(float(double(hr * wr) / double(hp * wp)));
  return f;
}

/// t[n, c, i, j] *= f[i, j] in place (t is a fresh contiguous result).
void scalePlanes(Tensor& t, const std::vector<float>& f) {
  float* p = t.data<float>();
  const int64_t plane = static_cast<int64_t>(f.size());
  parallelFor(0, t.numel() / plane, 16, [&](int64_t b, int64_t e) {
    for (int64_t q = b; q < e; ++q)
      for (int64_t i = 0; i < plane; ++i) p[q * plane + i] *= f[i];
  });
}

}  // namespace

Shape pool2dOutputShape(const Shape& input, const Pool2dOptions& opts) {
  return poolGeometry("pool2d", input, opts).output;
}

Tensor maxPool2d(const Tensor& x, const Pool2dOptions& opts) {
  const char* op = "maxPool2d";
  MANTISSA_CHECK(x.defined(), op, ": undefined input");
  PoolGeometry g = poolGeometry(op, x.shape(), opts);
  const auto alg = dnnl::algorithm::pooling_max;
  Tensor xc = dd::kernelInput(x, op, "input");
  Tensor out = Tensor::uninitialized(g.output), workspace;
  const bool grad = autograd::needsGrad({x});
  dd::dnnlCall(op, g.text, [&] {
    auto pd = forwardPd(g, alg, grad ? dnnl::prop_kind::forward_training
                                     : dnnl::prop_kind::forward_inference);
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, dd::wrap(xc)}, {DNNL_ARG_DST, dd::wrap(out)}};
    // The workspace records which element won each window; backward reuses it instead of
    // searching the input again (and so needs neither x nor y).
    if (grad) args[DNNL_ARG_WORKSPACE] = dd::tensorMemory(pd.workspace_desc(), workspace);
    dd::execute(dnnl::pooling_v2_forward(pd), args);
  });
  if (grad) {
    autograd::record(out, op, {x}, [g, workspace](const Tensor& go) -> autograd::GradList {
      return {backwardKernel("maxPool2d backward", g, dnnl::algorithm::pooling_max, go, workspace)};
    });
  }
  return out;
}

Tensor maxPool2d(const Tensor& x, Size2d kernel) {
  return maxPool2d(x, Pool2dOptions{.kernel = kernel});
}

Tensor avgPool2d(const Tensor& x, const Pool2dOptions& opts) {
  const char* op = "avgPool2d";
  MANTISSA_CHECK(x.defined(), op, ": undefined input");
  MANTISSA_CHECK(opts.dilation == Size2d(1), op, ": dilation is not supported by average pooling");
  PoolGeometry g = poolGeometry(op, x.shape(), opts);
  // PyTorch's count_include_pad divisor equals oneDNN's include-padding one (kH*kW) unless a
  // ceil-mode window reaches past the padded input; then rescale the exclude-padding average.
  const bool pastPadding = g.padR[0] > g.padL[0] || g.padR[1] > g.padL[1];
  const bool rescale = opts.countIncludePad && pastPadding;
  const auto alg = opts.countIncludePad && !rescale ? dnnl::algorithm::pooling_avg_include_padding
                                                    : dnnl::algorithm::pooling_avg_exclude_padding;
  std::vector<float> factors = rescale ? includePadFactors(g) : std::vector<float>();
  Tensor xc = dd::kernelInput(x, op, "input");
  Tensor out = Tensor::uninitialized(g.output);
  dd::dnnlCall(op, g.text, [&] {
    auto pd = forwardPd(g, alg, dnnl::prop_kind::forward_inference);
    dd::execute(dnnl::pooling_v2_forward(pd), {{DNNL_ARG_SRC, dd::wrap(xc)}, {DNNL_ARG_DST, dd::wrap(out)}});
  });
  if (rescale) scalePlanes(out, factors);
  if (autograd::needsGrad({x})) {
    autograd::record(out, op, {x}, [g, alg, factors](const Tensor& go) -> autograd::GradList {
      Tensor scaled = go;
      if (!factors.empty()) {
        scaled = go.detach().clone();
        scalePlanes(scaled, factors);
      }
      return {backwardKernel("avgPool2d backward", g, alg, scaled, Tensor())};
    });
  }
  return out;
}

Tensor avgPool2d(const Tensor& x, Size2d kernel) {
  return avgPool2d(x, Pool2dOptions{.kernel = kernel});
}

Tensor globalAvgPool2d(const Tensor& x) {
  MANTISSA_CHECK(x.defined() && x.dim() == 4, "globalAvgPool2d: input must be 4-D [N, C, H, W], got ",
                 x.defined() ? toString(x.shape()) : std::string("(undefined)"));
  return avgPool2d(x, Pool2dOptions{.kernel = {x.size(2), x.size(3)}});
}

}  // namespace mantissa
