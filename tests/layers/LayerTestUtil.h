#pragma once

// Helpers shared by the layer tests: a central-difference check of a module's input and
// parameter gradients, and an independent HBFP block quantizer (FORMATS.md A.3) used to predict
// what a GEMM must see.

#include <algorithm>
#include <cmath>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "core/Rng.h"
#include "core/autograd/Autograd.h"
#include "core/autograd/GradCheck.h"
#include "core/ops/Elementwise.h"
#include "core/ops/Reduce.h"
#include "layers/Module.h"

namespace mantissa::testing {

/// Checks dL/dx and dL/dθ for every parameter θ of `m` against central differences, with
/// L = Σ fwd(x) ⊙ R for a fixed random R. `fwd` defaults to m.forward; tests of stochastic
/// layers pass one that resets the layer's randomness first. Perturbations write straight into
/// the parameters' storage, so the module is exercised exactly as it runs in training.
inline autograd::GradCheckResult checkModuleGrads(
    nn::Module& m, const Tensor& input,
    autograd::GradCheckOptions opts = {.eps = 1e-2, .atol = 2e-3, .rtol = 1e-2},
    std::function<Tensor(const Tensor&)> fwd = nullptr) {
  if (!fwd) fwd = [&m](const Tensor& x) { return m.forward(x); };
  Tensor x = input.detach().clone();
  x.requiresGrad();
  m.zeroGrad();
  Tensor y = fwd(x);
  Rng rng(4242);
  Tensor r = Tensor::rand(y.shape(), rng, -1.f, 1.f);
  sum(mul(y, r)).backward();

  auto projected = [&]() {
    autograd::NoGradGuard guard;
    Tensor out = fwd(x).contiguous();
    const float* po = out.data<float>();
    const float* pr = r.data<float>();
    double acc = 0;
    for (int64_t i = 0; i < out.numel(); ++i) acc += static_cast<double>(po[i]) * pr[i];
    return acc;
  };
  nn::Named<Tensor> targets{{"input", x}};
  for (auto& p : m.namedParameters()) targets.push_back(p);
  for (auto& [name, t] : targets) {
    Tensor g = t.grad();
    const int64_t n = t.numel();
    std::vector<float> ga = g.defined() ? g.toVector() : std::vector<float>(n, 0.f);
    float* p = t.data<float>();
    const int64_t step = opts.maxElements > 0 && n > opts.maxElements ? n / opts.maxElements : 1;
    for (int64_t i = 0; i < n; i += step) {
      const float saved = p[i];
      p[i] = static_cast<float>(saved + opts.eps);
      const double up = projected();
      const double hUp = p[i];
      p[i] = static_cast<float>(saved - opts.eps);
      const double down = projected();
      const double h = hUp - p[i];
      p[i] = saved;
      const double numeric = (up - down) / h;
      const double diff = std::fabs(numeric - ga[i]);
      if (diff > opts.atol + opts.rtol * std::fabs(numeric)) {
        std::ostringstream os;
        os << m.typeName() << ": " << name << " element " << i << ": analytic " << ga[i]
           << " vs numeric " << numeric;
        return {false, os.str()};
      }
    }
  }
  return {};
}

/// HBFP block quantization written from FORMATS.md A.3 alone: blocks of `block` consecutive
/// values along the flattened `axes` (in the order given, for each position of the other
/// axes); e = ceil(log2(max|x|)) per block, ulp = 2^(e - (bits - 1)), round half to even,
/// clamp to ±(2^e - ulp); an all-zero block stays zero.
inline Tensor hbfpReference(const Tensor& t, const std::vector<int64_t>& axes, int bits,
                            int64_t block = 64) {
  Tensor c = t.detach().contiguous();
  std::vector<float> v = c.toVector();
  const Shape& s = c.shape();
  const int64_t rank = c.dim();
  Shape strides(rank, 1);
  for (int64_t d = rank - 2; d >= 0; --d) strides[d] = strides[d + 1] * s[d + 1];
  std::vector<bool> isBlock(rank, false);
  for (int64_t a : axes) isBlock[a] = true;
  std::vector<int64_t> outerAxes;
  for (int64_t d = 0; d < rank; ++d) {
    if (!isBlock[d]) outerAxes.push_back(d);
  }
  // Offsets of every element of one "row" (the flattened block axes), in row order.
  std::vector<int64_t> row{0};
  for (int64_t a : axes) {
    std::vector<int64_t> next;
    for (int64_t base : row)
      for (int64_t i = 0; i < s[a]; ++i) next.push_back(base + i * strides[a]);
    row = next;
  }
  std::vector<int64_t> outer{0};
  for (int64_t a : outerAxes) {
    std::vector<int64_t> next;
    for (int64_t base : outer)
      for (int64_t i = 0; i < s[a]; ++i) next.push_back(base + i * strides[a]);
    outer = next;
  }
  for (int64_t base : outer) {
    for (size_t b0 = 0; b0 < row.size(); b0 += static_cast<size_t>(block)) {
      const size_t b1 = std::min(row.size(), b0 + static_cast<size_t>(block));
      double mx = 0;
      for (size_t i = b0; i < b1; ++i) mx = std::max(mx, std::fabs(double(v[base + row[i]])));
      if (mx == 0) continue;
      const int e = static_cast<int>(std::ceil(std::log2(mx)));
      const double ulp = std::ldexp(1.0, e - (bits - 1));
      const double vmax = std::ldexp(1.0, e) - ulp;
      for (size_t i = b0; i < b1; ++i) {
        float& x = v[base + row[i]];
        double q = std::nearbyint(double(x) / ulp) * ulp;  // default mode: half to even
        x = static_cast<float>(std::clamp(q, -vmax, vmax));
      }
    }
  }
  return Tensor::fromVector(v, s);
}

/// max |a - b| over all elements.
inline double maxAbsDiff(const Tensor& a, const Tensor& b) {
  std::vector<float> va = a.toVector(), vb = b.toVector();
  double d = 0;
  for (size_t i = 0; i < va.size(); ++i) d = std::max(d, std::fabs(double(va[i]) - vb[i]));
  return d;
}

/// max |a| over all elements.
inline double maxAbs(const Tensor& a) {
  double d = 0;
  for (float v : a.toVector()) d = std::max(d, std::fabs(double(v)));
  return d;
}

}  // namespace mantissa::testing
