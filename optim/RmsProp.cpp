#include "optim/RmsProp.h"

#include <cmath>

#include "core/parallel/ParallelFor.h"
#include "optim/detail/Lerp.h"

namespace mantissa::optim {

namespace {
constexpr int64_t kGrain = 1 << 14;

using detail::lerp;

struct RmsScalars {
  float rate, alpha, w, eps, wd, mom;
};

/// One chunk of the update; options as template parameters so each variant is a branch-free
/// loop that vectorises (this file is built with -fno-math-errno, see optim/CMakeLists.txt).
template <bool kWd, bool kCentered, bool kMomentum, bool kLowWeight>
void rmsChunk(int64_t b, int64_t e, float* __restrict p, const float* __restrict g,
              float* __restrict sq, float* __restrict avg, float* __restrict buf,
              const RmsScalars& scalars) {
  const RmsScalars s = scalars;
  for (int64_t i = b; i < e; ++i) {
    float gi = g[i];
    if constexpr (kWd) gi += s.wd * p[i];
    sq[i] = s.alpha * sq[i] + s.w * gi * gi;
    float d;
    if constexpr (kCentered) {
      avg[i] = lerp<kLowWeight>(avg[i], gi, s.w);
      // Rounding can push s - a^2 slightly below zero; PyTorch gives NaN there too, so no
      // clamp: same semantics.
      d = std::sqrt(sq[i] - avg[i] * avg[i]) + s.eps;
    } else {
      d = std::sqrt(sq[i]) + s.eps;
    }
    if constexpr (kMomentum) {
      buf[i] = s.mom * buf[i] + gi / d;
      p[i] -= s.rate * buf[i];
    } else {
      p[i] -= s.rate * (gi / d);
    }
  }
}

using RmsKernel = void (*)(int64_t, int64_t, float*, const float*, float*, float*, float*,
                           const RmsScalars&);

template <bool kWd, bool kCentered, bool kMomentum>
RmsKernel pickLerp(bool low) {
  return low ? &rmsChunk<kWd, kCentered, kMomentum, true> : &rmsChunk<kWd, kCentered, kMomentum, false>;
}

template <bool kWd, bool kCentered>
RmsKernel pickMomentum(bool mom, bool low) {
  return mom ? pickLerp<kWd, kCentered, true>(low) : pickLerp<kWd, kCentered, false>(low);
}

RmsKernel pickKernel(bool wd, bool centered, bool mom, bool low) {
  if (wd) return centered ? pickMomentum<true, true>(mom, low) : pickMomentum<true, false>(mom, low);
  return centered ? pickMomentum<false, true>(mom, low) : pickMomentum<false, false>(mom, low);
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
  RmsScalars sc{};
  sc.rate = static_cast<float>(lr());
  sc.alpha = static_cast<float>(opts_.alpha);
  sc.w = static_cast<float>(1.0 - opts_.alpha);
  sc.eps = static_cast<float>(opts_.eps);
  sc.wd = static_cast<float>(opts_.weightDecay);
  sc.mom = static_cast<float>(opts_.momentum);
  RmsKernel kernel = pickKernel(sc.wd != 0.f, opts_.centered, buf != nullptr, sc.w < 0.5f);
  parallelFor(0, param.numel(), kGrain,
              [&](int64_t b, int64_t e) { kernel(b, e, p, g, sq, avg, buf, sc); });
}

}  // namespace mantissa::optim
