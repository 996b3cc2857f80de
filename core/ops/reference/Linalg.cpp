#include "core/ops/reference/Linalg.h"

namespace mantissa::reference {

Tensor matmul(const Tensor& a, const Tensor& b) {
  MANTISSA_CHECK(a.dim() >= 2 && a.dim() <= 3 && b.dim() >= 2 && b.dim() <= a.dim(),
                 "reference::matmul: unsupported ranks");
  const int64_t batch = a.dim() == 3 ? a.size(0) : 1;
  const int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1);
  MANTISSA_CHECK(b.size(-2) == k, "reference::matmul: inner sizes differ");
  const bool sharedB = b.dim() == 2;
  std::vector<float> va = a.toVector(), vb = b.toVector(), out(batch * m * n);
  for (int64_t p = 0; p < batch; ++p) {
    const float* pa = va.data() + p * m * k;
    const float* pb = vb.data() + (sharedB ? 0 : p * k * n);
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        double acc = 0;
        for (int64_t q = 0; q < k; ++q) acc += double(pa[i * k + q]) * pb[q * n + j];
        out[(p * m + i) * n + j] = static_cast<float>(acc);
      }
    }
  }
  Shape shape = a.dim() == 3 ? Shape{batch, m, n} : Shape{m, n};
  return Tensor::fromVector(out, shape);
}

Tensor linearForward(const Tensor& x, const Tensor& w, const Tensor& b) {
  Tensor y = reference::matmul(x, w.transpose(0, 1));
  if (!b.defined()) return y;
  std::vector<float> vy = y.toVector(), vb = b.toVector();
  const int64_t n = y.size(1);
  for (size_t i = 0; i < vy.size(); ++i) vy[i] = float(double(vy[i]) + vb[i % n]);
  return Tensor::fromVector(vy, y.shape());
}

Tensor linearBackwardData(const Tensor& gradOut, const Tensor& w) { return reference::matmul(gradOut, w); }

WeightGrads linearBackwardWeights(const Tensor& x, const Tensor& gradOut, bool withBias) {
  WeightGrads g;
  g.weight = reference::matmul(gradOut.transpose(0, 1), x);
  if (withBias) {
    const int64_t rows = gradOut.size(0), n = gradOut.size(1);
    std::vector<float> vg = gradOut.toVector(), vb(n);
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0;
      for (int64_t i = 0; i < rows; ++i) acc += vg[i * n + j];
      vb[j] = static_cast<float>(acc);
    }
    g.bias = Tensor::fromVector(vb, {n});
  }
  return g;
}

}  // namespace mantissa::reference
