#include <doctest/doctest.h>

#include "core/ops/Linalg.h"
#include "core/ops/reference/Linalg.h"
#include "tests/core/OpsCheck.h"

using namespace mantissa;
using mantissa::testing::checkClose;
using mantissa::testing::checkGradients;

TEST_CASE("linalg: matmul hand-computed values") {
  Tensor a = Tensor::fromVector({1, 2, 3, 4}, {2, 2});
  Tensor b = Tensor::fromVector({5, 6, 7, 8}, {2, 2});
  CHECK(matmul(a, b).toVector() == std::vector<float>{19, 22, 43, 50});
  CHECK(matmul(a, b.transpose(0, 1)).toVector() == std::vector<float>{17, 23, 39, 53});
  // linear: x [1, 2] · w [3, 2]ᵀ + b
  Tensor w = Tensor::fromVector({1, 0, 0, 1, 1, 1}, {3, 2});
  Tensor y = linear(Tensor::fromVector({2, 3}, {1, 2}), w, Tensor::fromVector({10, 20, 30}));
  CHECK(y.toVector() == std::vector<float>{12, 23, 35});
}

TEST_CASE("linalg: oneDNN GEMM kernels match the reference") {
  Rng rng(21);
  struct Case {
    Shape a, b;
  };
  std::vector<Case> cases = {{{1, 1}, {1, 1}},       {{5, 7}, {7, 3}},     {{64, 33}, {33, 17}},
                             {{3, 4, 5}, {3, 5, 6}}, {{2, 3, 4}, {4, 5}},  {{1, 130}, {130, 1}}};
  for (const Case& c : cases) {
    CAPTURE(toString(c.a));
    CAPTURE(toString(c.b));
    Tensor a = Tensor::randn(c.a, rng), b = Tensor::randn(c.b, rng);
    checkClose(matmul(a, b), reference::matmul(a, b), "matmul");
  }
  SUBCASE("transposed and strided views") {
    Tensor a = Tensor::randn({9, 6}, rng), b = Tensor::randn({7, 9}, rng);
    Tensor at = a.transpose(0, 1), bt = b.transpose(0, 1);  // [6, 9] and [9, 7] views
    checkClose(gemm(at, bt), reference::matmul(at, bt), "gemm of transposed views");
    Tensor s = Tensor::randn({12, 9}, rng).slice(0, 0, 12, 2);  // rows with a step: copied
    checkClose(gemm(s, bt), reference::matmul(s, bt), "gemm of a stepped slice");
    Tensor batch = Tensor::randn({3, 5, 4}, rng), other = Tensor::randn({3, 5, 2}, rng);
    Tensor bT = batch.transpose(1, 2);  // [3, 4, 5] batched transposed view
    checkClose(gemm(bT, other), reference::matmul(bT, other), "batched transposed gemm");
  }
  SUBCASE("linear forward, backward data and backward weights") {
    for (auto [n, in, out] : std::vector<std::array<int64_t, 3>>{{1, 1, 1}, {7, 13, 5}, {32, 64, 10}}) {
      CAPTURE(n);
      CAPTURE(in);
      Tensor x = Tensor::randn({n, in}, rng), w = Tensor::randn({out, in}, rng);
      Tensor b = Tensor::randn({out}, rng), g = Tensor::randn({n, out}, rng);
      checkClose(linearForward(x, w, b), reference::linearForward(x, w, b), "linearForward");
      checkClose(linearForward(x, w, Tensor()), reference::linearForward(x, w, Tensor()),
                 "linearForward without bias");
      checkClose(linearBackwardData(g, w), reference::linearBackwardData(g, w), "linearBackwardData");
      WeightGrads got = linearBackwardWeights(x, g, true);
      WeightGrads want = reference::linearBackwardWeights(x, g, true);
      checkClose(got.weight, want.weight, "linearBackwardWeights weight");
      checkClose(got.bias, want.bias, "linearBackwardWeights bias");
      CHECK_FALSE(linearBackwardWeights(x, g, false).bias.defined());
    }
  }
}

TEST_CASE("linalg: gradients match central differences") {
  Rng rng(22);
  auto param = [&](const Shape& s) { return Tensor::randn(s, rng).requiresGrad(); };
  using testing::Fn;
  SUBCASE("matmul 2-D") {
    checkGradients([](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); },
                   {param({3, 4}), param({4, 5})});
  }
  SUBCASE("matmul batched") {
    checkGradients([](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); },
                   {param({2, 3, 4}), param({2, 4, 3})});
  }
  SUBCASE("matmul with a shared right operand") {
    checkGradients([](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); },
                   {param({2, 3, 4}), param({4, 5})});
  }
  SUBCASE("matmul of a transposed operand") {
    checkGradients([](const std::vector<Tensor>& in) { return matmul(in[0].transpose(0, 1), in[1]); },
                   {param({4, 3}), param({4, 2})});
  }
  SUBCASE("linear with bias") {
    checkGradients([](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); },
                   {param({5, 4}), param({3, 4}), param({3})});
  }
  SUBCASE("linear without bias, 3-D input") {
    checkGradients([](const std::vector<Tensor>& in) { return linear(in[0], in[1]); },
                   {param({2, 3, 4}), param({6, 4})});
  }
  SUBCASE("linear: only the bias needs a gradient") {
    Tensor x = Tensor::randn({4, 3}, rng), w = Tensor::randn({2, 3}, rng);
    checkGradients([](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); },
                   {x, w, param({2})});
  }
}

TEST_CASE("linalg: bad shapes give errors naming the op") {
  Tensor a = Tensor::ones({2, 3});
  CHECK_THROWS_WITH_AS(matmul(a, Tensor::ones({4, 2})),
                       doctest::Contains("matmul: inner sizes differ (3 vs 4)"), Error);
  CHECK_THROWS_WITH_AS(matmul(Tensor::ones({3}), a), doctest::Contains("matmul: supported ranks"),
                       Error);
  CHECK_THROWS_WITH_AS(matmul(Tensor::ones({2, 2, 3}), Tensor::ones({3, 3, 1})),
                       doctest::Contains("batch sizes differ"), Error);
  CHECK_THROWS_WITH_AS(linear(a, Tensor::ones({4, 2})),
                       doctest::Contains("linear: x has 3 features but w expects 2"), Error);
  CHECK_THROWS_WITH_AS(linear(a, Tensor::ones({4, 3}), Tensor::ones({5})),
                       doctest::Contains("linear: bias must be f32 [4]"), Error);
  CHECK_THROWS_WITH_AS(matmul(a.to(DType::F64), a.transpose(0, 1)),
                       doctest::Contains("operands must be f32"), Error);
}
