#pragma once

#include <cstdint>
#include <vector>

#include "core/Tensor.h"

namespace mantissa::cli {

/// Mean and covariance of a set of feature vectors (a Gaussian fitted to them).
struct GaussianStats {
  int64_t dim = 0, count = 0;
  std::vector<double> mean;  // [dim]
  std::vector<double> cov;   // [dim * dim], row-major, unbiased (divided by count - 1)
};

/// Accumulates features [N, D] batch by batch, in double precision, into GaussianStats.
class GaussianAccumulator {
 public:
  /// Adds the rows of `features` (F32 [N, D]; D must stay the same across calls).
  void add(const Tensor& features);
  int64_t count() const { return count_; }
  /// Needs at least two rows. The covariance is the sample covariance (numpy.cov, as in
  /// pytorch-fid).
  GaussianStats stats() const;

 private:
  int64_t dim_ = 0, count_ = 0;
  std::vector<double> sum_, outer_;  // sum of x and of x xᵀ about a fixed shift (the first row)
  std::vector<double> shift_;
};

/// Fréchet distance between two Gaussians (Dowson & Landau 1982; Heusel et al. 2017's FID):
///   d² = |μ1 - μ2|² + tr(Σ1) + tr(Σ2) - 2 tr((Σ1^½ Σ2 Σ1^½)^½).
/// The square roots use symmetric eigendecompositions (Σ1^½ Σ2 Σ1^½ is symmetric positive
/// semi-definite, so its eigenvalues give the trace directly); eigenvalues that rounding makes
/// slightly negative are taken as 0. Returns d² (what FID reports), never negative.
double frechetDistance(const GaussianStats& a, const GaussianStats& b);

}  // namespace mantissa::cli
