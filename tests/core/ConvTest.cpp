#include <doctest/doctest.h>

#include <bit>
#include <cstdint>

#include "core/Rng.h"
#include "core/ops/Conv.h"
#include "core/ops/reference/Conv.h"
#include "core/parallel/ParallelFor.h"
#include "tests/core/OpsCheck.h"

using namespace mantissa;
using mantissa::testing::checkClose;
using mantissa::testing::checkGradients;

namespace {

std::string describe(const Shape& x, const Shape& w, Size2d s, Size2d p, Size2d d, int64_t g) {
  return toString(x) + " w" + toString(w) + " s" + s.toString() + " p" + p.toString() + " d" +
         d.toString() + " g" + std::to_string(g);
}

}  // namespace

TEST_CASE("conv: hand-computed values pin PyTorch semantics") {
  // conv2d is cross-correlation (no kernel flip): y[0,0] = 0*1 + 1*2 + 3*3 + 4*4.
  Tensor x = Tensor::arange(9).reshape({1, 1, 3, 3});
  Tensor w = Tensor::fromVector({1, 2, 3, 4}, {1, 1, 2, 2});
  CHECK(conv2d(x, w).toVector() == std::vector<float>{27, 37, 57, 67});
  CHECK(conv2d(x, w, Tensor::fromVector({1}, {1}), {.stride = 2}).toVector() == std::vector<float>{28});
  // convTranspose2d with stride 2 stamps the kernel (unflipped) at 2x the input position.
  Tensor one = Tensor::fromVector({0, 1, 0, 0}, {1, 1, 2, 2});
  std::vector<float> want(16, 0.f);
  want[2] = 1, want[3] = 2, want[6] = 3, want[7] = 4;
  CHECK(convTranspose2d(one, w, Tensor(), {.stride = 2}).toVector() == want);
  // PyTorch's output-size formulas.
  CHECK(conv2dOutputShape({2, 3, 7, 8}, {4, 3, 3, 3}, {.stride = 2, .padding = 1}) == Shape{2, 4, 4, 4});
  CHECK(conv2dOutputShape({1, 4, 10, 10}, {4, 2, 3, 3}, {.dilation = 2, .groups = 2}) == Shape{1, 4, 6, 6});
  CHECK(convTranspose2dOutputShape({1, 4, 4, 5}, {4, 3, 3, 3},
                                   {.stride = 2, .padding = 1, .outputPadding = 1, .groups = 2}) ==
        Shape{1, 6, 8, 10});
}

TEST_CASE("conv: conv2d oneDNN kernels match the reference") {
  Rng rng(31);
  struct Case {
    Shape x, w;
    Conv2dOptions o;
  };
  std::vector<Case> cases = {
      {{2, 3, 7, 9}, {4, 3, 3, 3}, {.padding = 1}},
      {{1, 5, 11, 8}, {6, 5, 3, 3}, {.stride = 2, .padding = 1}},
      {{2, 4, 10, 13}, {3, 4, 2, 5}, {.stride = {3, 2}}},
      {{2, 3, 9, 9}, {5, 3, 3, 3}, {.padding = 2, .dilation = 2}},
      {{1, 3, 9, 11}, {2, 3, 3, 2}, {.padding = {1, 0}, .dilation = {1, 3}}},
      {{2, 4, 6, 7}, {6, 2, 3, 3}, {.padding = 1, .groups = 2}},
      {{1, 6, 5, 5}, {6, 1, 3, 3}, {.padding = 1, .groups = 6}},  // depthwise
      {{3, 8, 4, 4}, {16, 8, 1, 1}, {}},
      {{1, 3, 12, 10}, {4, 3, 5, 5}, {.stride = 2, .padding = {2, 1}}},
      {{1, 2, 6, 6}, {2, 2, 3, 3}, {.stride = 2}},  // the stride skips the last input row
      {{2, 16, 9, 9}, {32, 16, 3, 3}, {.stride = 2, .padding = 1}},  // blocked JIT layouts
      {{2, 32, 8, 8}, {32, 16, 3, 3}, {.padding = 1, .groups = 2}},
  };
  for (const Case& c : cases) {
    CAPTURE(describe(c.x, c.w, c.o.stride, c.o.padding, c.o.dilation, c.o.groups));
    Tensor x = Tensor::randn(c.x, rng), w = Tensor::randn(c.w, rng), b = Tensor::randn({c.w[0]}, rng);
    Tensor y = conv2dForward(x, w, b, c.o);
    checkClose(y, reference::conv2dForward(x, w, b, c.o), "conv2dForward");
    checkClose(conv2dForward(x, w, Tensor(), c.o), reference::conv2dForward(x, w, Tensor(), c.o),
               "conv2dForward without bias");
    Tensor g = Tensor::randn(y.shape(), rng);
    checkClose(conv2dBackwardData(g, w, c.x, c.o), reference::conv2dBackwardData(g, w, c.x, c.o),
               "conv2dBackwardData");
    WeightGrads got = conv2dBackwardWeights(x, g, c.w, c.o, true);
    WeightGrads want = reference::conv2dBackwardWeights(x, g, c.w, c.o, true);
    checkClose(got.weight, want.weight, "conv2dBackwardWeights weight");
    checkClose(got.bias, want.bias, "conv2dBackwardWeights bias");
    WeightGrads noBias = conv2dBackwardWeights(x, g, c.w, c.o, false);
    checkClose(noBias.weight, want.weight, "conv2dBackwardWeights weight without bias");
    CHECK_FALSE(noBias.bias.defined());
  }
}

TEST_CASE("conv: convTranspose2d oneDNN kernels match the reference") {
  Rng rng(32);
  struct Case {
    Shape x, w;
    ConvTranspose2dOptions o;
  };
  std::vector<Case> cases = {
      {{2, 3, 4, 5}, {3, 4, 3, 3}, {}},
      {{1, 4, 5, 4}, {4, 2, 3, 3}, {.stride = 2, .padding = 1, .outputPadding = 1}},
      {{2, 2, 3, 3}, {2, 3, 4, 4}, {.stride = 3, .outputPadding = 2}},  // output padding > padding
      {{1, 4, 5, 5}, {4, 3, 3, 3}, {.stride = 2, .padding = 1, .groups = 2}},
      {{1, 2, 4, 4}, {2, 3, 3, 3}, {.padding = 1, .outputPadding = 1, .dilation = 2}},
      {{2, 3, 3, 5}, {3, 2, 2, 3}, {.stride = {2, 1}, .padding = {0, 1}}},
      {{1, 5, 1, 1}, {5, 4, 5, 5}, {}},  // batch 1, one pixel, 5x5 kernel
      {{2, 16, 7, 7}, {16, 16, 4, 4}, {.stride = 2, .padding = 1}},  // DCGAN-style, blocked JIT
  };
  for (const Case& c : cases) {
    CAPTURE(describe(c.x, c.w, c.o.stride, c.o.padding, c.o.dilation, c.o.groups));
    CAPTURE(c.o.outputPadding.toString());
    Tensor x = Tensor::randn(c.x, rng), w = Tensor::randn(c.w, rng);
    Tensor b = Tensor::randn({c.w[1] * c.o.groups}, rng);
    Tensor y = convTranspose2dForward(x, w, b, c.o);
    checkClose(y, reference::convTranspose2dForward(x, w, b, c.o), "convTranspose2dForward");
    checkClose(convTranspose2dForward(x, w, Tensor(), c.o),
               reference::convTranspose2dForward(x, w, Tensor(), c.o),
               "convTranspose2dForward without bias");
    Tensor g = Tensor::randn(y.shape(), rng);
    checkClose(convTranspose2dBackwardData(g, w, c.x, c.o),
               reference::convTranspose2dBackwardData(g, w, c.x, c.o), "convTranspose2dBackwardData");
    WeightGrads got = convTranspose2dBackwardWeights(x, g, c.w, c.o, true);
    WeightGrads want = reference::convTranspose2dBackwardWeights(x, g, c.w, c.o, true);
    checkClose(got.weight, want.weight, "convTranspose2dBackwardWeights weight");
    checkClose(got.bias, want.bias, "convTranspose2dBackwardWeights bias");
  }
}

TEST_CASE("conv: reference adjointness (independent check of the reference itself)") {
  // <conv(x), g> == <x, conv_backward_data(g)> and <convT(x), g> == <x, convT_backward_data(g)>.
  Rng rng(33);
  Conv2dOptions o{.stride = 2, .padding = 1, .dilation = {1, 2}, .groups = 2};
  Tensor x = Tensor::randn({2, 4, 7, 8}, rng), w = Tensor::randn({6, 2, 3, 3}, rng);
  Tensor y = reference::conv2dForward(x, w, Tensor(), o);
  Tensor g = Tensor::randn(y.shape(), rng);
  auto dot = [](const Tensor& a, const Tensor& b) {
    std::vector<float> va = a.toVector(), vb = b.toVector();
    double s = 0;
    for (size_t i = 0; i < va.size(); ++i) s += double(va[i]) * vb[i];
    return s;
  };
  Tensor gx = reference::conv2dBackwardData(g, w, x.shape(), o);
  CHECK(dot(y, g) == doctest::Approx(dot(x, gx)).epsilon(1e-6));
  ConvTranspose2dOptions t{.stride = 2, .padding = 1, .outputPadding = 1, .groups = 2};
  Tensor wt = Tensor::randn({4, 3, 3, 3}, rng);
  Tensor yt = reference::convTranspose2dForward(x, wt, Tensor(), t);
  Tensor gt = Tensor::randn(yt.shape(), rng);
  Tensor gxt = reference::convTranspose2dBackwardData(gt, wt, x.shape(), t);
  CHECK(dot(yt, gt) == doctest::Approx(dot(x, gxt)).epsilon(1e-6));
  // The weight gradient is the same bilinear form read from the weight's side.
  Tensor gw = reference::conv2dBackwardWeights(x, g, w.shape(), o, false).weight;
  CHECK(dot(y, g) == doctest::Approx(dot(w, gw)).epsilon(1e-6));
}

TEST_CASE("conv: gradients match central differences") {
  Rng rng(34);
  auto param = [&](const Shape& s) { return Tensor::randn(s, rng).requiresGrad(); };
  SUBCASE("conv2d, bias, stride 2, asymmetric padding") {
    Conv2dOptions o{.stride = 2, .padding = {1, 0}};
    checkGradients([o](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], in[2], o); },
                   {param({2, 2, 5, 6}), param({3, 2, 3, 3}), param({3})});
  }
  SUBCASE("conv2d, no bias, dilation and groups") {
    Conv2dOptions o{.padding = 2, .dilation = 2, .groups = 2};
    checkGradients([o](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], Tensor(), o); },
                   {param({1, 4, 5, 5}), param({2, 2, 3, 3})});
  }
  SUBCASE("conv2d, stride 3, 1x1 kernel, only the weight needs a gradient") {
    Conv2dOptions o{.stride = 3};
    Tensor x = Tensor::randn({2, 3, 7, 7}, rng);
    checkGradients([o](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], in[2], o); },
                   {x, param({4, 3, 1, 1}), param({4})});
  }
  SUBCASE("conv2d, only the bias needs a gradient") {
    Tensor x = Tensor::randn({2, 3, 4, 4}, rng), w = Tensor::randn({2, 3, 3, 3}, rng);
    checkGradients([](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], in[2]); },
                   {x, w, param({2})});
  }
  SUBCASE("convTranspose2d, bias, stride 2, output padding") {
    ConvTranspose2dOptions o{.stride = 2, .padding = 1, .outputPadding = 1};
    checkGradients(
        [o](const std::vector<Tensor>& in) { return convTranspose2d(in[0], in[1], in[2], o); },
        {param({2, 3, 3, 4}), param({3, 2, 3, 3}), param({2})});
  }
  SUBCASE("convTranspose2d, no bias, groups and dilation") {
    ConvTranspose2dOptions o{.stride = {1, 2}, .dilation = 2, .groups = 2};
    checkGradients(
        [o](const std::vector<Tensor>& in) { return convTranspose2d(in[0], in[1], Tensor(), o); },
        {param({1, 4, 3, 3}), param({4, 1, 2, 2})});
  }
}

TEST_CASE("conv: bad shapes and options give errors naming the op") {
  Tensor x = Tensor::ones({1, 4, 5, 5});
  CHECK_THROWS_WITH_AS(conv2d(x, Tensor::ones({2, 3, 3, 3})),
                       doctest::Contains("conv2d: weight expects 3 input channels but the input has 4"),
                       Error);
  CHECK_THROWS_WITH_AS(conv2d(Tensor::ones({4, 5, 5}), Tensor::ones({2, 4, 3, 3})),
                       doctest::Contains("conv2d: input must be 4-D"), Error);
  CHECK_THROWS_WITH_AS(conv2d(x, Tensor::ones({3, 4, 3, 3}), Tensor(), {.groups = 3}),
                       doctest::Contains("conv2d: groups 3 do not divide the 4 input channels"), Error);
  CHECK_THROWS_WITH_AS(conv2d(x, Tensor::ones({3, 2, 3, 3}), Tensor(), {.groups = 2}),
                       doctest::Contains("groups 2 do not divide the 3 output channels"), Error);
  CHECK_THROWS_WITH_AS(conv2d(x, Tensor::ones({2, 4, 3, 3}), Tensor::ones({3})),
                       doctest::Contains("conv2d: bias has shape [3], expected [2]"), Error);
  CHECK_THROWS_WITH_AS(conv2d(x, Tensor::ones({2, 4, 7, 7})),
                       doctest::Contains("kernel is larger than the padded input"), Error);
  CHECK_THROWS_WITH_AS(conv2d(x, Tensor::ones({2, 4, 3, 3}), Tensor(), {.stride = 0}),
                       doctest::Contains("stride must be positive"), Error);
  CHECK_THROWS_WITH_AS(convTranspose2d(x, Tensor::ones({4, 2, 3, 3}), Tensor(),
                                       {.stride = 2, .outputPadding = 2}),
                       doctest::Contains("convTranspose2d: outputPadding 2 must be non-negative and "
                                         "smaller than stride or dilation"),
                       Error);
  CHECK_THROWS_WITH_AS(convTranspose2d(x, Tensor::ones({3, 2, 3, 3})),
                       doctest::Contains("convTranspose2d: weight [Cin, Cout/groups, kH, kW] expects 3"),
                       Error);
  CHECK_THROWS_WITH_AS(conv2dBackwardData(Tensor::ones({1, 2, 4, 4}), Tensor::ones({2, 4, 3, 3}),
                                          {1, 4, 5, 5}, {}),
                       doctest::Contains("conv2dBackwardData: gradOut has shape [1, 2, 4, 4], "
                                         "expected [1, 2, 3, 3]"),
                       Error);
}

TEST_CASE("conv: cached primitives follow the thread count") {
  // Conv.cpp keeps each geometry's primitive; oneDNN sizes a primitive's work split (here the
  // minibatch reduction of backward-weights) and scratchpad for the threads present when it is
  // created, so the cache keys on the thread count. Alternate 2, 1, 2 threads on the same shapes:
  // every result must match the reference, and repeated runs at one count must keep their bits.
  Rng rng(71);
  Tensor x = Tensor::randn({32, 16, 14, 14}, rng), g = Tensor::randn({32, 16, 14, 14}, rng);
  const Conv2dOptions o{.padding = 1};
  const Shape ws{16, 16, 3, 3};
  Tensor want = reference::conv2dBackwardWeights(x, g, ws, o, false).weight;
  auto bits = [](const Tensor& t) {
    std::vector<uint32_t> v;
    for (float f : t.toVector<float>()) v.push_back(std::bit_cast<uint32_t>(f));
    return v;
  };
  const int before = numThreads();
  std::vector<std::vector<uint32_t>> runs;
  for (int threads : {2, 1, 2, 1}) {
    CAPTURE(threads);
    setNumThreads(threads);
    Tensor got = conv2dBackwardWeights(x, g, ws, o, false).weight;
    checkClose(got, want, "backward weights");
    checkClose(conv2dForward(x, got, Tensor(), o), reference::conv2dForward(x, got, Tensor(), o),
               "forward");
    runs.push_back(bits(got));
  }
  setNumThreads(before);
  CHECK(runs[0] == runs[2]);
  CHECK(runs[1] == runs[3]);
}
