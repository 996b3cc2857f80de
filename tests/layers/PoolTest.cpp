#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/Rng.h"
#include "layers/AdaptiveAvgPool2d.h"
#include "layers/AvgPool2d.h"
#include "layers/MaxPool2d.h"
#include "tests/layers/LayerTestUtil.h"

using namespace mantissa;
namespace nn = mantissa::nn;
using mantissa::testing::checkModuleGrads;
using mantissa::testing::maxAbsDiff;

namespace {

// Distinct values 0.1 apart in shuffled order: no ties, and a ±0.01 perturbation never changes
// which element of a window is the maximum.
Tensor distinct(const Shape& s, Rng& rng) {
  std::vector<float> v(static_cast<size_t>(numelOf(s)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = 0.1f * static_cast<float>(i) - 1.f;
  for (size_t i = v.size() - 1; i > 0; --i) std::swap(v[i], v[rng.uniformInt(i + 1)]);
  return Tensor::fromVector(v, s);
}

// Window loops over the PyTorch definitions (floor mode). `avg` selects average pooling with
// the divisor counting padded positions or not.
Tensor naivePool(const Tensor& x, Size2d k, Size2d s, Size2d p, bool avg, bool countPad) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t OH = (H + 2 * p.h - k.h) / s.h + 1, OW = (W + 2 * p.w - k.w) / s.w + 1;
  Tensor y = Tensor::empty({N, C, OH, OW});
  float* py = y.data<float>();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double best = -std::numeric_limits<double>::infinity(), sum = 0;
          int64_t count = 0, padded = 0;
          for (int64_t i = 0; i < k.h; ++i)
            for (int64_t j = 0; j < k.w; ++j) {
              const int64_t ih = oh * s.h - p.h + i, iw = ow * s.w - p.w + j;
              if (ih < 0 || ih >= H || iw < 0 || iw >= W) {
                ++padded;
                continue;
              }
              const double v = x.at({n, c, ih, iw});
              best = std::max(best, v);
              sum += v;
              ++count;
            }
          *py++ = static_cast<float>(avg ? sum / double(countPad ? count + padded : count) : best);
        }
  return y;
}

}  // namespace

TEST_CASE("MaxPool2d: overlapping windows match a naive loop; gradient goes to the maximum") {
  Rng rng(1);
  Tensor x = distinct({2, 3, 7, 6}, rng);
  SUBCASE("AlexNet overlapping pooling, kernel 3 stride 2") {
    nn::MaxPool2d pool(3, {.stride = 2});
    CHECK(pool.extraRepr() == "kernel=3, stride=2");
    Tensor y = pool.forward(x);
    CHECK(y.shape() == Shape{2, 3, 3, 2});
    CHECK(maxAbsDiff(y, naivePool(x, 3, 2, 0, false, false)) == 0);
    auto r = checkModuleGrads(pool, x);
    CHECK_MESSAGE(r.ok, r.message);
  }
  SUBCASE("ResNet stem, kernel 3 stride 2 padding 1") {
    nn::MaxPool2d pool(3, {.stride = 2, .padding = 1});
    CHECK(maxAbsDiff(pool.forward(x), naivePool(x, 3, 2, 1, false, false)) == 0);
    auto r = checkModuleGrads(pool, x);
    CHECK_MESSAGE(r.ok, r.message);
  }
  SUBCASE("stride defaults to the kernel") {
    nn::MaxPool2d pool(2);
    CHECK(pool.poolOptions().stride == Size2d(2));
    CHECK(maxAbsDiff(pool.forward(x), naivePool(x, 2, 2, 0, false, false)) == 0);
  }
  CHECK_THROWS_WITH_AS(nn::MaxPool2d(2).forward(Tensor::zeros({3, 4})),
                       doctest::Contains("MaxPool2d: input must be [N, C, H, W]"), Error);
}

TEST_CASE("AvgPool2d: divisor rules match a naive loop; gradients") {
  Rng rng(2);
  Tensor x = Tensor::randn({2, 2, 5, 6}, rng);
  SUBCASE("kernel 2") {
    nn::AvgPool2d pool(2);
    CHECK(maxAbsDiff(pool.forward(x), naivePool(x, 2, 2, 0, true, true)) < 1e-6);
    auto r = checkModuleGrads(pool, x);
    CHECK_MESSAGE(r.ok, r.message);
  }
  SUBCASE("padding counted (PyTorch default) and not counted") {
    nn::AvgPool2d with(3, {.stride = 2, .padding = 1});
    nn::AvgPool2d without(3, {.stride = 2, .padding = 1, .countIncludePad = false});
    CHECK(maxAbsDiff(with.forward(x), naivePool(x, 3, 2, 1, true, true)) < 1e-6);
    CHECK(maxAbsDiff(without.forward(x), naivePool(x, 3, 2, 1, true, false)) < 1e-6);
    CHECK(without.extraRepr() == "kernel=3, stride=2, padding=1, count_include_pad=false");
    auto r = checkModuleGrads(without, x);
    CHECK_MESSAGE(r.ok, r.message);
  }
}

TEST_CASE("AdaptiveAvgPool2d: global mean and divisible output sizes") {
  Rng rng(3);
  Tensor x = Tensor::randn({2, 3, 4, 6}, rng);
  nn::AdaptiveAvgPool2d global;
  Tensor y = global.forward(x);
  CHECK(y.shape() == Shape{2, 3, 1, 1});
  double m = 0;
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = 0; j < 6; ++j) m += x.at({1, 2, i, j});
  CHECK(y.at({1, 2, 0, 0}) == doctest::Approx(m / 24).epsilon(1e-5));
  auto r = checkModuleGrads(global, x);
  CHECK_MESSAGE(r.ok, r.message);

  nn::AdaptiveAvgPool2d two({2, 3});
  CHECK(maxAbsDiff(two.forward(x), naivePool(x, {2, 2}, {2, 2}, 0, true, true)) < 1e-6);
  CHECK(two.extraRepr() == "output_size=(2, 3)");
  CHECK_THROWS_WITH_AS(nn::AdaptiveAvgPool2d(3).forward(x),
                       doctest::Contains("AdaptiveAvgPool2d(3): input 4x6 is not a multiple"),
                       Error);
}
