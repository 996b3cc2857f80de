#include "core/ops/reference/Pool.h"

#include <limits>

namespace mantissa::reference {

namespace {

struct Window {
  int64_t oh, ow;             // output size
  Size2d k, s, p, d;
};

/// PyTorch's pooling_output_shape: floor or ceil of the window count, and with ceil mode the
/// last window must start inside the input or the left padding.
int64_t outSize(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil) {
  int64_t span = in + 2 * p - d * (k - 1) - 1;
  int64_t out = (ceil ? (span + s - 1) / s : span / s) + 1;
  if (ceil && (out - 1) * s >= in + p) --out;
  return out;
}

Window window(const Shape& x, const Pool2dOptions& o) {
  Size2d s{o.stride.h == 0 ? o.kernel.h : o.stride.h, o.stride.w == 0 ? o.kernel.w : o.stride.w};
  return {outSize(x[2], o.kernel.h, s.h, o.padding.h, o.dilation.h, o.ceilMode),
          outSize(x[3], o.kernel.w, s.w, o.padding.w, o.dilation.w, o.ceilMode), o.kernel, s,
          o.padding, o.dilation};
}

/// Index of the first maximum of each window (-1 never happens: windows hold a real element).
std::vector<int64_t> argmaxes(const std::vector<float>& vx, const Shape& x, const Window& w) {
  std::vector<int64_t> idx;
  for (int64_t nc = 0; nc < x[0] * x[1]; ++nc)
    for (int64_t i = 0; i < w.oh; ++i)
      for (int64_t j = 0; j < w.ow; ++j) {
        int64_t best = -1;
        float bestV = -std::numeric_limits<float>::infinity();
        for (int64_t a = 0; a < w.k.h; ++a)
          for (int64_t b = 0; b < w.k.w; ++b) {
            int64_t h = i * w.s.h - w.p.h + a * w.d.h, c = j * w.s.w - w.p.w + b * w.d.w;
            if (h < 0 || h >= x[2] || c < 0 || c >= x[3]) continue;
            int64_t at = (nc * x[2] + h) * x[3] + c;
            if (best < 0 || vx[at] > bestV) {
              best = at;
              bestV = vx[at];
            }
          }
        idx.push_back(best);
      }
  return idx;
}

/// PyTorch's avg_pool2d divisor and the clipped window of output (i, j).
struct AvgCell {
  int64_t h0, h1, w0, w1, divisor;
};
AvgCell avgCell(const Shape& x, const Window& w, int64_t i, int64_t j, bool includePad) {
  int64_t h0 = i * w.s.h - w.p.h, w0 = j * w.s.w - w.p.w;
  int64_t h1 = std::min(h0 + w.k.h, x[2] + w.p.h), w1 = std::min(w0 + w.k.w, x[3] + w.p.w);
  int64_t poolSize = (h1 - h0) * (w1 - w0);
  h0 = std::max<int64_t>(h0, 0);
  w0 = std::max<int64_t>(w0, 0);
  h1 = std::min(h1, x[2]);
  w1 = std::min(w1, x[3]);
  return {h0, h1, w0, w1, includePad ? poolSize : (h1 - h0) * (w1 - w0)};
}

}  // namespace

Tensor maxPool2d(const Tensor& x, const Pool2dOptions& opts) {
  Window w = window(x.shape(), opts);
  std::vector<float> vx = x.toVector(), out;
  for (int64_t at : argmaxes(vx, x.shape(), w)) out.push_back(vx[at]);
  return Tensor::fromVector(out, {x.size(0), x.size(1), w.oh, w.ow});
}

Tensor maxPool2dBackward(const Tensor& x, const Tensor& gradOut, const Pool2dOptions& opts) {
  Window w = window(x.shape(), opts);
  std::vector<float> vx = x.toVector(), vg = gradOut.toVector();
  std::vector<double> acc(vx.size(), 0.0);
  std::vector<int64_t> idx = argmaxes(vx, x.shape(), w);
  for (size_t o = 0; o < idx.size(); ++o) acc[idx[o]] += vg[o];
  return Tensor::fromVector(std::vector<float>(acc.begin(), acc.end()), x.shape());
}

Tensor avgPool2d(const Tensor& x, const Pool2dOptions& opts) {
  const Shape& s = x.shape();
  Window w = window(s, opts);
  std::vector<float> vx = x.toVector(), out;
  for (int64_t nc = 0; nc < s[0] * s[1]; ++nc)
    for (int64_t i = 0; i < w.oh; ++i)
      for (int64_t j = 0; j < w.ow; ++j) {
        AvgCell c = avgCell(s, w, i, j, opts.countIncludePad);
        double acc = 0;
        for (int64_t h = c.h0; h < c.h1; ++h)
          for (int64_t v = c.w0; v < c.w1; ++v) acc += vx[(nc * s[2] + h) * s[3] + v];
        out.push_back(static_cast<float>(acc / c.divisor));
      }
  return Tensor::fromVector(out, {s[0], s[1], w.oh, w.ow});
}

Tensor avgPool2dBackward(const Shape& s, const Tensor& gradOut, const Pool2dOptions& opts) {
  Window w = window(s, opts);
  std::vector<float> vg = gradOut.toVector();
  std::vector<double> acc(numelOf(s), 0.0);
  int64_t o = 0;
  for (int64_t nc = 0; nc < s[0] * s[1]; ++nc)
    for (int64_t i = 0; i < w.oh; ++i)
      for (int64_t j = 0; j < w.ow; ++j, ++o) {
        AvgCell c = avgCell(s, w, i, j, opts.countIncludePad);
        for (int64_t h = c.h0; h < c.h1; ++h)
          for (int64_t v = c.w0; v < c.w1; ++v) acc[(nc * s[2] + h) * s[3] + v] += double(vg[o]) / c.divisor;
      }
  return Tensor::fromVector(std::vector<float>(acc.begin(), acc.end()), s);
}

}  // namespace mantissa::reference
