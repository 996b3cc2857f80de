#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "core/Rng.h"
#include "optim/Clip.h"

using namespace mantissa;
using namespace mantissa::optim;

namespace {
NamedParameters withGrads() {
  // Gradients (3, 4) and (12): global 2-norm sqrt(9 + 16 + 144) = 13, 1-norm 19, max 12.
  Tensor a = Tensor::zeros({2}).requiresGrad();
  Tensor b = Tensor::zeros({1}).requiresGrad();
  Tensor c = Tensor::zeros({2}).requiresGrad();  // no gradient: skipped
  a.setGrad(Tensor::fromVector({3.f, 4.f}));
  b.setGrad(Tensor::fromVector({12.f}, {1}));
  return {{"a", a}, {"b", b}, {"c", c}};
}
}  // namespace

TEST_CASE("clipGradNorm: global norms and scaling") {
  SUBCASE("2-norm above the limit scales by maxNorm / (norm + 1e-6)") {
    NamedParameters ps = withGrads();
    CHECK(clipGradNorm(ps, 6.5) == doctest::Approx(13.0));
    const double coef = 6.5 / (13.0 + 1e-6);
    CHECK(ps[0].second.grad().toVector()[0] == doctest::Approx(3 * coef));
    CHECK(ps[0].second.grad().toVector()[1] == doctest::Approx(4 * coef));
    CHECK(ps[1].second.grad().toVector()[0] == doctest::Approx(12 * coef));
    CHECK_FALSE(ps[2].second.grad().defined());
    // The result has norm maxNorm (up to the 1e-6 guard).
    CHECK(clipGradNorm(ps, 100.0) == doctest::Approx(6.5));
  }
  SUBCASE("below the limit nothing changes") {
    NamedParameters ps = withGrads();
    CHECK(clipGradNorm(ps, 20.0) == doctest::Approx(13.0));
    CHECK(ps[0].second.grad().toVector() == std::vector<float>{3, 4});
  }
  SUBCASE("1-norm and max-norm") {
    NamedParameters ps = withGrads();
    CHECK(clipGradNorm(ps, 100.0, 1.0) == doctest::Approx(19.0));
    CHECK(clipGradNorm(ps, 6.0, std::numeric_limits<double>::infinity()) == doctest::Approx(12.0));
    CHECK(ps[1].second.grad().toVector()[0] == doctest::Approx(6.0));
    CHECK(clipGradNorm(ps, 100.0, 3.0) == doctest::Approx(std::cbrt(27.0 + 64 + 1728) / 2));
  }
  SUBCASE("plain tensor list, and a non-contiguous gradient is replaced by its scaled copy") {
    Tensor w = Tensor::zeros({2, 2}).requiresGrad();
    w.setGrad(Tensor::fromVector({0, 1, 2, 3}, {2, 2}).transpose(0, 1));  // [[0,2],[1,3]]
    CHECK(clipGradNorm(std::vector<Tensor>{w}, std::sqrt(14.0) / 2) == doctest::Approx(std::sqrt(14.0)));
    CHECK(w.grad().toVector()[1] == doctest::Approx(1.0));
    CHECK(w.grad().toVector()[2] == doctest::Approx(0.5));
  }
  SUBCASE("a non-finite norm is returned and the gradients are left alone") {
    NamedParameters ps = withGrads();
    ps[1].second.setGrad(Tensor::fromVector({NAN}, {1}));
    CHECK(std::isnan(clipGradNorm(ps, 1.0)));
    CHECK(ps[0].second.grad().toVector() == std::vector<float>{3, 4});
  }
  SUBCASE("a large gradient in parallel chunks matches a double loop") {
    Rng rng(9);
    Tensor w = Tensor::zeros({300000}).requiresGrad();
    w.setGrad(Tensor::randn({300000}, rng));
    std::vector<float> g = w.grad().toVector();
    double ref = 0;
    for (float v : g) ref += static_cast<double>(v) * v;
    CHECK(clipGradNorm(std::vector<Tensor>{w}, 1e9) == doctest::Approx(std::sqrt(ref)).epsilon(1e-12));
  }
  NamedParameters ps = withGrads();
  CHECK_THROWS_WITH_AS(clipGradNorm(ps, -1.0), doctest::Contains("clipGradNorm: maxNorm -1"), Error);
  CHECK_THROWS_WITH_AS(clipGradNorm(ps, 1.0, 0.0), doctest::Contains("clipGradNorm: normType 0"), Error);
}

TEST_CASE("clipWeights: clamps parameters in place (WGAN)") {
  Tensor w = Tensor::fromVector({-0.5f, 0.005f, 0.02f, -0.01f}).requiresGrad();
  Tensor alias = w;
  clipWeights(NamedParameters{{"critic.weight", w}}, 0.01);
  CHECK(alias.toVector() == std::vector<float>{-0.01f, 0.005f, 0.01f, -0.01f});
  CHECK(w.isLeaf());
  CHECK_THROWS_WITH_AS(clipWeights(std::vector<Tensor>{w}, 0.0),
                       doctest::Contains("clipWeights: bound 0 must be finite and > 0"), Error);
  CHECK_THROWS_WITH_AS(clipWeights(NamedParameters{{"t", Tensor::zeros({2, 2}).transpose(0, 1)}}, 1.0),
                       doctest::Contains("clipWeights: 't' must be a contiguous f32 tensor"), Error);
}
