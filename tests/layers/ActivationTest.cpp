#include <doctest/doctest.h>

#include <cmath>

#include "core/Rng.h"
#include "layers/Flatten.h"
#include "layers/LeakyReLU.h"
#include "layers/ReLU.h"
#include "layers/Sigmoid.h"
#include "layers/Tanh.h"
#include "tests/layers/LayerTestUtil.h"

using namespace mantissa;
namespace nn = mantissa::nn;
using mantissa::testing::checkModuleGrads;

namespace {

// Values at least 0.05 away from 0 so a ±0.01 step never crosses the kink of ReLU/LeakyReLU.
Tensor awayFromZero(const Shape& s, Rng& rng) {
  Tensor t = Tensor::randn(s, rng);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] += p[i] >= 0 ? 0.05f : -0.05f;
  return t;
}

template <class F>
void checkValues(nn::Module& m, const Tensor& x, F ref) {
  std::vector<float> vx = x.toVector(), vy = m.forward(x).toVector();
  for (size_t i = 0; i < vx.size(); ++i) CHECK(vy[i] == doctest::Approx(ref(vx[i])).epsilon(1e-6));
}

}  // namespace

TEST_CASE("Activations: values and gradients") {
  Rng rng(1);
  Tensor x = awayFromZero({3, 4, 2}, rng);
  SUBCASE("ReLU") {
    nn::ReLU m;
    checkValues(m, x, [](double v) { return v > 0 ? v : 0.0; });
    auto r = checkModuleGrads(m, x);
    CHECK_MESSAGE(r.ok, r.message);
  }
  SUBCASE("LeakyReLU(0.2)") {
    nn::LeakyReLU m(0.2f);
    CHECK(m.extraRepr() == "negative_slope=0.2");
    checkValues(m, x, [](double v) { return v > 0 ? v : 0.2 * v; });
    auto r = checkModuleGrads(m, x);
    CHECK_MESSAGE(r.ok, r.message);
    CHECK(nn::LeakyReLU().negativeSlope() == 0.01f);  // PyTorch's default
  }
  SUBCASE("Tanh") {
    nn::Tanh m;
    checkValues(m, x, [](double v) { return std::tanh(v); });
    auto r = checkModuleGrads(m, x);
    CHECK_MESSAGE(r.ok, r.message);
  }
  SUBCASE("Sigmoid") {
    nn::Sigmoid m;
    checkValues(m, x, [](double v) { return 1 / (1 + std::exp(-v)); });
    auto r = checkModuleGrads(m, x);
    CHECK_MESSAGE(r.ok, r.message);
  }
}

TEST_CASE("Flatten: PyTorch start/end dims and gradient") {
  Rng rng(2);
  Tensor x = Tensor::randn({2, 3, 4, 5}, rng);
  nn::Flatten all;
  CHECK(all.forward(x).shape() == Shape{2, 60});
  CHECK(all.forward(x).toVector() == x.toVector());
  CHECK(nn::Flatten(1, 2).forward(x).shape() == Shape{2, 12, 5});
  CHECK(nn::Flatten(0, -1).forward(x).shape() == Shape{120});
  CHECK(all.extraRepr() == "start_dim=1, end_dim=-1");
  CHECK_THROWS_WITH_AS(nn::Flatten(2, 1).forward(x), doctest::Contains("Flatten: start_dim 2"),
                       Error);
  auto r = checkModuleGrads(all, x);
  CHECK_MESSAGE(r.ok, r.message);
}
