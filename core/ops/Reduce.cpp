#include "core/ops/Reduce.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/autograd/Autograd.h"
#include "core/ops/Elementwise.h"
#include "core/parallel/ParallelFor.h"

namespace mantissa {

namespace {

/// Sorted, unique, normalised axes; empty input means all axes.
std::vector<int64_t> normalizeAxes(const std::vector<int64_t>& axes, int64_t rank, const char* op) {
  std::vector<int64_t> out;
  if (axes.empty()) {
    for (int64_t i = 0; i < rank; ++i) out.push_back(i);
    return out;
  }
  for (int64_t a : axes) out.push_back(normalizeAxis(a, rank, op));
  std::sort(out.begin(), out.end());
  MANTISSA_CHECK(std::adjacent_find(out.begin(), out.end()) == out.end(), op, ": repeated axis");
  return out;
}

/// The input viewed as [outer, inner] with the reduced axes innermost, plus the result shapes.
struct ReduceLayout {
  Tensor rows;  // contiguous [outer, inner]
  int64_t outer = 1, inner = 1;
  Shape keptShape, keepDimShape;
};

ReduceLayout layoutFor(const Tensor& x, const std::vector<int64_t>& axes) {
  ReduceLayout l;
  std::vector<bool> reduced(x.dim(), false);
  for (int64_t a : axes) reduced[a] = true;
  std::vector<int64_t> perm;
  for (int64_t i = 0; i < x.dim(); ++i) {
    if (!reduced[i]) {
      perm.push_back(i);
      l.outer *= x.shape()[i];
      l.keptShape.push_back(x.shape()[i]);
      l.keepDimShape.push_back(x.shape()[i]);
    } else {
      l.keepDimShape.push_back(1);
    }
  }
  for (int64_t a : axes) {
    perm.push_back(a);
    l.inner *= x.shape()[a];
  }
  l.rows = x.detach().permute(perm).contiguous().reshape({l.outer, l.inner});
  return l;
}

Tensor sumImpl(const Tensor& x, const std::vector<int64_t>& axesIn, bool keepDim) {
  MANTISSA_CHECK(x.dtype() == DType::F32, "sum: expected an f32 tensor, got ", dtypeName(x.dtype()));
  std::vector<int64_t> axes = normalizeAxes(axesIn, x.dim(), "sum: axis");
  ReduceLayout l = layoutFor(x, axes);
  Tensor out = Tensor::empty(keepDim ? l.keepDimShape : l.keptShape);
  const float* p = l.rows.data<float>();
  float* o = out.data<float>();
  const int64_t inner = l.inner;
  if (l.outer >= numThreads() || inner < (1 << 16)) {
    parallelFor(0, l.outer, std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(inner, 1)),
                [&](int64_t s, int64_t e) {
                  for (int64_t r = s; r < e; ++r) {
                    double acc = 0;
                    const float* row = p + r * inner;
                    for (int64_t i = 0; i < inner; ++i) acc += row[i];
                    o[r] = static_cast<float>(acc);
                  }
                });
  } else {
    // Few long rows: split each row into fixed chunks so the result does not depend on threads.
    constexpr int64_t kChunk = 1 << 14;
    const int64_t chunks = (inner + kChunk - 1) / kChunk;
    std::vector<double> partial(static_cast<size_t>(l.outer * chunks));
    parallelFor(0, l.outer * chunks, 1, [&](int64_t s, int64_t e) {
      for (int64_t c = s; c < e; ++c) {
        int64_t r = c / chunks, k = c % chunks;
        const float* row = p + r * inner;
        double acc = 0;
        for (int64_t i = k * kChunk, end = std::min(inner, (k + 1) * kChunk); i < end; ++i) acc += row[i];
        partial[c] = acc;
      }
    });
    for (int64_t r = 0; r < l.outer; ++r) {
      double acc = 0;
      for (int64_t k = 0; k < chunks; ++k) acc += partial[r * chunks + k];
      o[r] = static_cast<float>(acc);
    }
  }
  if (autograd::needsGrad({x})) {
    autograd::record(out, "sum", {x},
                     [inShape = x.shape(), kd = l.keepDimShape](const Tensor& g)
                         -> autograd::GradList { return {g.reshape(kd).expand(inShape).contiguous()}; });
  }
  return out;
}

}  // namespace

Tensor sum(const Tensor& x) { return sumImpl(x, {}, false); }

Tensor sum(const Tensor& x, const std::vector<int64_t>& axes, bool keepDim) {
  return sumImpl(x, axes, keepDim);
}

Tensor mean(const Tensor& x) { return mean(x, {}, false); }

Tensor mean(const Tensor& x, const std::vector<int64_t>& axes, bool keepDim) {
  std::vector<int64_t> norm = normalizeAxes(axes, x.dim(), "mean: axis");
  int64_t count = 1;
  for (int64_t a : norm) count *= x.shape()[a];
  MANTISSA_CHECK(count > 0, "mean over an empty axis of shape ", toString(x.shape()));
  return mul(sumImpl(x, norm, keepDim), 1.0f / static_cast<float>(count));
}

Tensor max(const Tensor& x, int64_t axis, bool keepDim) {
  MANTISSA_CHECK(x.dtype() == DType::F32, "max: expected an f32 tensor");
  int64_t a = normalizeAxis(axis, x.dim(), "max: axis");
  MANTISSA_CHECK(x.shape()[a] > 0, "max over an empty axis of shape ", toString(x.shape()));
  ReduceLayout l = layoutFor(x, {a});
  Tensor out = Tensor::empty(keepDim ? l.keepDimShape : l.keptShape);
  std::vector<int64_t> idx(static_cast<size_t>(l.outer));
  const float* p = l.rows.data<float>();
  float* o = out.data<float>();
  parallelFor(0, l.outer, 256, [&](int64_t s, int64_t e) {
    for (int64_t r = s; r < e; ++r) {
      const float* row = p + r * l.inner;
      int64_t best = 0;
      for (int64_t i = 1; i < l.inner; ++i) {
        if (row[i] > row[best] || (std::isnan(row[i]) && !std::isnan(row[best]))) best = i;
      }
      idx[r] = best;
      o[r] = row[best];
    }
  });
  if (autograd::needsGrad({x})) {
    autograd::record(out, "max", {x},
                     [inShape = x.shape(), a, idx = std::move(idx), inner = l.inner](
                         const Tensor& g) -> autograd::GradList {
                       // Scatter into the [outer, inner] layout, then undo the permutation.
                       Shape permShape;
                       std::vector<int64_t> perm;
                       for (int64_t i = 0; i < static_cast<int64_t>(inShape.size()); ++i) {
                         if (i != a) {
                           perm.push_back(i);
                           permShape.push_back(inShape[i]);
                         }
                       }
                       perm.push_back(a);
                       permShape.push_back(inShape[a]);
                       Tensor rows = Tensor::zeros({static_cast<int64_t>(idx.size()), inner});
                       Tensor gc = g.contiguous();
                       const float* pg = gc.data<float>();
                       float* pr = rows.data<float>();
                       for (size_t r = 0; r < idx.size(); ++r) pr[r * inner + idx[r]] = pg[r];
                       std::vector<int64_t> inverse(perm.size());
                       for (size_t i = 0; i < perm.size(); ++i) inverse[perm[i]] = static_cast<int64_t>(i);
                       return {rows.reshape(permShape).permute(inverse).contiguous()};
                     });
  }
  return out;
}

Tensor max(const Tensor& x) { return max(x.flatten(), 0, false); }

Tensor argmax(const Tensor& x, int64_t axis, bool keepDim) {
  MANTISSA_CHECK(x.dtype() == DType::F32, "argmax: expected an f32 tensor");
  int64_t a = normalizeAxis(axis, x.dim(), "argmax: axis");
  ReduceLayout l = layoutFor(x, {a});
  Tensor out = Tensor::empty(keepDim ? l.keepDimShape : l.keptShape, DType::I64);
  const float* p = l.rows.data<float>();
  int64_t* o = out.data<int64_t>();
  for (int64_t r = 0; r < l.outer; ++r) {
    const float* row = p + r * l.inner;
    o[r] = std::max_element(row, row + l.inner) - row;
  }
  return out;
}

Tensor var(const Tensor& x, const std::vector<int64_t>& axes, bool unbiased, bool keepDim) {
  std::vector<int64_t> norm = normalizeAxes(axes, x.dim(), "var: axis");
  int64_t count = 1;
  for (int64_t a : norm) count *= x.shape()[a];
  MANTISSA_CHECK(count > (unbiased ? 1 : 0), "var: not enough elements (", count, ")");
  Tensor centered = sub(x, mean(x, norm, true));
  Tensor ss = sum(mul(centered, centered), norm, keepDim);
  return mul(ss, 1.0f / static_cast<float>(unbiased ? count - 1 : count));
}

Tensor reduceTo(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  MANTISSA_CHECK(x.dim() >= static_cast<int64_t>(shape.size()), "reduceTo: cannot reduce ",
                 toString(x.shape()), " to ", toString(shape));
  size_t lead = x.shape().size() - shape.size();
  std::vector<int64_t> axes;
  for (size_t i = 0; i < x.shape().size(); ++i) {
    if (i < lead) {
      axes.push_back(static_cast<int64_t>(i));
    } else if (shape[i - lead] == 1 && x.shape()[i] != 1) {
      axes.push_back(static_cast<int64_t>(i));
    } else {
      MANTISSA_CHECK(shape[i - lead] == x.shape()[i], "reduceTo: cannot reduce ",
                     toString(x.shape()), " to ", toString(shape));
    }
  }
  if (axes.empty()) return x.reshape(shape);
  return sum(x, axes, true).reshape(shape);
}

}  // namespace mantissa
