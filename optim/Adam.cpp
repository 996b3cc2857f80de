#include "optim/Adam.h"

#include <algorithm>
#include <cmath>

#include "core/parallel/ParallelFor.h"
#include "optim/detail/Lerp.h"

namespace mantissa::optim {

namespace {
constexpr int64_t kGrain = 1 << 14;

using detail::lerp;

struct AdamScalars {
  float stepSize, bc2Sqrt, w1, beta2, w2, eps, wd, decay;
};

/// One chunk of the update. The options are template parameters so every variant is a
/// branch-free loop the compiler vectorises; __restrict: the five buffers never overlap.
/// (This file is built with -fno-math-errno, see optim/CMakeLists.txt: sqrt of a negative
/// value is NaN either way, and without errno the loop has no branch to a library call.)
template <bool kWd, bool kDecoupled, bool kAms, bool kLowWeight>
void adamChunk(int64_t b, int64_t e, float* __restrict p, const float* __restrict g,
               float* __restrict m, float* __restrict v, float* __restrict vmax,
               const AdamScalars& scalars) {
  const AdamScalars s = scalars;  // local copy: no reloads through the reference
  for (int64_t i = b; i < e; ++i) {
    float gi = g[i];
    if constexpr (kWd) {
      if constexpr (kDecoupled) p[i] *= s.decay;
      else gi += s.wd * p[i];
    }
    m[i] = lerp<kLowWeight>(m[i], gi, s.w1);
    v[i] = s.beta2 * v[i] + s.w2 * gi * gi;
    float second = v[i];
    if constexpr (kAms) second = vmax[i] = std::max(vmax[i], v[i]);
    const float denom = std::sqrt(second) / s.bc2Sqrt + s.eps;
    p[i] -= s.stepSize * (m[i] / denom);
  }
}

using AdamKernel = void (*)(int64_t, int64_t, float*, const float*, float*, float*, float*,
                            const AdamScalars&);

template <bool kWd, bool kDecoupled, bool kAms>
AdamKernel pickLerp(bool low) {
  return low ? &adamChunk<kWd, kDecoupled, kAms, true> : &adamChunk<kWd, kDecoupled, kAms, false>;
}

template <bool kWd, bool kDecoupled>
AdamKernel pickAms(bool ams, bool low) {
  return ams ? pickLerp<kWd, kDecoupled, true>(low) : pickLerp<kWd, kDecoupled, false>(low);
}

AdamKernel pickKernel(bool wd, bool decoupled, bool ams, bool low) {
  if (!wd) return pickAms<false, false>(ams, low);
  return decoupled ? pickAms<true, true>(ams, low) : pickAms<true, false>(ams, low);
}
}  // namespace

Adam::Adam(NamedParameters params, AdamOptions opts) : Adam("adam", std::move(params), opts, false) {}

Adam::Adam(std::string type, NamedParameters params, AdamOptions opts, bool decoupled)
    : Optimizer(type, std::move(params), opts.lr), opts_(opts), decoupled_(decoupled) {
  auto [b1, b2] = opts.betas;
  MANTISSA_CHECK(b1 >= 0 && b1 < 1, type, ": betas.first = ", b1, " outside [0, 1)");
  MANTISSA_CHECK(b2 >= 0 && b2 < 1, type, ": betas.second = ", b2, " outside [0, 1)");
  MANTISSA_CHECK(std::isfinite(opts.eps) && opts.eps >= 0, type, ": eps ", opts.eps, " must be >= 0");
  MANTISSA_CHECK(std::isfinite(opts.weightDecay) && opts.weightDecay >= 0, type, ": weightDecay ",
                 opts.weightDecay, " must be >= 0");
}

AdamW::AdamW(NamedParameters params, AdamWOptions o)
    : Adam("adamw", std::move(params),
           AdamOptions{.lr = o.lr, .betas = o.betas, .eps = o.eps, .weightDecay = o.weightDecay,
                       .amsgrad = o.amsgrad},
           true) {}

std::vector<std::string> Adam::slotNames() const {
  if (opts_.amsgrad) return {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
  return {"exp_avg", "exp_avg_sq"};
}

void Adam::update(Tensor& param, const Tensor& grad, Slots& slots, int64_t step) {
  for (const std::string& s : slotNames()) {
    if (!slots.count(s)) slots[s] = zerosLike(param);
  }
  float* p = param.data<float>();
  const float* g = grad.data<float>();
  float* m = slots["exp_avg"].data<float>();
  float* v = slots["exp_avg_sq"].data<float>();
  float* vmax = opts_.amsgrad ? slots["max_exp_avg_sq"].data<float>() : nullptr;

  // Bias corrections and the step size in double, as PyTorch computes them in Python floats;
  // the elementwise arithmetic in f32 like its kernels.
  const double b1 = opts_.betas.first, b2 = opts_.betas.second;
  const double t = static_cast<double>(step);
  const float stepSize = static_cast<float>(lr() / (1.0 - std::pow(b1, t)));
  const float bc2Sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(b2, t)));
  AdamScalars sc{};
  sc.stepSize = stepSize;
  sc.bc2Sqrt = bc2Sqrt;
  sc.w1 = static_cast<float>(1.0 - b1);
  sc.beta2 = static_cast<float>(b2);
  sc.w2 = static_cast<float>(1.0 - b2);
  sc.eps = static_cast<float>(opts_.eps);
  sc.wd = static_cast<float>(opts_.weightDecay);
  sc.decay = static_cast<float>(1.0 - lr() * opts_.weightDecay);
  AdamKernel kernel = pickKernel(sc.wd != 0.f, decoupled_, opts_.amsgrad, sc.w1 < 0.5f);
  parallelFor(0, param.numel(), kGrain,
              [&](int64_t b, int64_t e) { kernel(b, e, p, g, m, v, vmax, sc); });
}

}  // namespace mantissa::optim
