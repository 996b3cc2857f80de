#pragma once

// Helpers shared by the oneDNN op suites (LinalgTest, ConvTest, PoolTest, NormTest).

#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "core/Rng.h"
#include "core/Tensor.h"
#include "core/autograd/GradCheck.h"

namespace mantissa::testing {

/// Normalised mean squared error Σ(got - want)² / Σ want² (double); +inf on a shape mismatch.
inline double nmse(const Tensor& got, const Tensor& want) {
  if (!got.defined() || !want.defined() || got.shape() != want.shape()) return INFINITY;
  std::vector<float> g = got.toVector(), w = want.toVector();
  double num = 0, den = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    num += std::pow(double(g[i]) - double(w[i]), 2);
    den += double(w[i]) * double(w[i]);
  }
  return den == 0 ? num : num / den;
}

/// F32 kernels against double-accumulating references: rounding alone gives NMSE ~1e-14.
constexpr double kKernelNmse = 1e-10;

/// Checks a kernel result against its reference by NMSE; `what` names the kernel in failures.
inline void checkClose(const Tensor& got, const Tensor& want, const std::string& what) {
  const double e = nmse(got, want);
  INFO(what << ": got " << toString(got.shape()) << ", want " << toString(want.shape())
            << ", nmse " << e);
  CHECK(e < kKernelNmse);
}

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

/// gradCheck with defaults suited to F32 ops that are linear or smooth in their inputs.
inline void checkGradients(const Fn& fn, const std::vector<Tensor>& inputs,
                           autograd::GradCheckOptions opts = {.eps = 1e-2, .atol = 2e-3,
                                                              .rtol = 1e-2, .maxElements = 48}) {
  auto r = autograd::gradCheck(fn, inputs, opts);
  CHECK_MESSAGE(r.ok, r.message);
}

/// Distinct values (a shuffled ramp with gaps of `gap`), so max pooling never sees near-ties
/// that a finite-difference step could flip.
inline Tensor distinctValues(const Shape& shape, Rng& rng, float gap = 0.05f) {
  std::vector<float> v(numelOf(shape));
  for (size_t i = 0; i < v.size(); ++i) v[i] = gap * float(i) - gap * float(v.size()) / 2;
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.uniformInt(i)]);
  return Tensor::fromVector(v, shape);
}

}  // namespace mantissa::testing
