#include "optim/Sgd.h"

#include <cmath>

#include "core/parallel/ParallelFor.h"

namespace mantissa::optim {

namespace {
constexpr int64_t kGrain = 1 << 14;
}

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
  const float rate = static_cast<float>(lr()), wd = static_cast<float>(opts_.weightDecay);
  const float mom = static_cast<float>(opts_.momentum);
  const float keep = static_cast<float>(1.0 - opts_.dampening);
  const bool nesterov = opts_.nesterov, useMomentum = opts_.momentum != 0;
  float* p = param.data<float>();
  const float* g = grad.data<float>();
  float* buf = nullptr;
  bool fresh = false;
  if (useMomentum) {
    auto [it, inserted] = slots.try_emplace("momentum_buffer");
    if (inserted) it->second = zerosLike(param);
    buf = it->second.data<float>();
    fresh = inserted;
  }
  parallelFor(0, param.numel(), kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      float d = g[i];
      if (wd != 0.f) d += wd * p[i];
      if (useMomentum) {
        // PyTorch starts the buffer at the first gradient itself (no dampening applied).
        buf[i] = fresh ? d : mom * buf[i] + keep * d;
        d = nesterov ? d + mom * buf[i] : buf[i];
      }
      p[i] -= rate * d;
    }
  });
}

}  // namespace mantissa::optim
