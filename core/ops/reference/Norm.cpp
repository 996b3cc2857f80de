#include "core/ops/reference/Norm.h"

#include <cmath>

namespace mantissa::reference {

namespace {

/// [N, C, S] view sizes of an [N, C, ...] tensor (S = product of the trailing sizes).
struct Ncs {
  int64_t n, c, s;
  int64_t at(int64_t i, int64_t ch, int64_t k) const { return (i * c + ch) * s + k; }
};
Ncs ncs(const Shape& x) { return {x[0], x[1], numelOf(Shape(x.begin() + 2, x.end()))}; }

std::vector<float> orFill(const Tensor& t, int64_t n, float v) {
  return t.defined() ? t.toVector() : std::vector<float>(n, v);
}

/// Per-channel mean and biased variance (two passes, double).
void moments(const std::vector<float>& vx, const Ncs& d, std::vector<double>& mean,
             std::vector<double>& var) {
  mean.assign(d.c, 0.0);
  var.assign(d.c, 0.0);
  const double m = double(d.n * d.s);
  for (int64_t c = 0; c < d.c; ++c) {
    for (int64_t i = 0; i < d.n; ++i)
      for (int64_t k = 0; k < d.s; ++k) mean[c] += vx[d.at(i, c, k)];
    mean[c] /= m;
    for (int64_t i = 0; i < d.n; ++i)
      for (int64_t k = 0; k < d.s; ++k) var[c] += std::pow(vx[d.at(i, c, k)] - mean[c], 2);
    var[c] /= m;
  }
}

}  // namespace

Tensor batchNorm(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                 const Tensor& runningMean, const Tensor& runningVar, const BatchNormOptions& opts) {
  Ncs d = ncs(x.shape());
  std::vector<float> vx = x.toVector(), vg = orFill(gamma, d.c, 1.f), vb = orFill(beta, d.c, 0.f);
  std::vector<double> mean, var;
  if (opts.training) {
    moments(vx, d, mean, var);
    if (runningMean.defined()) {
      Tensor rm = runningMean, rv = runningVar;
      const double m = double(d.n * d.s);
      for (int64_t c = 0; c < d.c; ++c) {
        float& pm = rm.data<float>()[c];
        float& pv = rv.data<float>()[c];
        pm = float((1 - opts.momentum) * pm + opts.momentum * mean[c]);
        pv = float((1 - opts.momentum) * pv + opts.momentum * var[c] * m / (m - 1));
      }
    }
  } else {
    std::vector<float> rm = runningMean.toVector(), rv = runningVar.toVector();
    mean.assign(rm.begin(), rm.end());
    var.assign(rv.begin(), rv.end());
  }
  std::vector<float> out(vx.size());
  for (int64_t i = 0; i < d.n; ++i)
    for (int64_t c = 0; c < d.c; ++c)
      for (int64_t k = 0; k < d.s; ++k) {
        int64_t at = d.at(i, c, k);
        out[at] = float((vx[at] - mean[c]) / std::sqrt(var[c] + opts.eps) * vg[c] + vb[c]);
      }
  return Tensor::fromVector(out, x.shape());
}

BatchNormGrads batchNormBackward(const Tensor& x, const Tensor& gamma, const Tensor& runningMean,
                                 const Tensor& runningVar, const Tensor& gradOut,
                                 const BatchNormOptions& opts) {
  Ncs d = ncs(x.shape());
  std::vector<float> vx = x.toVector(), vgo = gradOut.toVector(), vgam = orFill(gamma, d.c, 1.f);
  std::vector<double> mean, var;
  if (opts.training) {
    moments(vx, d, mean, var);
  } else {
    std::vector<float> rm = runningMean.toVector(), rv = runningVar.toVector();
    mean.assign(rm.begin(), rm.end());
    var.assign(rv.begin(), rv.end());
  }
  const double m = double(d.n * d.s);
  std::vector<float> gx(vx.size()), ggamma(d.c), gbeta(d.c);
  for (int64_t c = 0; c < d.c; ++c) {
    const double inv = 1.0 / std::sqrt(var[c] + opts.eps);
    double sumG = 0, sumGxhat = 0;
    for (int64_t i = 0; i < d.n; ++i)
      for (int64_t k = 0; k < d.s; ++k) {
        int64_t at = d.at(i, c, k);
        sumG += vgo[at];
        sumGxhat += vgo[at] * (vx[at] - mean[c]) * inv;
      }
    ggamma[c] = float(sumGxhat);
    gbeta[c] = float(sumG);
    for (int64_t i = 0; i < d.n; ++i)
      for (int64_t k = 0; k < d.s; ++k) {
        int64_t at = d.at(i, c, k);
        double xhat = (vx[at] - mean[c]) * inv;
        // Training: the batch statistics depend on x (Ioffe & Szegedy 2015, §3).
        gx[at] = opts.training ? float(vgam[c] * inv / m * (m * vgo[at] - sumG - xhat * sumGxhat))
                               : float(vgam[c] * inv * vgo[at]);
      }
  }
  return {Tensor::fromVector(gx, x.shape()), Tensor::fromVector(ggamma, {d.c}),
          Tensor::fromVector(gbeta, {d.c})};
}

namespace {
/// k + alpha/size * Σ x² over the channel window of (i, c, k); PyTorch's window for odd size.
double lrnScale(const std::vector<float>& vx, const Ncs& d, int64_t i, int64_t c, int64_t k,
                const LrnOptions& o) {
  double acc = 0;
  for (int64_t cc = c - o.size / 2; cc <= c + (o.size - 1) / 2; ++cc) {
    if (cc < 0 || cc >= d.c) continue;
    double v = vx[d.at(i, cc, k)];
    acc += v * v;
  }
  return o.k + o.alpha / double(o.size) * acc;
}
}  // namespace

Tensor lrn(const Tensor& x, const LrnOptions& opts) {
  Ncs d = ncs(x.shape());
  std::vector<float> vx = x.toVector(), out(vx.size());
  for (int64_t i = 0; i < d.n; ++i)
    for (int64_t c = 0; c < d.c; ++c)
      for (int64_t k = 0; k < d.s; ++k)
        out[d.at(i, c, k)] = float(vx[d.at(i, c, k)] * std::pow(lrnScale(vx, d, i, c, k, opts), -opts.beta));
  return Tensor::fromVector(out, x.shape());
}

Tensor lrnBackward(const Tensor& x, const Tensor& gradOut, const LrnOptions& opts) {
  // y_c = x_c D_c^-β  =>  dL/dx_j = g_j D_j^-β - 2β(α/n) x_j Σ_{c: j in window(c)} g_c x_c D_c^(-β-1)
  Ncs d = ncs(x.shape());
  std::vector<float> vx = x.toVector(), vg = gradOut.toVector(), gx(vx.size());
  std::vector<double> scale(vx.size());
  for (int64_t i = 0; i < d.n; ++i)
    for (int64_t c = 0; c < d.c; ++c)
      for (int64_t k = 0; k < d.s; ++k) scale[d.at(i, c, k)] = lrnScale(vx, d, i, c, k, opts);
  for (int64_t i = 0; i < d.n; ++i)
    for (int64_t j = 0; j < d.c; ++j)
      for (int64_t k = 0; k < d.s; ++k) {
        int64_t at = d.at(i, j, k);
        double acc = 0;
        // Channel c's window [c - size/2, c + (size-1)/2] contains j iff c is in [j - (size-1)/2, j + size/2].
        for (int64_t c = j - (opts.size - 1) / 2; c <= j + opts.size / 2; ++c) {
          if (c < 0 || c >= d.c) continue;
          int64_t ac = d.at(i, c, k);
          acc += double(vg[ac]) * vx[ac] * std::pow(scale[ac], -opts.beta - 1);
        }
        gx[at] = float(vg[at] * std::pow(scale[at], -opts.beta) -
                       2 * opts.beta * opts.alpha / double(opts.size) * vx[at] * acc);
      }
  return Tensor::fromVector(gx, x.shape());
}

}  // namespace mantissa::reference
