#include "optim/Adam.h"

#include <algorithm>
#include <cmath>

#include "core/parallel/ParallelFor.h"

namespace mantissa::optim {

namespace {
constexpr int64_t kGrain = 1 << 14;

/// PyTorch's CPU lerp: two formulas so the result is exact at both ends of the weight.
inline float lerp(float a, float b, float w) {
  return w < 0.5f ? a + w * (b - a) : b - (b - a) * (1.f - w);
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
  const float w1 = static_cast<float>(1.0 - b1), beta2 = static_cast<float>(b2);
  const float w2 = static_cast<float>(1.0 - b2), eps = static_cast<float>(opts_.eps);
  const float wd = static_cast<float>(opts_.weightDecay);
  const float decay = static_cast<float>(1.0 - lr() * opts_.weightDecay);
  const bool decoupled = decoupled_;
  parallelFor(0, param.numel(), kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      float gi = g[i];
      if (wd != 0.f) {
        if (decoupled) p[i] *= decay;
        else gi += wd * p[i];
      }
      m[i] = lerp(m[i], gi, w1);
      v[i] = beta2 * v[i] + w2 * gi * gi;
      float second = v[i];
      if (vmax) second = vmax[i] = std::max(vmax[i], v[i]);
      const float denom = std::sqrt(second) / bc2Sqrt + eps;
      p[i] -= stepSize * (m[i] / denom);
    }
  });
}

}  // namespace mantissa::optim
