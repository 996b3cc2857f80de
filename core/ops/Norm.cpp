#include "core/ops/Norm.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

#include "core/autograd/Autograd.h"
#include "core/ops/Elementwise.h"
#include "core/parallel/ParallelFor.h"
#include "core/parallel/detail/Dnnl.h"

namespace mantissa {

namespace {

using dnnl::memory;
using dnnl::normalization_flags;
namespace dd = mantissa::detail;

std::string shapeOf(const Tensor& t) {
  return t.defined() ? toString(t.shape()) : std::string("(undefined)");
}

void checkChannelVector(const char* op, const char* what, const Tensor& t, int64_t c,
                        const std::string& text) {
  if (!t.defined()) return;
  MANTISSA_CHECK(t.dtype() == DType::F32 && t.shape() == Shape{c}, op, ": ", what,
                 " must be f32 [", c, "], got ", shapeOf(t), " (", text, ")");
}

/// The batch-norm configuration shared by the forward and backward primitives.
struct BnSetup {
  Shape shape4;  // [N, C, H, W] ([N, C] gets H = W = 1, [N, C, L] gets W = 1)
  normalization_flags flags;
  float eps;
  std::string text;
};

/// oneDNN's inference batch norm (the reference the own kernels are tested against, and the
/// forward hint of its backward); training runs on Mantissa's kernels only.
dnnl::batch_normalization_forward::primitive_desc bnInferencePd(const BnSetup& s) {
  return dnnl::batch_normalization_forward::primitive_desc(
      dnnl::batch_normalization_forward::desc(dnnl::prop_kind::forward_inference,
                                              dd::plainDesc(s.shape4), s.eps, s.flags),
      dd::dnnlAttr(), dd::dnnlEngine());
}

std::atomic<bool> gDnnlInference{false};

/// y = sm * (x - mean) + sv over one [H*W] plane, each operation rounded on its own, then
/// optionally y + res (a residual, as mantissa::add) and relu's max(y, 0) (NaN kept, -0 -> +0,
/// exactly as mantissa::relu). The first part is the arithmetic of oneDNN 2.6's `ncsp_bnorm`
/// inference kernel, the implementation oneDNN picks for plain NCHW F32 (tests/core/NormTest.cpp
/// compares the two bit for bit). fp-contract=off: with -march=x86-64-v3 GCC would otherwise
/// fuse the multiply and the add into one FMA (one rounding instead of two), which changes the
/// last bit of some outputs (the test catches it).
__attribute__((optimize("fp-contract=off"))) void normalizePlane(const float* x, float* y,
                                                                 const float* res, int64_t n,
                                                                 float mean, float sm, float sv,
                                                                 bool relu) {
  if (res) {
    for (int64_t i = 0; i < n; ++i) {
      const float d = x[i] - mean;
      const float t = sm * d;
      const float r = (t + sv) + res[i];
      y[i] = !(r <= 0.f) ? r : 0.f;  // the residual form is always followed by relu
    }
  } else if (relu) {
    for (int64_t i = 0; i < n; ++i) {
      const float d = x[i] - mean;
      const float t = sm * d;
      const float r = t + sv;
      y[i] = !(r <= 0.f) ? r : 0.f;
    }
  } else {
    for (int64_t i = 0; i < n; ++i) {
      const float d = x[i] - mean;
      const float t = sm * d;
      y[i] = t + sv;
    }
  }
}

/// Inference-mode batch norm of a contiguous [N, C, S] F32 tensor with fixed statistics, as one
/// pass (plus the fused residual add and relu): oneDNN's ncsp_bnorm gives the same bits but runs
/// its plain C++ loop about 4x slower than a memory pass (17 ms of a 77 ms ResNet-20 inference on
/// one thread). Per channel: sm = gamma / sqrtf(var + eps) (1 / ... without gamma), sv = beta (0
/// without). `residual`, when defined, is contiguous with xc's shape (then relu must be set).
Tensor inferenceKernel(const Tensor& xc, const Tensor& gamma, const Tensor& beta,
                       const Tensor& mean, const Tensor& var, float eps, bool relu,
                       const Tensor& residual = Tensor()) {
  const Shape& s4 = xc.shape();
  const int64_t n = s4[0], c = s4[1], plane = s4[2] * s4[3];
  std::vector<float> sm(static_cast<size_t>(c)), sv(static_cast<size_t>(c));
  const float* pm = mean.data<float>();
  const float* pv = var.data<float>();
  for (int64_t i = 0; i < c; ++i) {
    const float sqrtVariance = std::sqrt(pv[i] + eps);
    sm[i] = (gamma.defined() ? gamma.data<float>()[i] : 1.0f) / sqrtVariance;
    sv[i] = beta.defined() ? beta.data<float>()[i] : 0.0f;
  }
  Tensor out = Tensor::uninitialized(s4);
  const float* px = xc.data<float>();
  float* py = out.data<float>();
  const float* pr = residual.defined() ? residual.data<float>() : nullptr;
  // Rows of (n, c) planes; ~32 KiB of work per chunk at least.
  const int64_t grain = std::max<int64_t>(1, 8192 / std::max<int64_t>(plane, 1));
  parallelFor(0, n * c, grain, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const int64_t ch = r % c;
      normalizePlane(px + r * plane, py + r * plane, pr ? pr + r * plane : nullptr, plane, pm[ch],
                     sm[ch], sv[ch], relu);
    }
  });
  return out;
}

/// Per-channel state of a training-mode batch norm, kept for backward.
struct BnChannel {
  double mean, invStd;   // batch mean and 1 / sqrt(biased var + eps), in double
  float meanHi, meanLo;  // mean = meanHi + meanLo (meanLo the float rounding of the remainder)
  float scale, shift;    // gamma * invStd (float), beta
};

/// Eight double lanes as two GCC vectors (GCC does not vectorise float -> double accumulation
/// loops on its own): lane j sums the elements i = j mod 8, the lanes are combined in one fixed
/// order, so every sum depends only on the data (never on the thread count).
using F4 = float __attribute__((vector_size(16)));
using D4 = double __attribute__((vector_size(32)));

inline D4 loadD4(const float* p) {
  F4 v;
  std::memcpy(&v, p, sizeof v);
  return __builtin_convertvector(v, D4);
}

inline double combineLanes(D4 a, D4 b) {
  return ((a[0] + a[1]) + (a[2] + a[3])) + ((b[0] + b[1]) + (b[2] + b[3]));
}

/// Σ x in double over n floats.
inline double sumDouble(const float* x, int64_t n) {
  D4 a = {0, 0, 0, 0}, b = {0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    a += loadD4(x + i);
    b += loadD4(x + i + 4);
  }
  for (; i < n; ++i) a[0] += static_cast<double>(x[i]);
  return combineLanes(a, b);
}

/// Σ (x - mean)^2 in double (the second pass of the two-pass variance).
inline double sumSqDevDouble(const float* x, int64_t n, double mean) {
  D4 a = {0, 0, 0, 0}, b = {0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const D4 da = loadD4(x + i) - mean, db = loadD4(x + i + 4) - mean;
    a += da * da;
    b += db * db;
  }
  for (; i < n; ++i) {
    const double d = static_cast<double>(x[i]) - mean;
    a[0] += d * d;
  }
  return combineLanes(a, b);
}

/// c ? a : b as bit operations (mantissa::leakyRelu's select: the loops vectorise).
inline float selectBits(bool c, float a, float b) {
  const uint32_t m = 0u - static_cast<uint32_t>(c);
  return std::bit_cast<float>((std::bit_cast<uint32_t>(a) & m) | (std::bit_cast<uint32_t>(b) & ~m));
}

/// The normalised value before relu: ((x - meanHi) - meanLo) * scale + shift, one FMA. x -
/// meanHi is exact for x within a factor 2 of the mean (Sterbenz), so a large mean costs no
/// accuracy; forward and backward (the relu mask) evaluate exactly this expression.
inline float bnValue(float x, const BnChannel& k) {
  return std::fma((x - k.meanHi) - k.meanLo, k.scale, k.shift);
}

/// One channel of the training forward over n planes of `plane` values `stride` apart: y =
/// bnValue, + res, relu as asked (relu's NaN and -0 rules: !(v <= 0) ? v : 0), or with `leaky`
/// leakyRelu's !(v <= 0) ? v : v * slope instead of relu (no residual then).
__attribute__((optimize("fp-contract=off"))) void bnTrainNormalize(const float* x, float* y,
                                                                   const float* res, int64_t n,
                                                                   int64_t plane, int64_t stride,
                                                                   const BnChannel& k, bool relu,
                                                                   bool leaky, float slope) {
  for (int64_t b = 0; b < n; ++b) {
    const float* xp = x + b * stride;
    float* yp = y + b * stride;
    if (res) {
      const float* rp = res + b * stride;
      for (int64_t i = 0; i < plane; ++i) {
        const float v = bnValue(xp[i], k) + rp[i];
        yp[i] = !(v <= 0.f) ? v : 0.f;
      }
    } else if (relu && leaky) {
      for (int64_t i = 0; i < plane; ++i) {
        const float v = bnValue(xp[i], k);
        yp[i] = selectBits(!(v <= 0.f), v, v * slope);
      }
    } else if (relu) {
      for (int64_t i = 0; i < plane; ++i) {
        const float v = bnValue(xp[i], k);
        yp[i] = !(v <= 0.f) ? v : 0.f;
      }
    } else {
      for (int64_t i = 0; i < plane; ++i) yp[i] = bnValue(xp[i], k);
    }
  }
}

/// Training-mode forward of a contiguous [N, C, S] F32 tensor: per channel (channels in
/// parallel, each channel's sums in one fixed order, so the bits do not depend on the thread
/// count) the batch mean and biased variance by two passes in double (Σx / M, then Σ(x -
/// mean)^2 / M: no cancellation for data with a large mean), then the normalisation with the
/// residual add and relu fused as asked. Returns the output; fills `ch`, `mean`, `var` (float).
__attribute__((optimize("fp-contract=off"))) Tensor trainingKernel(
    const Tensor& xc, const Tensor& gamma, const Tensor& beta, float eps, bool relu, bool leaky,
    float slope, const Tensor& residual, std::vector<BnChannel>& ch, Tensor& mean, Tensor& var) {
  const Shape& s4 = xc.shape();
  const int64_t n = s4[0], c = s4[1], plane = s4[2] * s4[3], stride = c * plane;
  const double count = static_cast<double>(n * plane);
  ch.resize(static_cast<size_t>(c));
  mean = Tensor::uninitialized({c});
  var = Tensor::uninitialized({c});
  Tensor out = Tensor::uninitialized(s4);
  const float* px = xc.data<float>();
  float* py = out.data<float>();
  const float* pr = residual.defined() ? residual.data<float>() : nullptr;
  const float* pg = gamma.defined() ? gamma.data<float>() : nullptr;
  const float* pb = beta.defined() ? beta.data<float>() : nullptr;
  float* pm = mean.data<float>();
  float* pv = var.data<float>();
  parallelFor(0, c, 1, [&](int64_t cb, int64_t ce) {
    for (int64_t j = cb; j < ce; ++j) {
      const float* xj = px + j * plane;
      double s = 0;
      for (int64_t b = 0; b < n; ++b) s += sumDouble(xj + b * stride, plane);
      const double m = s / count;
      double q = 0;
      for (int64_t b = 0; b < n; ++b) q += sumSqDevDouble(xj + b * stride, plane, m);
      const double v = q / count;
      BnChannel& k = ch[size_t(j)];
      k.mean = m;
      k.invStd = 1.0 / std::sqrt(v + static_cast<double>(eps));
      k.meanHi = static_cast<float>(m);
      k.meanLo = static_cast<float>(m - static_cast<double>(k.meanHi));
      k.scale = static_cast<float>((pg ? static_cast<double>(pg[j]) : 1.0) * k.invStd);
      k.shift = pb ? pb[j] : 0.f;
      pm[j] = k.meanHi;
      pv[j] = static_cast<float>(v);
      bnTrainNormalize(xj, py + j * plane, pr ? pr + j * plane : nullptr, n, plane, stride, k, relu,
                       leaky, slope);
    }
  });
  return out;
}

/// Training-mode backward for one channel. g = dy, masked by bnValue(x) (+ res) > 0 when relu
/// was fused (relu's own rule, y > 0); with M values per channel, xhat = (x - mean) * invStd:
///   dbeta = Σ g, dgamma = Σ g * xhat, dx = gamma * invStd * (g - dbeta / M - xhat * dgamma / M)
/// with both sums in double (eight lanes, fixed order). `gm` receives the masked g (the
/// residual's gradient) when relu was fused; gm may be dx itself. With `leaky` the mask is
/// leakyRelu's backward instead: z > 0 ? g : g * slope.
__attribute__((optimize("fp-contract=off"))) void bnTrainBackwardChannel(
    const float* x, const float* dy, const float* res, float* dx, float* gm, int64_t n,
    int64_t plane, int64_t stride, const BnChannel& k, float gamma, bool relu, bool leaky,
    float slope, double* sumG, double* sumGx) {
  double sg = 0, sgx = 0;
  for (int64_t b = 0; b < n; ++b) {
    const float* xp = x + b * stride;
    const float* gp = dy + b * stride;
    D4 g0 = {0, 0, 0, 0}, g1 = {0, 0, 0, 0}, h0 = {0, 0, 0, 0}, h1 = {0, 0, 0, 0};
    if (relu) {
      const float* rp = res ? res + b * stride : nullptr;
      float* mp = gm + b * stride;
      if (leaky) {
        for (int64_t i = 0; i < plane; ++i) {
          const float z = bnValue(xp[i], k);
          mp[i] = selectBits(z > 0.f, gp[i], gp[i] * slope);
        }
      } else {
        for (int64_t i = 0; i < plane; ++i) {
          const float z = rp ? bnValue(xp[i], k) + rp[i] : bnValue(xp[i], k);
          mp[i] = z > 0.f ? gp[i] : 0.f;
        }
      }
      gp = mp;
    }
    int64_t i = 0;
    for (; i + 8 <= plane; i += 8) {
      const D4 ga = loadD4(gp + i), gb = loadD4(gp + i + 4);
      g0 += ga;
      g1 += gb;
      h0 += ga * (loadD4(xp + i) - k.mean);
      h1 += gb * (loadD4(xp + i + 4) - k.mean);
    }
    for (; i < plane; ++i) {
      const double g = static_cast<double>(gp[i]);
      g0[0] += g;
      h0[0] += g * (static_cast<double>(xp[i]) - k.mean);
    }
    sg += combineLanes(g0, g1);
    sgx += combineLanes(h0, h1);
  }
  *sumG = sg;
  *sumGx = sgx;
  const double count = static_cast<double>(n * plane);
  const float f = static_cast<float>(static_cast<double>(gamma) * k.invStd);
  const float c1 = static_cast<float>(sg / count);
  const float c2 = static_cast<float>(k.invStd * k.invStd * sgx / count);
  for (int64_t b = 0; b < n; ++b) {
    const float* xp = x + b * stride;
    const float* gp = (relu ? gm : dy) + b * stride;
    float* dp = dx + b * stride;
    for (int64_t i = 0; i < plane; ++i) {
      const float d = (xp[i] - k.meanHi) - k.meanLo;
      dp[i] = f * ((gp[i] - c1) - d * c2);
    }
  }
}

dnnl::lrn_forward::primitive_desc lrnForwardPd(const Shape& shape, const LrnOptions& o,
                                               dnnl::prop_kind prop) {
  // oneDNN's alpha is also divided by the window size (dst = src * (k + alpha/size * Σ)^-beta),
  // so PyTorch's alpha passes through unchanged; the tests check this against the reference.
  return dnnl::lrn_forward::primitive_desc(
      dnnl::lrn_forward::desc(prop, dnnl::algorithm::lrn_across_channels, dd::plainDesc(shape),
                              o.size, float(o.alpha), float(o.beta), float(o.k)),
      dd::dnnlAttr(), dd::dnnlEngine());
}

std::atomic<bool> gDnnlLrnBackward{false};

/// oneDNN 2.6's `fast_negative_powf` of its reference LRN: omega^-beta.
__attribute__((optimize("fp-contract=off"))) inline float negativePow(float omega, float beta) {
  if (beta == 0.75f) return std::sqrt(1.0f / (std::sqrt(omega) * omega));
  return 1.0f / std::pow(omega, beta);
}

/// LRN (across channels) backward of one image [C, S], with exactly the operations, order and
/// roundings of oneDNN 2.6's reference kernel (`lrn_ref`, what oneDNN runs for plain NCHW
/// backward): for each position and channel i,
///   omega_c = k + alpha * (sum over the window of c, ascending, of x^2) / size,
///   t_c = omega_c^-beta * dy_c,  B = sum over the window of i, ascending, of (x_c * t_c) /
///   omega_c, dx_i = t_i - B * (2 * alpha * beta * x_i / size).
/// The reference recomputes omega for every (i, c) pair (size^2 window sums per output); here
/// each omega_c, t_c and (x_c t_c) / omega_c is computed once (the same value every time) and
/// vectorised along the positions, 40x faster on AlexNet's layers. fp-contract=off keeps GCC
/// from fusing the multiply-adds (oneDNN's loop has no FMA; the test compares bit for bit).
__attribute__((optimize("fp-contract=off"))) void lrnBackwardImage(
    const float* x, const float* dy, float* dx, int64_t C, int64_t S, int64_t size, float alpha,
    float beta, float k, float* omega, float* t, float* q) {
  const int64_t half = (size - 1) / 2;
  const float summands = static_cast<float>(size);
  for (int64_t c = 0; c < C; ++c) {
    const int64_t lo = std::max<int64_t>(c - half, 0), hi = std::min<int64_t>(c + half + 1, C);
    float* om = omega + c * S;
    for (int64_t p = 0; p < S; ++p) om[p] = 0.f;
    for (int64_t j = lo; j < hi; ++j) {
      const float* xj = x + j * S;
      for (int64_t p = 0; p < S; ++p) {
        const float v = xj[p];
        const float sq = v * v;
        om[p] = om[p] + sq;
      }
    }
    const float* xc = x + c * S;
    const float* dyc = dy + c * S;
    float* tc = t + c * S;
    float* qc = q + c * S;
    for (int64_t p = 0; p < S; ++p) {
      const float scaled = alpha * om[p];
      const float o = k + scaled / summands;
      om[p] = o;
      const float tv = negativePow(o, beta) * dyc[p];
      tc[p] = tv;
      const float xt = xc[p] * tv;
      qc[p] = xt / o;
    }
  }
  const float twoAlphaBeta = 2.0f * alpha * beta;
  std::vector<float> b(static_cast<size_t>(S));
  for (int64_t i = 0; i < C; ++i) {
    const int64_t lo = std::max<int64_t>(i - half, 0), hi = std::min<int64_t>(i + half + 1, C);
    for (int64_t p = 0; p < S; ++p) b[size_t(p)] = 0.f;
    for (int64_t c = lo; c < hi; ++c) {
      const float* qc = q + c * S;
      for (int64_t p = 0; p < S; ++p) b[size_t(p)] = b[size_t(p)] + qc[p];
    }
    const float* xi = x + i * S;
    const float* ti = t + i * S;
    float* dxi = dx + i * S;
    for (int64_t p = 0; p < S; ++p) {
      const float f = twoAlphaBeta * xi[p] / summands;
      dxi[p] = ti[p] - b[size_t(p)] * f;
    }
  }
}

/// lrnBackwardImage over a batch, images in parallel.
Tensor lrnBackwardKernel(const Tensor& xc, const Tensor& go, const LrnOptions& o) {
  const Shape& s = xc.shape();
  const int64_t n = s[0], c = s[1], sp = s[2] * s[3];
  Tensor gx = Tensor::uninitialized(s);
  const float* px = xc.data<float>();
  const float* pg = go.data<float>();
  float* pd = gx.data<float>();
  parallelFor(0, n, 1, [&](int64_t b, int64_t e) {
    std::vector<float> work(static_cast<size_t>(3 * c * sp));
    for (int64_t i = b; i < e; ++i) {
      lrnBackwardImage(px + i * c * sp, pg + i * c * sp, pd + i * c * sp, c, sp, o.size,
                       float(o.alpha), float(o.beta), float(o.k), work.data(), work.data() + c * sp,
                       work.data() + 2 * c * sp);
    }
  });
  return gx;
}

/// Training-mode batchNorm (+ residual, + relu) on Mantissa's kernels (trainingKernel), the
/// running statistics updated, and one autograd node for the whole fused op: its backward
/// recomputes the relu mask from x, the statistics and the residual with the forward's exact
/// expression, so the gradients are those of the composition relu(bn(x) + residual).
Tensor trainingForward(const char* op, const BnSetup& s, const Tensor& x, const Tensor& gamma,
                       const Tensor& beta, const Tensor& xc, const Tensor& gc, const Tensor& bc,
                       const Tensor& runningMean, const Tensor& runningVar,
                       const BatchNormOptions& opts, int64_t perChannel, bool relu,
                       const Tensor& residual, bool leaky, float slope) {
  // The residual is fused when it has x's shape; a broadcasting one is added afterwards.
  const bool fuseRes =
      residual.defined() && residual.dtype() == DType::F32 && residual.shape() == x.shape();
  const bool fuseRelu = relu && (fuseRes || !residual.defined());
  Tensor res = fuseRes ? dd::kernelInput(residual, op, "residual").reshape(s.shape4) : Tensor();
  auto ch = std::make_shared<std::vector<BnChannel>>();
  Tensor mean, var;
  Tensor out = trainingKernel(xc, gc, bc, s.eps, fuseRelu, leaky, slope, res, *ch, mean, var);
  if (runningMean.defined()) {
    // PyTorch: the running variance tracks the unbiased estimate, n/(n-1) times the biased
    // variance that normalises the batch.
    Tensor rm = runningMean, rv = runningVar;
    float* pm = rm.data<float>();
    float* pv = rv.data<float>();
    const float* bm = mean.data<float>();
    const float* bv = var.data<float>();
    const double m = opts.momentum, unbias = double(perChannel) / double(perChannel - 1);
    for (size_t i = 0; i < ch->size(); ++i) {
      pm[i] = static_cast<float>((1 - m) * pm[i] + m * bm[i]);
      pv[i] = static_cast<float>((1 - m) * pv[i] + m * bv[i] * unbias);
    }
  }
  out = out.reshape(x.shape());
  const Tensor resIn = fuseRes ? residual : Tensor();
  if (autograd::needsGrad({x, gamma, beta, resIn})) {
    autograd::record(
        out, op, {x, gamma, beta, resIn},
        [s, xc, gc, res, ch, fuseRelu, leaky, slope, xShape = x.shape(),
         resShape = fuseRes ? residual.shape() : Shape{},
         needGamma = gamma.defined() && gamma.needsGrad(),
         needBeta = beta.defined() && beta.needsGrad(),
         needRes = fuseRes && residual.needsGrad()](const Tensor& g) -> autograd::GradList {
          Tensor go = dd::kernelInput(g, "batchNorm backward", "gradOut").reshape(s.shape4);
          const int64_t n = s.shape4[0], c = s.shape4[1], plane = s.shape4[2] * s.shape4[3];
          Tensor gx = Tensor::uninitialized(s.shape4);
          // The masked gradient goes to its own tensor only when it is the residual's gradient;
          // otherwise into gx, which the last pass overwrites in place (no extra tensor).
          Tensor gm = fuseRelu && needRes ? Tensor::uninitialized(s.shape4) : Tensor();
          std::vector<double> sums(static_cast<size_t>(2 * c));
          const float* px = xc.data<float>();
          const float* pg = go.data<float>();
          const float* pr = res.defined() ? res.data<float>() : nullptr;
          const float* pgamma = gc.defined() ? gc.data<float>() : nullptr;
          float* pdx = gx.data<float>();
          float* pgm = !fuseRelu ? nullptr : needRes ? gm.data<float>() : pdx;
          parallelFor(0, c, 1, [&](int64_t cb, int64_t ce) {
            for (int64_t j = cb; j < ce; ++j) {
              const int64_t o = j * plane;
              bnTrainBackwardChannel(px + o, pg + o, pr ? pr + o : nullptr, pdx + o,
                                     pgm ? pgm + o : nullptr, n, plane, c * plane, (*ch)[size_t(j)],
                                     pgamma ? pgamma[j] : 1.f, fuseRelu, leaky, slope,
                                     &sums[size_t(2 * j)], &sums[size_t(2 * j + 1)]);
            }
          });
          Tensor ggamma, gbeta;
          if (needGamma) {
            ggamma = Tensor::uninitialized({c});
            float* p = ggamma.data<float>();
            for (int64_t j = 0; j < c; ++j)
              p[j] = static_cast<float>(sums[size_t(2 * j + 1)] * (*ch)[size_t(j)].invStd);
          }
          if (needBeta) {
            gbeta = Tensor::uninitialized({c});
            float* p = gbeta.data<float>();
            for (int64_t j = 0; j < c; ++j) p[j] = static_cast<float>(sums[size_t(2 * j)]);
          }
          return {gx.reshape(xShape), ggamma, gbeta, needRes ? gm.reshape(resShape) : Tensor()};
        });
  }
  if (residual.defined() && !fuseRes) out = add(out, residual);
  return relu && !fuseRelu ? mantissa::relu(out) : out;  // (leaky has no residual: fused)
}

/// batchNorm, then + residual when it is defined, then relu when `relu` is set.
Tensor batchNormImpl(const char* op, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                     const Tensor& runningMean, const Tensor& runningVar,
                     const BatchNormOptions& opts, bool relu, const Tensor& residual = Tensor(),
                     bool leaky = false, float slope = 0.f) {
  MANTISSA_CHECK(x.defined(), op, ": undefined input");
  BnSetup s;
  s.text = dd::concat("input ", shapeOf(x), ", gamma ", shapeOf(gamma), ", beta ", shapeOf(beta),
                      ", running mean ", shapeOf(runningMean), ", running var ",
                      shapeOf(runningVar), opts.training ? ", training" : ", inference");
  MANTISSA_CHECK(x.dim() >= 2 && x.dim() <= 4, op,
                 ": input must be [N, C], [N, C, L] or [N, C, H, W] (", s.text, ")");
  const int64_t c = x.size(1);
  checkChannelVector(op, "gamma", gamma, c, s.text);
  checkChannelVector(op, "beta", beta, c, s.text);
  checkChannelVector(op, "running mean", runningMean, c, s.text);
  checkChannelVector(op, "running var", runningVar, c, s.text);
  MANTISSA_CHECK(runningMean.defined() == runningVar.defined(), op,
                 ": give both running statistics or neither (", s.text, ")");
  MANTISSA_CHECK(opts.training || runningMean.defined(), op,
                 ": inference mode needs the running statistics (", s.text, ")");
  MANTISSA_CHECK(!runningMean.defined() || (runningMean.isContiguous() && runningVar.isContiguous()),
                 op, ": running statistics must be contiguous (they are updated in place)");
  MANTISSA_CHECK(opts.eps > 0 && opts.momentum >= 0 && opts.momentum <= 1, op,
                 ": need eps > 0 and momentum in [0, 1], got eps ", opts.eps, ", momentum ",
                 opts.momentum);
  s.shape4 = x.dim() == 4   ? x.shape()
             : x.dim() == 3 ? Shape{x.size(0), c, x.size(2), 1}
                            : Shape{x.size(0), c, 1, 1};
  const int64_t perChannel = s.shape4[0] * s.shape4[2] * s.shape4[3];
  MANTISSA_CHECK(!opts.training || perChannel > 1, op,
                 ": training needs more than one value per channel (", s.text, ")");
  s.eps = static_cast<float>(opts.eps);
  s.flags = normalization_flags::none;
  if (gamma.defined()) s.flags |= normalization_flags::use_scale;
  if (beta.defined()) s.flags |= normalization_flags::use_shift;
  if (!opts.training) s.flags |= normalization_flags::use_global_stats;

  Tensor xc = dd::kernelInput(x, op, "input").reshape(s.shape4);
  Tensor gc = gamma.defined() ? dd::kernelInput(gamma, op, "gamma") : Tensor();
  Tensor bc = beta.defined() ? dd::kernelInput(beta, op, "beta") : Tensor();
  const bool grad = autograd::needsGrad({x, gamma, beta});
  const bool ownInference = !opts.training && !gDnnlInference.load(std::memory_order_relaxed);
  const bool fuseResidual =
      !residual.defined() ||
      (residual.dtype() == DType::F32 && residual.shape() == x.shape() && !residual.needsGrad());
  if (ownInference && !grad && fuseResidual) {
    // Eval mode without autograd: one pass with the residual add and relu fused, the running
    // statistics read in place.
    Tensor res = residual.defined() ? residual.detach().contiguous().reshape(s.shape4) : Tensor();
    return inferenceKernel(xc, gc, bc, runningMean, runningVar, s.eps, relu, res)
        .reshape(x.shape());
  }
  // Training mode: Mantissa's kernels (oneDNN's ncsp batch norm was 103 of 268 ms of a
  // one-thread ResNet-20 training step).
  if (opts.training)
    return trainingForward(op, s, x, gamma, beta, xc, gc, bc, runningMean, runningVar, opts,
                           perChannel, relu, residual, leaky, slope);
  // Inference with autograd, or on oneDNN for the tests: normalise with a snapshot of the
  // running statistics (it keeps backward correct if a later step updates the buffers).
  Tensor mean = runningMean.detach().clone(), var = runningVar.detach().clone();
  Tensor out;
  if (ownInference) {
    out = inferenceKernel(xc, gc, bc, mean, var, s.eps, false);
  } else {
    out = Tensor::uninitialized(s.shape4);
    dd::dnnlCall(op, s.text, [&] {
      auto pd = bnInferencePd(s);
      std::unordered_map<int, memory> args{{DNNL_ARG_SRC, dd::wrap(xc)},
                                           {DNNL_ARG_DST, dd::wrap(out)},
                                           {DNNL_ARG_MEAN, dd::wrap(mean)},
                                           {DNNL_ARG_VARIANCE, dd::wrap(var)}};
      if (gc.defined()) args[DNNL_ARG_SCALE] = dd::wrap(gc);
      if (bc.defined()) args[DNNL_ARG_SHIFT] = dd::wrap(bc);
      dd::execute(dnnl::batch_normalization_forward(pd), args);
    });
  }
  out = out.reshape(x.shape());
  if (grad) {
    autograd::record(
        out, op, {x, gamma, beta},
        [s, xc, gc, bc, mean, var, xShape = x.shape(),
         needGamma = gamma.defined() && gamma.needsGrad(),
         needBeta = beta.defined() && beta.needsGrad()](const Tensor& g) -> autograd::GradList {
          Tensor go = dd::kernelInput(g, "batchNorm backward", "gradOut").reshape(s.shape4);
          Tensor gx = Tensor::uninitialized(s.shape4);
          Tensor ggamma = Tensor::uninitialized({s.shape4[1]}),
                 gbeta = Tensor::uninitialized({s.shape4[1]});
          dd::dnnlCall("batchNorm backward", s.text, [&] {
            // With scale/shift flags oneDNN only offers prop backward (which also yields their
            // gradients, dropped below when not needed); backward_data is the no-affine case.
            const bool params = gc.defined() || bc.defined();
            dnnl::batch_normalization_backward::primitive_desc pd(
                dnnl::batch_normalization_backward::desc(
                    params ? dnnl::prop_kind::backward : dnnl::prop_kind::backward_data,
                    dd::plainDesc(s.shape4), dd::plainDesc(s.shape4), s.eps, s.flags),
                dd::dnnlAttr(), dd::dnnlEngine(), bnInferencePd(s));
            std::unordered_map<int, memory> args{{DNNL_ARG_SRC, dd::wrap(xc)},
                                                 {DNNL_ARG_DIFF_DST, dd::wrap(go)},
                                                 {DNNL_ARG_MEAN, dd::wrap(mean)},
                                                 {DNNL_ARG_VARIANCE, dd::wrap(var)},
                                                 {DNNL_ARG_DIFF_SRC, dd::wrap(gx)}};
            if (gc.defined()) args[DNNL_ARG_SCALE] = dd::wrap(gc);
            // oneDNN 2.6 lists the shift among the backward inputs when use_shift is set.
            if (bc.defined()) args[DNNL_ARG_SHIFT] = dd::wrap(bc);
            if (params && gc.defined()) args[DNNL_ARG_DIFF_SCALE] = dd::wrap(ggamma);
            if (params && (s.flags & normalization_flags::use_shift) != normalization_flags::none)
              args[DNNL_ARG_DIFF_SHIFT] = dd::wrap(gbeta);
            dd::execute(dnnl::batch_normalization_backward(pd), args);
          });
          return {gx.reshape(xShape), needGamma ? ggamma : Tensor(), needBeta ? gbeta : Tensor()};
        });
  }
  if (residual.defined()) out = add(out, residual);
  return relu ? mantissa::relu(out) : out;
}

}  // namespace

Tensor batchNorm(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                 const Tensor& runningMean, const Tensor& runningVar,
                 const BatchNormOptions& opts) {
  return batchNormImpl("batchNorm", x, gamma, beta, runningMean, runningVar, opts, false);
}

Tensor batchNormRelu(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                     const Tensor& runningMean, const Tensor& runningVar,
                     const BatchNormOptions& opts) {
  return batchNormImpl("batchNormRelu", x, gamma, beta, runningMean, runningVar, opts, true);
}

Tensor batchNormAddRelu(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                        const Tensor& runningMean, const Tensor& runningVar, const Tensor& residual,
                        const BatchNormOptions& opts) {
  MANTISSA_CHECK(residual.defined(), "batchNormAddRelu: undefined residual");
  return batchNormImpl("batchNormAddRelu", x, gamma, beta, runningMean, runningVar, opts, true,
                       residual);
}

Tensor batchNormLeakyRelu(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                          const Tensor& runningMean, const Tensor& runningVar, float slope,
                          const BatchNormOptions& opts) {
  if (!opts.training)
    return leakyRelu(batchNorm(x, gamma, beta, runningMean, runningVar, opts), slope);
  return batchNormImpl("batchNormLeakyRelu", x, gamma, beta, runningMean, runningVar, opts, true,
                       Tensor(), true, slope);
}

namespace detail {
void setBatchNormDnnlInference(bool on) { gDnnlInference.store(on); }
void setLrnDnnlBackward(bool on) { gDnnlLrnBackward.store(on); }
}  // namespace detail

Tensor lrn(const Tensor& x, const LrnOptions& opts) {
  const char* op = "lrn";
  MANTISSA_CHECK(x.defined(), op, ": undefined input");
  std::string text = dd::concat("input ", toString(x.shape()), ", size ", opts.size, ", alpha ",
                                opts.alpha, ", beta ", opts.beta, ", k ", opts.k);
  MANTISSA_CHECK(x.dim() == 4, op, ": input must be 4-D [N, C, H, W] (", text, ")");
  // oneDNN sums size-1 channels for an even size while PyTorch sums `size` (one more before
  // than after the channel): the two agree only for odd sizes.
  MANTISSA_CHECK(opts.size >= 1 && opts.size % 2 == 1, op, ": size must be odd and positive (",
                 text, ")");
  MANTISSA_CHECK(opts.k > 0, op, ": k must be positive (", text, ")");
  Tensor xc = dd::kernelInput(x, op, "input");
  Tensor out = Tensor::uninitialized(x.shape()), workspace;
  const bool grad = autograd::needsGrad({x});
  dd::dnnlCall(op, text, [&] {
    auto pd = lrnForwardPd(x.shape(), opts, grad ? dnnl::prop_kind::forward_training
                                                 : dnnl::prop_kind::forward_inference);
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, dd::wrap(xc)}, {DNNL_ARG_DST, dd::wrap(out)}};
    if (grad && pd.workspace_desc().get_size() > 0)
      args[DNNL_ARG_WORKSPACE] = dd::tensorMemory(pd.workspace_desc(), workspace);
    dd::execute(dnnl::lrn_forward(pd), args);
  });
  if (grad) {
    autograd::record(out, op, {x}, [xc, workspace, opts, text](const Tensor& g) -> autograd::GradList {
      Tensor go = dd::kernelInput(g, "lrn backward", "gradOut");
      Tensor gx;
      dd::dnnlCall("lrn backward", text, [&] {
        dnnl::lrn_backward::primitive_desc pd(
            dnnl::lrn_backward::desc(dnnl::algorithm::lrn_across_channels, dd::plainDesc(xc.shape()),
                                     dd::plainDesc(xc.shape()), opts.size, float(opts.alpha),
                                     float(opts.beta), float(opts.k)),
            dd::dnnlAttr(), dd::dnnlEngine(),
            lrnForwardPd(xc.shape(), opts, dnnl::prop_kind::forward_training));
        // oneDNN has no JIT backward for plain NCHW and runs its reference loop (47% of an
        // AlexNet training step); Mantissa's loop gives the same bits, much faster.
        if (std::string_view(pd.impl_info_str()).rfind("lrn_ref", 0) == 0 &&
            !gDnnlLrnBackward.load(std::memory_order_relaxed)) {
          gx = lrnBackwardKernel(xc, go, opts);
          return;
        }
        gx = Tensor::uninitialized(xc.shape());
        std::unordered_map<int, memory> args{{DNNL_ARG_SRC, dd::wrap(xc)},
                                             {DNNL_ARG_DIFF_DST, dd::wrap(go)},
                                             {DNNL_ARG_DIFF_SRC, dd::wrap(gx)}};
        if (workspace.defined()) args[DNNL_ARG_WORKSPACE] = dd::wrap(workspace, pd.workspace_desc());
        dd::execute(dnnl::lrn_backward(pd), args);
      });
      return {gx};
    });
  }
  return out;
}

}  // namespace mantissa
