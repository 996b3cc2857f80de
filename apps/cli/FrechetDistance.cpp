#include "apps/cli/FrechetDistance.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>

#include "core/Error.h"

namespace mantissa::cli {

void GaussianAccumulator::add(const Tensor& features) {
  MANTISSA_CHECK(features.dim() == 2, "GaussianAccumulator: features of shape ",
                 toString(features.shape()), " (expected [N, D])");
  Tensor f = features.to(DType::F32).contiguous();
  const int64_t n = f.size(0), d = f.size(1);
  if (n == 0) return;
  const float* x = f.data<float>();
  if (count_ == 0) {
    dim_ = d;
    sum_.assign(d, 0.0);
    outer_.assign(d * d, 0.0);
    // Sums about the first row keep the covariance accurate when the mean is large compared to
    // the spread (the naive E[xxᵀ] - μμᵀ cancels catastrophically).
    shift_.assign(x, x + d);
  }
  MANTISSA_CHECK(d == dim_, "GaussianAccumulator: ", d, " features per row, earlier rows had ",
                 dim_);
  std::vector<double> c(d);
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t i = 0; i < d; ++i) c[i] = static_cast<double>(x[r * d + i]) - shift_[i];
    for (int64_t i = 0; i < d; ++i) {
      sum_[i] += c[i];
      double ci = c[i];
      double* row = &outer_[i * d];
      for (int64_t j = i; j < d; ++j) row[j] += ci * c[j];
    }
  }
  count_ += n;
}

GaussianStats GaussianAccumulator::stats() const {
  MANTISSA_CHECK(count_ >= 2, "GaussianAccumulator: need at least 2 feature vectors, got ", count_);
  GaussianStats s;
  s.dim = dim_;
  s.count = count_;
  s.mean.resize(dim_);
  s.cov.resize(dim_ * dim_);
  const double n = static_cast<double>(count_);
  for (int64_t i = 0; i < dim_; ++i) s.mean[i] = shift_[i] + sum_[i] / n;
  for (int64_t i = 0; i < dim_; ++i) {
    for (int64_t j = i; j < dim_; ++j) {
      double v = (outer_[i * dim_ + j] - sum_[i] * sum_[j] / n) / (n - 1);
      s.cov[i * dim_ + j] = s.cov[j * dim_ + i] = v;
    }
  }
  return s;
}

double frechetDistance(const GaussianStats& a, const GaussianStats& b) {
  MANTISSA_CHECK(a.dim == b.dim && a.dim > 0, "frechetDistance: feature dimensions ", a.dim,
                 " and ", b.dim, " differ");
  using Mat = Eigen::MatrixXd;
  const Eigen::Index d = a.dim;
  Mat s1 = Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
      a.cov.data(), d, d);
  Mat s2 = Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
      b.cov.data(), d, d);
  double meanTerm = 0;
  for (Eigen::Index i = 0; i < d; ++i) meanTerm += std::pow(a.mean[i] - b.mean[i], 2);

  // Σ1^½ from Σ1 = V Λ Vᵀ; covariances are PSD, so negative eigenvalues are rounding noise.
  Eigen::SelfAdjointEigenSolver<Mat> e1(s1);
  MANTISSA_CHECK(e1.info() == Eigen::Success, "frechetDistance: eigendecomposition failed");
  Eigen::VectorXd r1 = e1.eigenvalues().cwiseMax(0.0).cwiseSqrt();
  Mat s1Half = e1.eigenvectors() * r1.asDiagonal() * e1.eigenvectors().transpose();
  // tr((Σ1^½ Σ2 Σ1^½)^½) = Σ sqrt(λ_i) over the eigenvalues of the symmetric product; it equals
  // tr((Σ1 Σ2)^½), which scipy.linalg.sqrtm computes in pytorch-fid, without a non-symmetric
  // square root.
  Mat m = s1Half * s2 * s1Half;
  m = 0.5 * (m + m.transpose());
  Eigen::SelfAdjointEigenSolver<Mat> em(m, Eigen::EigenvaluesOnly);
  MANTISSA_CHECK(em.info() == Eigen::Success, "frechetDistance: eigendecomposition failed");
  double trSqrt = em.eigenvalues().cwiseMax(0.0).cwiseSqrt().sum();
  double dist = meanTerm + s1.trace() + s2.trace() - 2.0 * trSqrt;
  return std::max(dist, 0.0);
}

}  // namespace mantissa::cli
