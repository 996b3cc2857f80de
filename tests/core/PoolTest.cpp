#include <doctest/doctest.h>

#include "core/ops/Pool.h"
#include "core/ops/Reduce.h"
#include "core/ops/reference/Pool.h"
#include "tests/core/OpsCheck.h"

using namespace mantissa;
using mantissa::testing::checkClose;
using mantissa::testing::checkGradients;
using mantissa::testing::distinctValues;

namespace {

std::string describe(const Shape& x, const Pool2dOptions& o) {
  return toString(x) + " k" + o.kernel.toString() + " s" + o.stride.toString() + " p" +
         o.padding.toString() + " d" + o.dilation.toString() + (o.ceilMode ? " ceil" : "") +
         (o.countIncludePad ? "" : " exclude-pad");
}

}  // namespace

TEST_CASE("pool: hand-computed values") {
  Tensor x = Tensor::arange(16).reshape({1, 1, 4, 4});
  CHECK(maxPool2d(x, 2).toVector() == std::vector<float>{5, 7, 13, 15});
  CHECK(avgPool2d(x, 2).toVector() == std::vector<float>{2.5f, 4.5f, 10.5f, 12.5f});
  // 3x3 windows over 3x3 ones padded by 1: the corner window holds 4 real elements.
  Tensor ones = Tensor::ones({1, 1, 3, 3});
  Pool2dOptions o{.kernel = 3, .stride = 1, .padding = 1};
  CHECK(avgPool2d(ones, o).at({0, 0, 0, 0}) == doctest::Approx(4.0 / 9.0));
  o.countIncludePad = false;
  CHECK(avgPool2d(ones, o).at({0, 0, 0, 0}) == doctest::Approx(1.0));
  // Ceil mode: 5 columns, kernel 2 -> 3 windows, the last one holds a single element, and
  // PyTorch divides it by 1 (the extra right margin is not padding).
  Tensor row = Tensor::fromVector({1, 2, 3, 4, 5}, {1, 1, 1, 5});
  Pool2dOptions c{.kernel = {1, 2}, .ceilMode = true};
  CHECK(avgPool2d(row, c).toVector() == std::vector<float>{1.5f, 3.5f, 5.f});
  CHECK(maxPool2d(row, c).toVector() == std::vector<float>{2, 4, 5});
  CHECK(globalAvgPool2d(x).shape() == Shape{1, 1, 1, 1});
  CHECK(globalAvgPool2d(x).item() == doctest::Approx(7.5));
  CHECK(pool2dOutputShape({1, 1, 6, 6}, {.kernel = 3, .stride = 2, .padding = 1, .ceilMode = true}) ==
        Shape{1, 1, 4, 4});
  // Ceil mode: (4 + 2 - 2) / 2 + 1 = 3 windows; the last starts at 4 - 1 = 3, inside the input.
  CHECK(pool2dOutputShape({1, 1, 4, 4}, {.kernel = 2, .stride = 2, .padding = 1, .ceilMode = true}) ==
        Shape{1, 1, 3, 3});
  CHECK(pool2dOutputShape({1, 1, 5, 5}, {.kernel = 2, .stride = 2, .padding = 1, .ceilMode = true}) ==
        Shape{1, 1, 3, 3});
}

TEST_CASE("pool: oneDNN kernels match the reference") {
  Rng rng(41);
  std::vector<std::pair<Shape, Pool2dOptions>> cases = {
      {{2, 3, 8, 8}, {.kernel = 2}},
      {{1, 4, 9, 7}, {.kernel = 3, .stride = 2, .padding = 1}},
      {{2, 2, 7, 9}, {.kernel = 3, .stride = 2, .ceilMode = true}},
      {{1, 3, 6, 6}, {.kernel = 3, .stride = 2, .padding = 1, .ceilMode = true}},
      {{2, 3, 10, 11}, {.kernel = {2, 3}, .stride = {1, 2}, .padding = {1, 0}}},
      {{1, 2, 11, 11}, {.kernel = 5, .stride = 3, .padding = 2, .ceilMode = true}},
      {{3, 16, 13, 13}, {.kernel = 3, .stride = 2}},  // AlexNet-style overlapping windows
  };
  // Forward kernels, then backward kernels driven by an explicit seed gradient.
  for (auto [shape, o] : cases) {
    for (bool includePad : {true, false}) {
      o.countIncludePad = includePad;
      CAPTURE(describe(shape, o));
      Tensor x = distinctValues(shape, rng);
      checkClose(avgPool2d(x, o), reference::avgPool2d(x, o), "avgPool2d forward");
    }
    CAPTURE(describe(shape, o));
    Tensor x = distinctValues(shape, rng);
    checkClose(maxPool2d(x, o), reference::maxPool2d(x, o), "maxPool2d forward");
  }
  for (auto [shape, o] : cases) {
    for (bool includePad : {true, false}) {
      o.countIncludePad = includePad;
      CAPTURE(describe(shape, o));
      Tensor x = distinctValues(shape, rng).requiresGrad();
      Tensor y = avgPool2d(x, o);
      Tensor g = Tensor::randn(y.shape(), rng);
      y.backward({.grad = g});
      checkClose(x.grad(), reference::avgPool2dBackward(shape, g, o), "avgPool2d backward");
    }
    CAPTURE(describe(shape, o));
    Tensor x = distinctValues(shape, rng).requiresGrad();
    Tensor y = maxPool2d(x, o);
    Tensor g = Tensor::randn(y.shape(), rng);
    y.backward({.grad = g});
    checkClose(x.grad(), reference::maxPool2dBackward(x.detach(), g, o), "maxPool2d backward");
  }
  SUBCASE("dilated max pooling") {
    Pool2dOptions o{.kernel = 3, .stride = 1, .padding = 1, .dilation = 2};
    Tensor x = distinctValues({2, 3, 9, 8}, rng).requiresGrad();
    Tensor y = maxPool2d(x, o);
    checkClose(y, reference::maxPool2d(x.detach(), o), "dilated maxPool2d forward");
    Tensor g = Tensor::randn(y.shape(), rng);
    y.backward({.grad = g});
    checkClose(x.grad(), reference::maxPool2dBackward(x.detach(), g, o), "dilated maxPool2d backward");
  }
  SUBCASE("global average pooling equals the mean over H and W") {
    Tensor x = Tensor::randn({3, 5, 7, 6}, rng);
    checkClose(globalAvgPool2d(x), mean(x, {2, 3}, true), "globalAvgPool2d");
  }
}

TEST_CASE("pool: gradients match central differences") {
  Rng rng(42);
  // Distinct values 0.05 apart and a step of 1e-3: no window's maximum changes under the step.
  auto input = [&](const Shape& s) { return distinctValues(s, rng).requiresGrad(); };
  autograd::GradCheckOptions fine{.eps = 1e-3, .atol = 2e-3, .rtol = 1e-2, .maxElements = 64};
  std::vector<Pool2dOptions> opts = {
      {.kernel = 2},
      {.kernel = 3, .stride = 2, .padding = 1},
      {.kernel = 3, .stride = 2, .padding = 1, .ceilMode = true},
      {.kernel = {2, 3}, .stride = {2, 1}, .ceilMode = true, .countIncludePad = false},
  };
  for (const Pool2dOptions& o : opts) {
    CAPTURE(describe({1, 2, 5, 6}, o));
    checkGradients([o](const std::vector<Tensor>& in) { return maxPool2d(in[0], o); },
                   {input({1, 2, 5, 6})}, fine);
    checkGradients([o](const std::vector<Tensor>& in) { return avgPool2d(in[0], o); },
                   {input({1, 2, 5, 6})}, fine);
  }
  checkGradients([](const std::vector<Tensor>& in) { return globalAvgPool2d(in[0]); },
                 {input({2, 3, 3, 4})}, fine);
}

TEST_CASE("pool: bad shapes and options give errors naming the op") {
  Tensor x = Tensor::ones({1, 2, 5, 5});
  CHECK_THROWS_WITH_AS(maxPool2d(Tensor::ones({2, 5, 5}), 2),
                       doctest::Contains("maxPool2d: input must be 4-D"), Error);
  CHECK_THROWS_WITH_AS(maxPool2d(x, Pool2dOptions{.kernel = 3, .padding = 2}),
                       doctest::Contains("maxPool2d: padding must be between 0 and half the kernel"),
                       Error);
  CHECK_THROWS_WITH_AS(avgPool2d(x, Pool2dOptions{}), doctest::Contains("avgPool2d: kernel must be positive"),
                       Error);
  CHECK_THROWS_WITH_AS(avgPool2d(x, Pool2dOptions{.kernel = 2, .dilation = 2}),
                       doctest::Contains("avgPool2d: dilation is not supported"), Error);
  CHECK_THROWS_WITH_AS(maxPool2d(x, 6), doctest::Contains("window is larger than the padded input"),
                       Error);
}
