#include <doctest/doctest.h>

#include <cmath>

#include "core/Rng.h"
#include "layers/LocalResponseNorm.h"
#include "tests/layers/LayerTestUtil.h"

using namespace mantissa;
namespace nn = mantissa::nn;
using mantissa::testing::checkModuleGrads;
using mantissa::testing::maxAbsDiff;

TEST_CASE("LocalResponseNorm: values follow PyTorch's formula (alpha divided by size)") {
  Rng rng(1);
  Tensor x = Tensor::randn({2, 7, 3, 2}, rng, 0.f, 2.f);
  struct Case {
    int64_t size;
    nn::LocalResponseNormOptions o;
  };
  for (const Case& c : {Case{5, {}}, Case{3, {.alpha = 5e-2, .beta = 0.5, .k = 2.0}},
                        Case{5, {.alpha = 5e-4, .beta = 0.75, .k = 2.0}}}) {
    CAPTURE(c.size);
    nn::LocalResponseNorm lrn(c.size, c.o);
    Tensor y = lrn.forward(x);
    Tensor ref = Tensor::empty(x.shape());
    float* pr = ref.data<float>();
    const int64_t C = 7, half = c.size / 2;
    for (int64_t n = 0; n < 2; ++n)
      for (int64_t ch = 0; ch < C; ++ch)
        for (int64_t i = 0; i < 3; ++i)
          for (int64_t j = 0; j < 2; ++j) {
            double sq = 0;
            for (int64_t d = std::max<int64_t>(0, ch - half); d <= std::min(C - 1, ch + half); ++d)
              sq += std::pow(x.at({n, d, i, j}), 2);
            *pr++ = static_cast<float>(x.at({n, ch, i, j}) /
                                       std::pow(c.o.k + c.o.alpha / c.size * sq, c.o.beta));
          }
    CHECK(maxAbsDiff(y, ref) < 1e-5);
  }
}

TEST_CASE("LocalResponseNorm: defaults, description, errors and gradients") {
  Rng rng(2);
  nn::LocalResponseNorm lrn(5, {.alpha = 0.1, .beta = 0.75, .k = 2.0});
  CHECK(lrn.extraRepr() == "5, alpha=0.1, beta=0.75, k=2");
  CHECK(nn::LocalResponseNorm(3).extraRepr() == "3, alpha=0.0001, beta=0.75, k=1");
  CHECK_THROWS_WITH_AS(nn::LocalResponseNorm(4), doctest::Contains("size 4 must be odd"), Error);
  // A large alpha makes the normalisation (and its gradient) matter.
  auto r = checkModuleGrads(lrn, Tensor::randn({2, 6, 2, 3}, rng));
  CHECK_MESSAGE(r.ok, r.message);
}
