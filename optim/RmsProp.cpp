#include "optim/RmsProp.h"

#include <cmath>

#include "core/parallel/ParallelFor.h"

namespace mantissa::optim {

namespace {
constexpr int64_t kGrain = 1 << 14;

inline float lerp(float a, float b, float w) {
  return w < 0.5f ? a + w * (b - a) : b - (b - a) * (1.f - w);
}
}  // namespace

RmsProp::RmsProp(NamedParameters params, RmsPropOptions opts)
    : Optimizer("rmsprop", std::move(params), opts.lr), opts_(opts) {
  MANTISSA_CHECK(opts.alpha >= 0 && opts.alpha <= 1, "rmsprop: alpha = ", opts.alpha,
                 " outside [0, 1]");
  MANTISSA_CHECK(std::isfinite(opts.eps) && opts.eps >= 0, "rmsprop: eps ", opts.eps,
                 " must be >= 0");
  MANTISSA_CHECK(std::isfinite(opts.weightDecay) && opts.weightDecay >= 0,
                 "rmsprop: weightDecay ", opts.weightDecay, " must be >= 0");
  MANTISSA_CHECK(std::isfinite(opts.momentum) && opts.momentum >= 0, "rmsprop: momentum ",
                 opts.momentum, " must be >= 0");
}

std::vector<std::string> RmsProp::slotNames() const {
  std::vector<std::string> s = {"square_avg"};
  if (opts_.momentum > 0) s.push_back("momentum_buffer");
  if (opts_.centered) s.push_back("grad_avg");
  return s;
}

void RmsProp::update(Tensor& param, const Tensor& grad, Slots& slots, int64_t step) {
  for (const std::string& s : slotNames()) {
    if (!slots.count(s)) slots[s] = zerosLike(param);
  }
  float* p = param.data<float>();
  const float* g = grad.data<float>();
  float* sq = slots["square_avg"].data<float>();
  float* buf = opts_.momentum > 0 ? slots["momentum_buffer"].data<float>() : nullptr;
  float* avg = opts_.centered ? slots["grad_avg"].data<float>() : nullptr;
  const float rate = static_cast<float>(lr()), alpha = static_cast<float>(opts_.alpha);
  const float w = static_cast<float>(1.0 - opts_.alpha), eps = static_cast<float>(opts_.eps);
  const float wd = static_cast<float>(opts_.weightDecay), mom = static_cast<float>(opts_.momentum);
  parallelFor(0, param.numel(), kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      float gi = g[i];
      if (wd != 0.f) gi += wd * p[i];
      sq[i] = alpha * sq[i] + w * gi * gi;
      float d;
      if (avg) {
        avg[i] = lerp(avg[i], gi, w);
        // Rounding can push s - a^2 slightly below zero; PyTorch would give NaN there too,
        // so no clamp: same semantics.
        d = std::sqrt(sq[i] - avg[i] * avg[i]) + eps;
      } else {
        d = std::sqrt(sq[i]) + eps;
      }
      if (buf) {
        buf[i] = mom * buf[i] + gi / d;
        p[i] -= rate * buf[i];
      } else {
        p[i] -= rate * (gi / d);
      }
    }
  });
}

}  // namespace mantissa::optim
