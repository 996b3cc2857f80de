#include "core/ops/Dropout.h"

#include <cmath>

#include "core/Rng.h"
#include "core/autograd/Autograd.h"
#include "core/parallel/ParallelFor.h"

namespace mantissa {

Tensor dropout(const Tensor& x, float p, bool training, Rng& rng) {
  MANTISSA_CHECK(x.defined(), "dropout: undefined input");
  MANTISSA_CHECK(std::isfinite(p) && p >= 0.f && p < 1.f, "dropout: probability p = ", p,
                 " outside [0, 1)");
  if (!training || p == 0.f) return x;
  MANTISSA_CHECK(x.dtype() == DType::F32, "dropout: expected an f32 tensor, got ",
                 dtypeName(x.dtype()));

  const std::array<uint32_t, 2> key = {rng.nextU32(), rng.nextU32()};
  const float scale = 1.f / (1.f - p);
  Tensor c = x.detach().contiguous();
  Tensor out = Tensor::empty(x.shape());
  // The mask holds 0 or 1/(1-p): backward is one multiply with the same values.
  Tensor mask = Tensor::empty(x.shape());
  const float* in = c.data<float>();
  float* o = out.data<float>();
  float* m = mask.data<float>();
  const int64_t n = x.numel();
  // Blocks of 4 elements share one Philox call; chunk starts are aligned to 4 so the values do
  // not depend on how parallelFor splits the range.
  const int64_t blocks = (n + 3) / 4;
  parallelFor(0, blocks, 1 << 12, [&](int64_t b, int64_t e) {
    for (int64_t blk = b; blk < e; ++blk) {
      const uint64_t ctr = static_cast<uint64_t>(blk);
      auto r = philox4x32(key, {static_cast<uint32_t>(ctr), static_cast<uint32_t>(ctr >> 32),
                                0x0D50u, 0u});
      for (int64_t j = 0; j < 4; ++j) {
        const int64_t i = blk * 4 + j;
        if (i >= n) break;
        // Same 24-bit uniform as Rng::uniform; keep when u >= p, so P(drop) = p.
        const float u = static_cast<float>(r[j] >> 8) * (1.0f / 16777216.0f);
        m[i] = u >= p ? scale : 0.f;
        o[i] = in[i] * m[i];
      }
    }
  });

  if (autograd::needsGrad({x})) {
    autograd::record(out, "dropout", {x}, [mask](const Tensor& g) -> autograd::GradList {
      Tensor gc = g.contiguous();
      Tensor gi = Tensor::empty(mask.shape());
      const float* pg = gc.data<float>();
      const float* pm = mask.data<float>();
      float* po = gi.data<float>();
      parallelFor(0, gi.numel(), 1 << 15, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) po[i] = pg[i] * pm[i];
      });
      return {gi};
    });
  }
  return out;
}

}  // namespace mantissa
