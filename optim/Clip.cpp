#include "optim/Clip.h"

#include <algorithm>
#include <cmath>

#include "core/autograd/Autograd.h"
#include "core/parallel/ParallelFor.h"

namespace mantissa::optim {

namespace {

constexpr int64_t kChunk = 1 << 14;

/// Parameters with the names used in error messages ("'fc.weight'" or "parameter 3").
NamedParameters labelled(const std::vector<Tensor>& params) {
  NamedParameters out;
  out.reserve(params.size());
  for (size_t i = 0; i < params.size(); ++i) out.emplace_back("parameter " + std::to_string(i), params[i]);
  return out;
}

NamedParameters quoted(const NamedParameters& params) {
  NamedParameters out;
  out.reserve(params.size());
  for (const auto& [name, p] : params) out.emplace_back("'" + name + "'", p);
  return out;
}

/// sum |x|^p (or max |x| when p is infinite) of one contiguous tensor, chunked so the result
/// does not depend on how many threads ran.
double partialNorm(const Tensor& g, double p) {
  const float* x = g.data<float>();
  const int64_t n = g.numel(), chunks = (n + kChunk - 1) / kChunk;
  const bool inf = std::isinf(p);
  std::vector<double> part(static_cast<size_t>(chunks), 0.0);
  parallelFor(0, chunks, 1, [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e; ++c) {
      double acc = 0;
      for (int64_t i = c * kChunk, end = std::min(n, (c + 1) * kChunk); i < end; ++i) {
        const double a = std::fabs(static_cast<double>(x[i]));
        if (inf) acc = std::isnan(a) || std::isnan(acc) ? NAN : std::max(acc, a);
        else if (p == 2.0) acc += a * a;
        else if (p == 1.0) acc += a;
        else acc += std::pow(a, p);
      }
      part[c] = acc;
    }
  });
  double total = 0;
  for (double v : part) total = inf ? (std::isnan(v) || std::isnan(total) ? NAN : std::max(total, v)) : total + v;
  return total;
}

double clipGradNormImpl(const NamedParameters& named, double maxNorm, double normType) {
  MANTISSA_CHECK(std::isfinite(maxNorm) && maxNorm >= 0, "clipGradNorm: maxNorm ", maxNorm,
                 " must be finite and >= 0");
  MANTISSA_CHECK(normType > 0, "clipGradNorm: normType ", normType, " must be > 0");
  autograd::NoGradGuard noGrad;
  const bool inf = std::isinf(normType);
  std::vector<Tensor> grads(named.size());
  double acc = 0;
  for (size_t i = 0; i < named.size(); ++i) {
    const auto& [label, param] = named[i];
    MANTISSA_CHECK(param.defined(), "clipGradNorm: ", label, " is undefined");
    Tensor g = param.grad();
    if (!g.defined()) continue;
    MANTISSA_CHECK(g.dtype() == DType::F32, "clipGradNorm: gradient of ", label, " has dtype ",
                   dtypeName(g.dtype()));
    grads[i] = g.isContiguous() ? g : g.contiguous();
    const double part = partialNorm(grads[i], normType);
    acc = inf ? (std::isnan(part) || std::isnan(acc) ? NAN : std::max(acc, part)) : acc + part;
  }
  const double total = inf ? acc : (normType == 2.0 ? std::sqrt(acc) : std::pow(acc, 1.0 / normType));
  if (!std::isfinite(total)) return total;
  const double coef = maxNorm / (total + 1e-6);
  if (coef >= 1.0) return total;
  const float scale = static_cast<float>(coef);
  for (size_t i = 0; i < named.size(); ++i) {
    if (!grads[i].defined()) continue;
    Tensor g = grads[i];
    float* x = g.data<float>();
    parallelFor(0, g.numel(), kChunk, [&](int64_t b, int64_t e) {
      for (int64_t k = b; k < e; ++k) x[k] *= scale;
    });
    // A non-contiguous gradient was scaled in a copy: install the copy.
    if (!g.isSameAs(named[i].second.grad())) {
      Tensor p = named[i].second;
      p.setGrad(g);
    }
  }
  return total;
}

void clipWeightsImpl(const NamedParameters& named, double c) {
  MANTISSA_CHECK(std::isfinite(c) && c > 0, "clipWeights: bound ", c, " must be finite and > 0");
  autograd::NoGradGuard noGrad;
  const float hi = static_cast<float>(c), lo = -hi;
  for (const auto& [label, param] : named) {
    Tensor p = param;
    MANTISSA_CHECK(p.defined() && p.dtype() == DType::F32 && p.isContiguous(), "clipWeights: ",
                   label, " must be a contiguous f32 tensor");
    float* x = p.data<float>();
    parallelFor(0, p.numel(), kChunk, [&](int64_t b, int64_t e) {
      for (int64_t k = b; k < e; ++k) x[k] = std::clamp(x[k], lo, hi);
    });
  }
}

}  // namespace

double clipGradNorm(const std::vector<Tensor>& params, double maxNorm, double normType) {
  return clipGradNormImpl(labelled(params), maxNorm, normType);
}

double clipGradNorm(const NamedParameters& params, double maxNorm, double normType) {
  return clipGradNormImpl(quoted(params), maxNorm, normType);
}

void clipWeights(const std::vector<Tensor>& params, double c) { clipWeightsImpl(labelled(params), c); }

void clipWeights(const NamedParameters& params, double c) { clipWeightsImpl(quoted(params), c); }

}  // namespace mantissa::optim
