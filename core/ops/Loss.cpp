#include "core/ops/Loss.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/autograd/Autograd.h"
#include "core/ops/Reduce.h"
#include "core/parallel/ParallelFor.h"

namespace mantissa {

namespace {

constexpr int64_t kGrain = 1 << 14;

void checkF32(const Tensor& t, const char* op, const char* what) {
  MANTISSA_CHECK(t.defined(), op, ": undefined ", what);
  MANTISSA_CHECK(t.dtype() == DType::F32, op, ": ", what, " must be f32, got ",
                 dtypeName(t.dtype()));
}

/// x viewed as [outer, n, inner] around the softmax axis; each (outer, inner) pair is one row
/// of n elements with stride `inner`.
struct AxisRows {
  int64_t outer = 1, n = 1, inner = 1;
  int64_t rows() const { return outer * inner; }
  int64_t base(int64_t r) const { return (r / inner) * n * inner + r % inner; }
};

AxisRows axisRows(const Shape& shape, int64_t axis) {
  AxisRows l;
  for (int64_t d = 0; d < static_cast<int64_t>(shape.size()); ++d) {
    if (d < axis) l.outer *= shape[d];
    else if (d == axis) l.n = shape[d];
    else l.inner *= shape[d];
  }
  return l;
}

int64_t rowGrain(int64_t n) { return std::max<int64_t>(1, kGrain / std::max<int64_t>(n, 1)); }

/// Softmax (log = false) or log-softmax (log = true) of every row; max-shifted so exp never
/// overflows, the sum accumulated in double.
Tensor softmaxForward(const Tensor& xc, const AxisRows& l, bool log) {
  Tensor out = Tensor::uninitialized(xc.shape());
  const float* x = xc.data<float>();
  float* y = out.data<float>();
  parallelFor(0, l.rows(), rowGrain(l.n), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const int64_t base = l.base(r), st = l.inner;
      float m = -std::numeric_limits<float>::infinity();
      for (int64_t k = 0; k < l.n; ++k) m = std::max(m, x[base + k * st]);
      // exp in f32 (its argument is an f32 difference anyway), the sum in double.
      double s = 0;
      if (log) {
        for (int64_t k = 0; k < l.n; ++k) s += std::exp(x[base + k * st] - m);
        const float shift = m + static_cast<float>(std::log(s));
        for (int64_t k = 0; k < l.n; ++k) y[base + k * st] = x[base + k * st] - shift;
      } else {
        for (int64_t k = 0; k < l.n; ++k) {
          const float ek = std::exp(x[base + k * st] - m);
          y[base + k * st] = ek;
          s += ek;
        }
        const double inv = 1.0 / s;
        for (int64_t k = 0; k < l.n; ++k) y[base + k * st] = static_cast<float>(y[base + k * st] * inv);
      }
    }
  });
  return out;
}

Tensor softmaxImpl(const Tensor& x, int64_t axis, bool log) {
  const char* op = log ? "logSoftmax" : "softmax";
  checkF32(x, op, "input");
  MANTISSA_CHECK(x.dim() > 0, op, ": input is a scalar (rank 0)");
  const int64_t a = normalizeAxis(axis, x.dim(), log ? "logSoftmax: axis" : "softmax: axis");
  AxisRows l = axisRows(x.shape(), a);
  Tensor out = softmaxForward(x.detach().contiguous(), l, log);
  if (autograd::needsGrad({x})) {
    autograd::record(out, op, {x}, [y = out.detach(), l, log](const Tensor& gIn) -> autograd::GradList {
      Tensor gc = gIn.contiguous();
      Tensor gx = Tensor::uninitialized(y.shape());
      const float* g = gc.data<float>();
      const float* py = y.data<float>();
      float* o = gx.data<float>();
      parallelFor(0, l.rows(), rowGrain(l.n), [&](int64_t b, int64_t e) {
        for (int64_t r = b; r < e; ++r) {
          const int64_t base = l.base(r), st = l.inner;
          double acc = 0;
          if (log) {
            // d logsoftmax: g - softmax * sum(g), softmax = exp(y).
            for (int64_t k = 0; k < l.n; ++k) acc += g[base + k * st];
            for (int64_t k = 0; k < l.n; ++k) {
              const int64_t i = base + k * st;
              o[i] = static_cast<float>(g[i] - std::exp(py[i]) * acc);
            }
          } else {
            // d softmax: y * (g - <g, y>).
            for (int64_t k = 0; k < l.n; ++k) acc += static_cast<double>(g[base + k * st]) * py[base + k * st];
            for (int64_t k = 0; k < l.n; ++k) {
              const int64_t i = base + k * st;
              o[i] = static_cast<float>(py[i] * (g[i] - acc));
            }
          }
        }
      });
      return {gx};
    });
  }
  return out;
}

/// The upstream gradient of a reduced loss as a per-element accessor: the element of g for
/// Reduction::None, one shared scalar (divided by the count for Mean) otherwise.
struct Upstream {
  Tensor g;
  const float* p = nullptr;
  float scalar = 0.f;
  float operator[](int64_t i) const { return p ? p[i] : scalar; }
};

Upstream upstream(const Tensor& g, Reduction reduction, int64_t count) {
  Upstream u;
  if (reduction == Reduction::None) {
    u.g = g.contiguous();
    u.p = u.g.data<float>();
  } else {
    u.scalar = g.item<float>();
    if (reduction == Reduction::Mean) u.scalar /= static_cast<float>(count);
  }
  return u;
}

/// Applies the reduction to per-element losses computed without autograd (deterministic
/// double-accumulated sum from Reduce).
Tensor reduceLoss(const Tensor& elems, Reduction reduction, const char* op) {
  if (reduction == Reduction::None) return elems;
  // sum() accumulates in double over fixed chunks: the loss does not depend on the thread count.
  if (reduction == Reduction::Sum) return sum(elems);
  MANTISSA_CHECK(elems.numel() > 0, op, ": mean reduction over an empty input of shape ",
                 toString(elems.shape()));
  return mean(elems);
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t axis) { return softmaxImpl(x, axis, false); }
Tensor logSoftmax(const Tensor& x, int64_t axis) { return softmaxImpl(x, axis, true); }

Tensor crossEntropy(const Tensor& logits, const Tensor& labels, CrossEntropyOptions opts) {
  checkF32(logits, "crossEntropy", "logits");
  MANTISSA_CHECK(labels.defined(), "crossEntropy: undefined labels");
  MANTISSA_CHECK(logits.dim() == 2, "crossEntropy: logits must be [N, C], got shape ",
                 toString(logits.shape()));
  MANTISSA_CHECK(labels.dtype() == DType::I64 || labels.dtype() == DType::I32,
                 "crossEntropy: labels must be i64 (or i32) class indices, got ",
                 dtypeName(labels.dtype()));
  const int64_t n = logits.shape()[0], c = logits.shape()[1];
  MANTISSA_CHECK(labels.dim() == 1 && labels.shape()[0] == n, "crossEntropy: labels of shape ",
                 toString(labels.shape()), " for logits of shape ", toString(logits.shape()),
                 " (expected [", n, "])");
  MANTISSA_CHECK(c > 0, "crossEntropy: logits have no classes (shape ", toString(logits.shape()), ")");
  const float eps = opts.labelSmoothing;
  MANTISSA_CHECK(std::isfinite(eps) && eps >= 0.f && eps <= 1.f,
                 "crossEntropy: labelSmoothing = ", eps, " outside [0, 1]");

  // Labels are checked serially before the parallel loop: nothing may throw inside OpenMP.
  std::vector<int64_t> y = labels.toVector<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    MANTISSA_CHECK(y[i] >= 0 && y[i] < c, "crossEntropy: label ", y[i], " at index ", i,
                   " is out of range [0, ", c, ")");
  }

  Tensor xc = logits.detach().contiguous();
  const float* x = xc.data<float>();
  std::vector<float> lse(static_cast<size_t>(n));
  Tensor elems = Tensor::uninitialized({n});
  float* le = elems.data<float>();
  const double onTarget = 1.0 - eps, uniform = static_cast<double>(eps) / static_cast<double>(c);
  parallelFor(0, n, rowGrain(c), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float* row = x + i * c;
      float m = -std::numeric_limits<float>::infinity();
      double rowSum = 0;
      for (int64_t k = 0; k < c; ++k) {
        m = std::max(m, row[k]);
        rowSum += row[k];
      }
      double s = 0;
      for (int64_t k = 0; k < c; ++k) s += std::exp(row[k] - m);  // f32 exp, double sum
      const double l = static_cast<double>(m) + std::log(s);
      lse[i] = static_cast<float>(l);
      // -sum_k q_k log p_k with q = (1-e) onehot + e/C and log p_k = x_k - lse.
      le[i] = static_cast<float>(l - onTarget * row[y[i]] - uniform * rowSum);
    }
  });
  Tensor out = reduceLoss(elems, opts.reduction, "crossEntropy");

  if (autograd::needsGrad({logits})) {
    autograd::record(
        out, "crossEntropy", {logits, labels},
        [xc, y = std::move(y), lse = std::move(lse), n, c, onTarget, uniform,
         reduction = opts.reduction](const Tensor& g) -> autograd::GradList {
          Upstream up = upstream(g, reduction, n);
          Tensor gx = Tensor::uninitialized({n, c});
          const float* x = xc.data<float>();
          float* o = gx.data<float>();
          parallelFor(0, n, rowGrain(c), [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) {
              const float gi = up[i];
              const float* row = x + i * c;
              float* orow = o + i * c;
              const float u = static_cast<float>(uniform), l = lse[i];
              for (int64_t k = 0; k < c; ++k) orow[k] = gi * (std::exp(row[k] - l) - u);
              orow[y[i]] -= gi * static_cast<float>(onTarget);
            }
          });
          return {gx, Tensor()};
        });
  }
  return out;
}

Tensor binaryCrossEntropyWithLogits(const Tensor& logits, const Tensor& targets,
                                    Reduction reduction) {
  const char* op = "binaryCrossEntropyWithLogits";
  checkF32(logits, op, "logits");
  checkF32(targets, op, "targets");
  MANTISSA_CHECK(logits.shape() == targets.shape(), op, ": logits of shape ",
                 toString(logits.shape()), " and targets of shape ", toString(targets.shape()),
                 " differ");
  Tensor xc = logits.detach().contiguous(), tc = targets.detach().contiguous();
  const float* x = xc.data<float>();
  const float* t = tc.data<float>();
  const int64_t count = xc.numel();
  Tensor elems = Tensor::uninitialized(xc.shape());
  float* le = elems.data<float>();
  parallelFor(0, count, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      // log(1 + exp(-|x|)) never overflows; max(x, 0) - x t completes -t log s - (1-t) log(1-s).
      le[i] = std::max(x[i], 0.f) - x[i] * t[i] + std::log1p(std::exp(-std::fabs(x[i])));
    }
  });
  Tensor out = reduceLoss(elems, reduction, op);

  if (autograd::needsGrad({logits, targets})) {
    const bool wantX = logits.needsGrad(), wantT = targets.needsGrad();
    autograd::record(out, op, {logits, targets},
                     [xc, tc, count, reduction, wantX, wantT](const Tensor& g) -> autograd::GradList {
                       Upstream up = upstream(g, reduction, count);
                       const float* x = xc.data<float>();
                       const float* t = tc.data<float>();
                       Tensor gx, gt;
                       float* ox = nullptr;
                       float* ot = nullptr;
                       if (wantX) ox = (gx = Tensor::uninitialized(xc.shape())).data<float>();
                       if (wantT) ot = (gt = Tensor::uninitialized(xc.shape())).data<float>();
                       parallelFor(0, count, kGrain, [&](int64_t b, int64_t e) {
                         for (int64_t i = b; i < e; ++i) {
                           if (ox) {
                             // sigmoid without overflow for large |x|.
                             const float z = std::exp(-std::fabs(x[i]));
                             const float s = x[i] >= 0.f ? 1.f / (1.f + z) : z / (1.f + z);
                             ox[i] = up[i] * (s - t[i]);
                           }
                           if (ot) ot[i] = -up[i] * x[i];
                         }
                       });
                       return {gx, gt};
                     });
  }
  return out;
}

Tensor mseLoss(const Tensor& a, const Tensor& b, Reduction reduction) {
  checkF32(a, "mseLoss", "first input");
  checkF32(b, "mseLoss", "second input");
  MANTISSA_CHECK(a.shape() == b.shape(), "mseLoss: inputs of shapes ", toString(a.shape()),
                 " and ", toString(b.shape()), " differ");
  Tensor ac = a.detach().contiguous(), bc = b.detach().contiguous();
  const int64_t count = ac.numel();
  Tensor diff = Tensor::uninitialized(ac.shape()), elems = Tensor::uninitialized(ac.shape());
  const float* pa = ac.data<float>();
  const float* pb = bc.data<float>();
  float* d = diff.data<float>();
  float* le = elems.data<float>();
  parallelFor(0, count, kGrain, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) {
      d[i] = pa[i] - pb[i];
      le[i] = d[i] * d[i];
    }
  });
  Tensor out = reduceLoss(elems, reduction, "mseLoss");

  if (autograd::needsGrad({a, b})) {
    const bool wantA = a.needsGrad(), wantB = b.needsGrad();
    autograd::record(out, "mseLoss", {a, b},
                     [diff, count, reduction, wantA, wantB](const Tensor& g) -> autograd::GradList {
                       Upstream up = upstream(g, reduction, count);
                       const float* d = diff.data<float>();
                       Tensor ga = Tensor::uninitialized(diff.shape());
                       float* o = ga.data<float>();
                       parallelFor(0, count, kGrain, [&](int64_t s, int64_t e) {
                         for (int64_t i = s; i < e; ++i) o[i] = 2.f * up[i] * d[i];
                       });
                       Tensor gb;
                       if (wantB) {
                         gb = Tensor::uninitialized(diff.shape());
                         float* ob = gb.data<float>();
                         parallelFor(0, count, kGrain, [&](int64_t s, int64_t e) {
                           for (int64_t i = s; i < e; ++i) ob[i] = -o[i];
                         });
                       }
                       return {wantA ? ga : Tensor(), gb};
                     });
  }
  return out;
}

}  // namespace mantissa
