#include <doctest/doctest.h>

#include <cmath>

#include "apps/cli/FrechetDistance.h"

using namespace mantissa;
using cli::GaussianAccumulator;
using cli::GaussianStats;

namespace {

GaussianStats stats(std::vector<double> mean, std::vector<double> cov) {
  GaussianStats s;
  s.dim = static_cast<int64_t>(mean.size());
  s.count = 100;
  s.mean = std::move(mean);
  s.cov = std::move(cov);
  return s;
}

}  // namespace

TEST_CASE(
    "FrechetDistance: sample mean and unbiased covariance, batch-split and offset-invariant") {
  // Rows (1,2), (3,6), (5,4): mean (3,4); deviations (-2,-2), (0,2), (2,0) give
  // var x = 8/2, var y = 8/2, cov = 4/2.
  for (float offset : {0.f, 1e5f}) {
    CAPTURE(offset);
    GaussianAccumulator all, split;
    Tensor rows = Tensor::fromVector({1 + offset, 2, 3 + offset, 6, 5 + offset, 4}, {3, 2});
    all.add(rows);
    split.add(rows.slice(0, 0, 1));
    split.add(rows.slice(0, 1, 3));
    for (const GaussianAccumulator* acc : {&all, &split}) {
      GaussianStats s = acc->stats();
      CHECK(s.count == 3);
      CHECK(s.mean[0] == doctest::Approx(3 + offset));
      CHECK(s.mean[1] == doctest::Approx(4));
      CHECK(s.cov[0] == doctest::Approx(4).epsilon(1e-9));
      CHECK(s.cov[3] == doctest::Approx(4).epsilon(1e-9));
      CHECK(s.cov[1] == doctest::Approx(2).epsilon(1e-9));
      CHECK(s.cov[2] == s.cov[1]);
    }
  }
  GaussianAccumulator one;
  one.add(Tensor::fromVector({1, 2}, {1, 2}));
  CHECK_THROWS_WITH_AS(one.stats(), doctest::Contains("at least 2"), Error);
  CHECK_THROWS_WITH_AS(one.add(Tensor::fromVector({1, 2, 3}, {1, 3})),
                       doctest::Contains("3 features"), Error);
}

TEST_CASE("FrechetDistance: closed forms for 1-D, diagonal and 2x2 Gaussians") {
  SUBCASE("identical Gaussians are at distance 0") {
    GaussianStats a = stats({1, -2}, {2, 0.5, 0.5, 1});
    CHECK(cli::frechetDistance(a, a) == doctest::Approx(0).epsilon(1e-9));
  }
  SUBCASE("1-D: (m1 - m2)^2 + (s1 - s2)^2") {
    GaussianStats a = stats({1.5}, {4.0}), b = stats({-0.5}, {9.0});
    CHECK(cli::frechetDistance(a, b) == doctest::Approx(4.0 + 1.0));
  }
  SUBCASE("diagonal: per-dimension sums of squared mean and standard-deviation differences") {
    GaussianStats a = stats({0, 1, 2}, {1, 0, 0, 0, 4, 0, 0, 0, 0.25});
    GaussianStats b = stats({1, 1, 0}, {9, 0, 0, 0, 1, 0, 0, 0, 0.25});
    // |dmu|^2 = 1 + 0 + 4; (1-3)^2 + (2-1)^2 + (0.5-0.5)^2 = 5.
    CHECK(cli::frechetDistance(a, b) == doctest::Approx(10.0));
  }
  SUBCASE("2x2, non-commuting covariances") {
    // For 2x2 PSD M, tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)); with M = S1^1/2 S2 S1^1/2,
    // tr M = tr(S1 S2) and det M = det S1 det S2.
    double s1[4] = {2, 0.8, 0.8, 1}, s2[4] = {0.5, -0.3, -0.3, 3};
    GaussianStats a = stats({0.3, -1}, {s1[0], s1[1], s1[2], s1[3]});
    GaussianStats b = stats({-0.2, 0.5}, {s2[0], s2[1], s2[2], s2[3]});
    double trProd = s1[0] * s2[0] + s1[1] * s2[2] + s1[2] * s2[1] + s1[3] * s2[3];
    double det1 = s1[0] * s1[3] - s1[1] * s1[2], det2 = s2[0] * s2[3] - s2[1] * s2[2];
    double trSqrt = std::sqrt(trProd + 2 * std::sqrt(det1 * det2));
    double expected = 0.25 + 2.25 + (s1[0] + s1[3]) + (s2[0] + s2[3]) - 2 * trSqrt;
    CHECK(cli::frechetDistance(a, b) == doctest::Approx(expected).epsilon(1e-10));
    CHECK(cli::frechetDistance(b, a) == doctest::Approx(expected).epsilon(1e-10));
  }
  SUBCASE("a singular covariance (rank 1) is handled") {
    GaussianStats a = stats({0, 0}, {1, 1, 1, 1}), b = stats({0, 0}, {1, 1, 1, 1});
    CHECK(cli::frechetDistance(a, b) == doctest::Approx(0).epsilon(1e-7));
  }
  SUBCASE("dimension mismatch") {
    CHECK_THROWS_WITH_AS(cli::frechetDistance(stats({0}, {1}), stats({0, 0}, {1, 0, 0, 1})),
                         doctest::Contains("differ"), Error);
  }
}
