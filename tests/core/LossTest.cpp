#include <doctest/doctest.h>

#include <cmath>

#include "core/Rng.h"
#include "core/autograd/GradCheck.h"
#include "core/ops/Elementwise.h"
#include "core/ops/Loss.h"
#include "core/ops/Reduce.h"

using namespace mantissa;

namespace {
using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

void checkGrad(const Fn& fn, const std::vector<Tensor>& in, const char* name,
               autograd::GradCheckOptions opts = {}) {
  CAPTURE(name);
  auto r = autograd::gradCheck(fn, in, opts);
  CHECK_MESSAGE(r.ok, r.message);
}
}  // namespace

TEST_CASE("softmax: values against hand-computed numbers") {
  // softmax([1, 2, 3]) = e^k / (e + e^2 + e^3) = [0.0900306, 0.2447285, 0.6652410].
  Tensor x = Tensor::fromVector({1, 2, 3});
  std::vector<float> p = softmax(x).toVector();
  CHECK(p[0] == doctest::Approx(0.09003057317));
  CHECK(p[1] == doctest::Approx(0.24472847105));
  CHECK(p[2] == doctest::Approx(0.66524095577));
  // log(sum e^k) = 3.40760596444.
  std::vector<float> lp = logSoftmax(x).toVector();
  CHECK(lp[0] == doctest::Approx(1 - 3.40760596444));
  CHECK(lp[2] == doctest::Approx(3 - 3.40760596444));

  SUBCASE("shift invariance: huge logits do not overflow") {
    std::vector<float> q = softmax(Tensor::fromVector({1001, 1002, 1003})).toVector();
    CHECK(q[2] == doctest::Approx(0.66524095577));
    std::vector<float> lq = logSoftmax(Tensor::fromVector({-1000, 0})).toVector();
    CHECK(lq[0] == doctest::Approx(-1000.0));  // log of a probability that underflows in f32
    CHECK(lq[1] == 0.f);
  }
  SUBCASE("along a middle axis of a rank-3 tensor") {
    // [2, 3, 2]: softmax over axis 1 of column (0, 0) is softmax([1, 2, 3]).
    Tensor t = Tensor::fromVector({1, 0, 2, 0, 3, 0, 0, 5, 0, 5, 0, 5}, {2, 3, 2});
    Tensor s = softmax(t, 1);
    CHECK(s.at({0, 2, 0}) == doctest::Approx(0.66524095577));
    CHECK(s.at({0, 1, 1}) == doctest::Approx(1.0 / 3.0));
    CHECK(s.at({1, 0, 1}) == doctest::Approx(1.0 / 3.0));
    CHECK(sum(s, {1}).toVector() == std::vector<float>{1, 1, 1, 1});
  }
  CHECK_THROWS_WITH_AS(softmax(x, 1), doctest::Contains("softmax: axis 1 out of range"), Error);
  CHECK_THROWS_WITH_AS(logSoftmax(Tensor::fromInts({1})),
                       doctest::Contains("logSoftmax: input must be f32"), Error);
}

TEST_CASE("crossEntropy: values against hand-computed numbers") {
  // Row 0: logits [1, 2, 3], lse = 3.40760596444; row 1: logits [0, 0, 0], lse = log 3.
  Tensor logits = Tensor::fromVector({1, 2, 3, 0, 0, 0}, {2, 3});
  Tensor labels = Tensor::fromInts({2, 0});
  const double l0 = 3.40760596444 - 3, l1 = std::log(3.0);
  SUBCASE("reductions") {
    Tensor none = crossEntropy(logits, labels, {.reduction = Reduction::None});
    CHECK(none.shape() == Shape{2});
    CHECK(none.toVector()[0] == doctest::Approx(l0));
    CHECK(none.toVector()[1] == doctest::Approx(l1));
    Tensor s = crossEntropy(logits, labels, {.reduction = Reduction::Sum});
    CHECK(s.shape() == Shape{});
    CHECK(s.item() == doctest::Approx(l0 + l1));
    CHECK(crossEntropy(logits, labels).item() == doctest::Approx((l0 + l1) / 2));
  }
  SUBCASE("label smoothing") {
    // -sum q log p with q = 0.9 onehot + 0.1/3: lse - 0.9 x_y - (0.1/3) sum x.
    Tensor v = crossEntropy(logits, labels, {.reduction = Reduction::None, .labelSmoothing = 0.1f});
    CHECK(v.toVector()[0] == doctest::Approx(3.40760596444 - 0.9 * 3 - 0.1 / 3 * 6));
    CHECK(v.toVector()[1] == doctest::Approx(l1));  // uniform logits: any target costs log 3
    Tensor full = crossEntropy(logits, labels, {.reduction = Reduction::None, .labelSmoothing = 1.f});
    CHECK(full.toVector()[0] == doctest::Approx(3.40760596444 - 2.0));
  }
  SUBCASE("gradient is (softmax - onehot) / N") {
    Tensor x = logits.detach().clone().requiresGrad();
    crossEntropy(x, labels).backward();
    std::vector<float> g = x.grad().toVector();
    CHECK(g[0] == doctest::Approx(0.09003057317 / 2));
    CHECK(g[1] == doctest::Approx(0.24472847105 / 2));
    CHECK(g[2] == doctest::Approx((0.66524095577 - 1) / 2));
    CHECK(g[3] == doctest::Approx((1.0 / 3 - 1) / 2));
    CHECK(g[4] == doctest::Approx(1.0 / 6));
  }
  SUBCASE("huge logits stay finite") {
    Tensor big = Tensor::fromVector({1000, -1000, 0}, {1, 3});
    CHECK(crossEntropy(big, Tensor::fromInts({1}, {1})).item() == doctest::Approx(2000.0));
    CHECK(crossEntropy(big, Tensor::fromInts({0}, {1})).item() == 0.f);
  }
  SUBCASE("i32 labels") {
    Tensor l32 = Tensor::fromInts({2, 0}).to(DType::I32);
    CHECK(crossEntropy(logits, l32).item() == doctest::Approx((l0 + l1) / 2));
  }
}

TEST_CASE("crossEntropy: errors name the problem") {
  Tensor logits = Tensor::zeros({3, 4});
  CHECK_THROWS_WITH_AS(crossEntropy(logits, Tensor::fromInts({0, 4, 1})),
                       doctest::Contains("crossEntropy: label 4 at index 1 is out of range [0, 4)"),
                       Error);
  CHECK_THROWS_WITH_AS(crossEntropy(logits, Tensor::fromInts({0, 1, -1})),
                       doctest::Contains("crossEntropy: label -1 at index 2 is out of range [0, 4)"),
                       Error);
  CHECK_THROWS_WITH_AS(crossEntropy(logits, Tensor::fromInts({0, 1})),
                       doctest::Contains("crossEntropy: labels of shape [2] for logits of shape [3, 4]"),
                       Error);
  CHECK_THROWS_WITH_AS(crossEntropy(logits, Tensor::zeros({3})),
                       doctest::Contains("crossEntropy: labels must be i64"), Error);
  CHECK_THROWS_WITH_AS(crossEntropy(Tensor::zeros({4}), Tensor::fromInts({0})),
                       doctest::Contains("crossEntropy: logits must be [N, C], got shape [4]"),
                       Error);
  CHECK_THROWS_WITH_AS(crossEntropy(logits, Tensor::fromInts({0, 1, 2}), {.labelSmoothing = 1.5f}),
                       doctest::Contains("crossEntropy: labelSmoothing = 1.5 outside [0, 1]"), Error);
  CHECK_THROWS_WITH_AS(crossEntropy(Tensor::zeros({0, 4}), Tensor::fromInts({}, {0})),
                       doctest::Contains("crossEntropy: mean reduction over an empty input"), Error);
}

TEST_CASE("binaryCrossEntropyWithLogits and mseLoss: values against hand-computed numbers") {
  // -log sigmoid(2) = log(1 + e^-2) = 0.126928011;
  // x = -3, t = 0.25: -(0.25 log s(-3) + 0.75 log(1 - s(-3))) = 0.798587352.
  Tensor x = Tensor::fromVector({2, -3, 100, -100});
  Tensor t = Tensor::fromVector({1, 0.25f, 0, 0});
  Tensor none = binaryCrossEntropyWithLogits(x, t, Reduction::None);
  std::vector<float> v = none.toVector();
  CHECK(v[0] == doctest::Approx(0.126928011));
  CHECK(v[1] == doctest::Approx(0.798587352));
  CHECK(v[2] == doctest::Approx(100.0));  // naive log(1 - sigmoid(100)) would be -inf
  CHECK(v[3] == doctest::Approx(0.0));
  CHECK(binaryCrossEntropyWithLogits(x, t, Reduction::Sum).item() ==
        doctest::Approx(0.126928011 + 0.798587352 + 100));
  CHECK(binaryCrossEntropyWithLogits(x, t).item() ==
        doctest::Approx((0.126928011 + 0.798587352 + 100) / 4));

  Tensor a = Tensor::fromVector({1, 2, 3}, {3, 1}), b = Tensor::fromVector({1, 0, 5}, {3, 1});
  CHECK(mseLoss(a, b, Reduction::None).toVector() == std::vector<float>{0, 4, 4});
  CHECK(mseLoss(a, b, Reduction::Sum).item() == 8.f);
  CHECK(mseLoss(a, b).item() == doctest::Approx(8.0 / 3));
  // d/da mean((a-b)^2) = 2 (a - b) / 3.
  Tensor ag = a.detach().clone().requiresGrad();
  mseLoss(ag, b).backward();
  CHECK(ag.grad().toVector()[1] == doctest::Approx(4.0 / 3));
  CHECK(ag.grad().toVector()[2] == doctest::Approx(-4.0 / 3));

  CHECK_THROWS_WITH_AS(mseLoss(a, Tensor::zeros({3})),
                       doctest::Contains("mseLoss: inputs of shapes [3, 1] and [3] differ"), Error);
  CHECK_THROWS_WITH_AS(binaryCrossEntropyWithLogits(x, Tensor::zeros({2})),
                       doctest::Contains("binaryCrossEntropyWithLogits: logits of shape [4] and "
                                         "targets of shape [2] differ"),
                       Error);
}

TEST_CASE("losses: gradients match central differences") {
  Rng rng(31);
  Tensor logits = Tensor::randn({5, 4}, rng, 0.f, 2.f).requiresGrad();
  Tensor labels = Tensor::fromInts({3, 0, 1, 1, 2});
  for (Reduction red : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
    for (float smoothing : {0.f, 0.2f}) {
      CAPTURE(static_cast<int>(red));
      CAPTURE(smoothing);
      checkGrad([red, smoothing, labels](const std::vector<Tensor>& in) {
                  return crossEntropy(in[0], labels, {.reduction = red, .labelSmoothing = smoothing});
                },
                {logits}, "crossEntropy");
    }
  }

  Tensor x = Tensor::randn({3, 4}, rng, 0.f, 2.f).requiresGrad();
  Tensor target = Tensor::rand({3, 4}, rng).requiresGrad();
  Tensor other = Tensor::randn({3, 4}, rng).requiresGrad();
  for (Reduction red : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
    CAPTURE(static_cast<int>(red));
    checkGrad([red](const std::vector<Tensor>& in) {
                return binaryCrossEntropyWithLogits(in[0], in[1], red);
              },
              {x, target}, "bce with logits");
    checkGrad([red](const std::vector<Tensor>& in) { return mseLoss(in[0], in[1], red); },
              {x, other}, "mse");
  }
  // Only one side needing a gradient.
  checkGrad([](const std::vector<Tensor>& in) { return mseLoss(in[0], in[1]); },
            {x, other.detach()}, "mse, first input only");
  checkGrad([](const std::vector<Tensor>& in) { return mseLoss(in[1], in[0]); },
            {x, other.detach()}, "mse, second input only");

  Tensor t3 = Tensor::randn({2, 3, 4}, rng).requiresGrad();
  for (int64_t axis : {0, 1, -1}) {
    CAPTURE(axis);
    checkGrad([axis](const std::vector<Tensor>& in) { return softmax(in[0], axis); }, {t3}, "softmax");
    checkGrad([axis](const std::vector<Tensor>& in) { return logSoftmax(in[0], axis); }, {t3},
              "logSoftmax");
  }
  // Composition: crossEntropy equals -mean(logSoftmax picked at the labels).
  {
    Tensor ls = logSoftmax(logits.detach(), 1);
    double acc = 0;
    std::vector<int64_t> y = labels.toVector<int64_t>();
    for (int64_t i = 0; i < 5; ++i) acc -= ls.at({i, y[i]});
    CHECK(crossEntropy(logits.detach(), labels).item() == doctest::Approx(acc / 5).epsilon(1e-6));
  }
}

TEST_CASE("crossEntropy: large batch in parallel matches a naive double loop") {
  Rng rng(8);
  const int64_t n = 2048, c = 37;
  Tensor logits = Tensor::randn({n, c}, rng, 0.f, 3.f);
  std::vector<int64_t> y(n);
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<int64_t>(rng.uniformInt(c));
  Tensor labels = Tensor::fromInts(y);
  std::vector<float> x = logits.toVector();
  double ref = 0;
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (int64_t k = 0; k < c; ++k) s += std::exp(static_cast<double>(x[i * c + k]));
    ref += std::log(s) - x[i * c + y[i]];
  }
  CHECK(crossEntropy(logits, labels, {.reduction = Reduction::Sum}).item() ==
        doctest::Approx(ref).epsilon(1e-6));
}
