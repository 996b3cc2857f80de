#include "core/ops/reference/Conv.h"

#include <functional>

namespace mantissa::reference {

namespace {

/// Index arithmetic of one convolution, in the *forward conv2d* sense: `in` is the tensor the
/// kernel slides over, `out` the tensor with one element per window. For convTranspose2d the
/// roles swap: its output is the `in` side and its input the `out` side.
struct Taps {
  int64_t n, inC, inH, inW, outC, outH, outW, kh, kw, groups;
  Size2d stride, padding, dilation;
};

/// Calls fn(inIndex, outIndex, tapIndex) for every pair (window, tap) that lands inside `in`,
/// where tapIndex enumerates (outChannel, inChannelInGroup, kh, kw) in OIHW order.
void forEachTap(const Taps& t, const std::function<void(int64_t, int64_t, int64_t)>& fn) {
  const int64_t inPerG = t.inC / t.groups, outPerG = t.outC / t.groups;
  for (int64_t n = 0; n < t.n; ++n)
    for (int64_t o = 0; o < t.outC; ++o)
      for (int64_t oh = 0; oh < t.outH; ++oh)
        for (int64_t ow = 0; ow < t.outW; ++ow)
          for (int64_t c = 0; c < inPerG; ++c)
            for (int64_t i = 0; i < t.kh; ++i)
              for (int64_t j = 0; j < t.kw; ++j) {
                int64_t ih = oh * t.stride.h - t.padding.h + i * t.dilation.h;
                int64_t iw = ow * t.stride.w - t.padding.w + j * t.dilation.w;
                if (ih < 0 || ih >= t.inH || iw < 0 || iw >= t.inW) continue;
                int64_t ic = (o / outPerG) * inPerG + c;
                fn(((n * t.inC + ic) * t.inH + ih) * t.inW + iw,
                   ((n * t.outC + o) * t.outH + oh) * t.outW + ow,
                   ((o * inPerG + c) * t.kh + i) * t.kw + j);
              }
}

Taps convTaps(const Shape& x, const Shape& w, const Conv2dOptions& o) {
  int64_t oh = (x[2] + 2 * o.padding.h - o.dilation.h * (w[2] - 1) - 1) / o.stride.h + 1;
  int64_t ow = (x[3] + 2 * o.padding.w - o.dilation.w * (w[3] - 1) - 1) / o.stride.w + 1;
  return {x[0], x[1], x[2], x[3], w[0], oh, ow, w[2], w[3], o.groups, o.stride, o.padding,
          o.dilation};
}

/// The conv2d that convTranspose2d is the adjoint of: its "in" side is the transposed conv's
/// output [N, Cout, OH, OW], its "out" side the transposed conv's input. PyTorch's
/// ConvTranspose2d weight [Cin, Cout/G, kH, kW] is already that conv's OIHW weight.
Taps deconvTaps(const Shape& x, const Shape& w, const ConvTranspose2dOptions& o) {
  int64_t oh = (x[2] - 1) * o.stride.h - 2 * o.padding.h + o.dilation.h * (w[2] - 1) +
               o.outputPadding.h + 1;
  int64_t ow = (x[3] - 1) * o.stride.w - 2 * o.padding.w + o.dilation.w * (w[3] - 1) +
               o.outputPadding.w + 1;
  return {x[0], w[1] * o.groups, oh, ow, x[1], x[2], x[3], w[2], w[3], o.groups, o.stride,
          o.padding, o.dilation};
}

Tensor finish(const std::vector<double>& acc, const Shape& shape) {
  std::vector<float> v(acc.begin(), acc.end());
  return Tensor::fromVector(v, shape);
}

/// Adds bias[c] to every element of channel c of an [N, C, H, W] accumulator.
void addBias(std::vector<double>& acc, const Tensor& b, const Shape& shape) {
  if (!b.defined()) return;
  std::vector<float> vb = b.toVector();
  const int64_t plane = shape[2] * shape[3];
  for (size_t i = 0; i < acc.size(); ++i) acc[i] += vb[(i / plane) % shape[1]];
}

Tensor biasGrad(const std::vector<float>& g, const Shape& shape) {
  std::vector<double> acc(shape[1], 0.0);
  const int64_t plane = shape[2] * shape[3];
  for (size_t i = 0; i < g.size(); ++i) acc[(i / plane) % shape[1]] += g[i];
  return finish(acc, {shape[1]});
}

}  // namespace

Tensor conv2dForward(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dOptions& opts) {
  Taps t = convTaps(x.shape(), w.shape(), opts);
  Shape outShape{t.n, t.outC, t.outH, t.outW};
  std::vector<float> vx = x.toVector(), vw = w.toVector();
  std::vector<double> acc(numelOf(outShape), 0.0);
  forEachTap(t, [&](int64_t in, int64_t out, int64_t tap) { acc[out] += double(vx[in]) * vw[tap]; });
  addBias(acc, b, outShape);
  return finish(acc, outShape);
}

Tensor conv2dBackwardData(const Tensor& gradOut, const Tensor& w, const Shape& inputShape,
                          const Conv2dOptions& opts) {
  Taps t = convTaps(inputShape, w.shape(), opts);
  std::vector<float> vg = gradOut.toVector(), vw = w.toVector();
  std::vector<double> acc(numelOf(inputShape), 0.0);
  forEachTap(t, [&](int64_t in, int64_t out, int64_t tap) { acc[in] += double(vg[out]) * vw[tap]; });
  return finish(acc, inputShape);
}

WeightGrads conv2dBackwardWeights(const Tensor& x, const Tensor& gradOut, const Shape& weightShape,
                                  const Conv2dOptions& opts, bool withBias) {
  Taps t = convTaps(x.shape(), weightShape, opts);
  std::vector<float> vx = x.toVector(), vg = gradOut.toVector();
  std::vector<double> acc(numelOf(weightShape), 0.0);
  forEachTap(t, [&](int64_t in, int64_t out, int64_t tap) { acc[tap] += double(vg[out]) * vx[in]; });
  WeightGrads g;
  g.weight = finish(acc, weightShape);
  if (withBias) g.bias = biasGrad(vg, gradOut.shape());
  return g;
}

Tensor convTranspose2dForward(const Tensor& x, const Tensor& w, const Tensor& b,
                              const ConvTranspose2dOptions& opts) {
  Taps t = deconvTaps(x.shape(), w.shape(), opts);
  Shape outShape{t.n, t.inC, t.inH, t.inW};
  std::vector<float> vx = x.toVector(), vw = w.toVector();
  std::vector<double> acc(numelOf(outShape), 0.0);
  // Scatter: each input element (the adjoint conv's "out" side) spreads over its window.
  forEachTap(t, [&](int64_t in, int64_t out, int64_t tap) { acc[in] += double(vx[out]) * vw[tap]; });
  addBias(acc, b, outShape);
  return finish(acc, outShape);
}

Tensor convTranspose2dBackwardData(const Tensor& gradOut, const Tensor& w, const Shape& inputShape,
                                   const ConvTranspose2dOptions& opts) {
  Taps t = deconvTaps(inputShape, w.shape(), opts);
  std::vector<float> vg = gradOut.toVector(), vw = w.toVector();
  std::vector<double> acc(numelOf(inputShape), 0.0);
  forEachTap(t, [&](int64_t in, int64_t out, int64_t tap) { acc[out] += double(vg[in]) * vw[tap]; });
  return finish(acc, inputShape);
}

WeightGrads convTranspose2dBackwardWeights(const Tensor& x, const Tensor& gradOut,
                                           const Shape& weightShape,
                                           const ConvTranspose2dOptions& opts, bool withBias) {
  Taps t = deconvTaps(x.shape(), weightShape, opts);
  std::vector<float> vx = x.toVector(), vg = gradOut.toVector();
  std::vector<double> acc(numelOf(weightShape), 0.0);
  forEachTap(t, [&](int64_t in, int64_t out, int64_t tap) { acc[tap] += double(vx[out]) * vg[in]; });
  WeightGrads g;
  g.weight = finish(acc, weightShape);
  if (withBias) g.bias = biasGrad(vg, gradOut.shape());
  return g;
}

}  // namespace mantissa::reference
