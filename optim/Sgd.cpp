#include "optim/Sgd.h"

#include <cmath>

#include "core/parallel/ParallelFor.h"

namespace mantissa::optim {

namespace {
constexpr int64_t kGrain = 1 << 14;

enum class Momentum { None, First, Accumulate };

struct SgdScalars {
  float rate, wd, mom, keep;
};

/// One chunk of the update; the options are template parameters so each variant is a
/// branch-free loop the compiler vectorises (__restrict: the buffers never overlap).
template <bool kWd, Momentum kMom, bool kNesterov>
void sgdChunk(int64_t b, int64_t e, float* __restrict p, const float* __restrict g,
              float* __restrict buf, const SgdScalars& scalars) {
  const SgdScalars s = scalars;
  for (int64_t i = b; i < e; ++i) {
    float d = g[i];
    if constexpr (kWd) d += s.wd * p[i];
    if constexpr (kMom != Momentum::None) {
      // PyTorch starts the buffer at the first gradient itself (no dampening applied).
      if constexpr (kMom == Momentum::First) buf[i] = d;
      else buf[i] = s.mom * buf[i] + s.keep * d;
      if constexpr (kNesterov) d = d + s.mom * buf[i];
      else d = buf[i];
    }
    p[i] -= s.rate * d;
  }
}

using SgdKernel = void (*)(int64_t, int64_t, float*, const float*, float*, const SgdScalars&);

template <bool kWd>
SgdKernel pickMomentum(Momentum mom, bool nesterov) {
  switch (mom) {
    case Momentum::None: return &sgdChunk<kWd, Momentum::None, false>;
    case Momentum::First:
      return nesterov ? &sgdChunk<kWd, Momentum::First, true> : &sgdChunk<kWd, Momentum::First, false>;
    default:
      return nesterov ? &sgdChunk<kWd, Momentum::Accumulate, true>
                      : &sgdChunk<kWd, Momentum::Accumulate, false>;
  }
}
}  // namespace

Sgd::Sgd(NamedParameters params, SgdOptions opts)
    : Optimizer("sgd", std::move(params), opts.lr), opts_(opts) {
  MANTISSA_CHECK(std::isfinite(opts.momentum) && opts.momentum >= 0, "sgd: momentum ",
                 opts.momentum, " must be >= 0");
  MANTISSA_CHECK(std::isfinite(opts.dampening), "sgd: dampening ", opts.dampening,
                 " must be finite");
  MANTISSA_CHECK(std::isfinite(opts.weightDecay) && opts.weightDecay >= 0, "sgd: weightDecay ",
                 opts.weightDecay, " must be >= 0");
  MANTISSA_CHECK(!opts.nesterov || (opts.momentum > 0 && opts.dampening == 0),
                 "sgd: nesterov momentum needs momentum > 0 and dampening = 0 (got momentum ",
                 opts.momentum, ", dampening ", opts.dampening, ")");
}

std::vector<std::string> Sgd::slotNames() const {
  if (opts_.momentum != 0) return {"momentum_buffer"};
  return {};
}

void Sgd::update(Tensor& param, const Tensor& grad, Slots& slots, int64_t step) {
  // Scalars rounded to f32 once, as PyTorch passes them to its f32 kernels.
  SgdScalars sc{};
  sc.rate = static_cast<float>(lr());
  sc.wd = static_cast<float>(opts_.weightDecay);
  sc.mom = static_cast<float>(opts_.momentum);
  sc.keep = static_cast<float>(1.0 - opts_.dampening);
  Momentum mom = Momentum::None;
  float* buf = nullptr;
  if (opts_.momentum != 0) {
    auto [it, inserted] = slots.try_emplace("momentum_buffer");
    if (inserted) it->second = zerosLike(param);
    buf = it->second.data<float>();
    mom = inserted ? Momentum::First : Momentum::Accumulate;
  }
  SgdKernel kernel = sc.wd != 0.f ? pickMomentum<true>(mom, opts_.nesterov)
                                  : pickMomentum<false>(mom, opts_.nesterov);
  float* p = param.data<float>();
  const float* g = grad.data<float>();
  parallelFor(0, param.numel(), kGrain, [&](int64_t b, int64_t e) { kernel(b, e, p, g, buf, sc); });
}

}  // namespace mantissa::optim
