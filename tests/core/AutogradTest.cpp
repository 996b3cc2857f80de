#include <doctest/doctest.h>

#include <cmath>

#include "core/Rng.h"
#include "core/autograd/Autograd.h"
#include "core/autograd/GradCheck.h"
#include "core/ops/Elementwise.h"
#include "core/ops/Reduce.h"

using namespace mantissa;

TEST_CASE("autograd: gradients accumulate across backward calls and shared subgraphs") {
  Tensor x = Tensor::fromVector({1.f, 2.f, 3.f}).requiresGrad();
  Tensor y = mul(x, x);          // used twice below: a shared subgraph
  Tensor z = add(sum(y), sum(mul(y, 2.f)));  // d/dx = 3 * 2x
  z.backward();
  CHECK(x.grad().toVector() == std::vector<float>{6.f, 12.f, 18.f});
  sum(x).backward();
  CHECK(x.grad().toVector() == std::vector<float>{7.f, 13.f, 19.f});
  x.zeroGrad();
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("autograd: NoGradGuard and detach stop recording") {
  Tensor x = Tensor::fromVector({1.f, 2.f}).requiresGrad();
  {
    autograd::NoGradGuard guard;
    Tensor y = mul(x, 3.f);
    CHECK_FALSE(y.needsGrad());
  }
  CHECK(mul(x, 3.f).needsGrad());
  Tensor d = mul(x, 3.f).detach();
  CHECK_FALSE(d.needsGrad());
  CHECK_THROWS_WITH_AS(sum(d).backward(), doctest::Contains("does not require a gradient"), Error);
}

TEST_CASE("autograd: a freed graph errors unless retainGraph") {
  Tensor x = Tensor::fromVector({1.f, 2.f}).requiresGrad();
  Tensor z = sum(exp(x));
  z.backward({.retainGraph = true});
  z.backward();
  std::vector<float> g = x.grad().toVector();
  CHECK(g[0] == doctest::Approx(2 * std::exp(1.0)));
  CHECK_THROWS_WITH_AS(z.backward(), doctest::Contains("a second time"), Error);
}

TEST_CASE("autograd: a 10,000-node chain runs without recursion") {
  Tensor x = Tensor::fromVector({1.f}).requiresGrad();
  Tensor y = x;
  for (int i = 0; i < 10000; ++i) y = add(y, 0.0f);
  y = mul(y, 2.f);
  y.backward();
  CHECK(x.grad().item() == 2.f);
}

TEST_CASE("autograd: wrong gradient shapes name the op") {
  Tensor x = Tensor::fromVector({1.f, 2.f}).requiresGrad();
  Tensor out = Tensor::zeros({2});
  autograd::record(out, "broken_op", {x},
                   [](const Tensor&) -> autograd::GradList { return {Tensor::zeros({3})}; });
  CHECK_THROWS_WITH_AS(out.backward({.grad = Tensor::ones({2})}),
                       doctest::Contains("backward of 'broken_op': gradient for input 0 has shape [3]"),
                       Error);
  CHECK_THROWS_WITH_AS(out.backward(), doctest::Contains("one-element output"), Error);
}

TEST_CASE("autograd: graph memory is released after backward") {
  Tensor x = Tensor::ones({1 << 16}).requiresGrad();
  size_t before = Storage::liveBytes();
  {
    Tensor z = sum(exp(mul(x, 2.f)));
    CHECK(Storage::liveBytes() > before + (1 << 18));  // intermediates held by the graph
    z.backward();
  }
  // Only the leaf's gradient remains.
  CHECK(Storage::liveBytes() == before + x.nbytes());
}

TEST_CASE("autograd: gradCheck detects a wrong backward") {
  Rng rng(3);
  Tensor x = Tensor::randn({5}, rng).requiresGrad();
  auto wrong = [](const std::vector<Tensor>& in) {
    Tensor out = mul(in[0].detach(), 2.f);
    autograd::record(out, "wrong", {in[0]},
                     [](const Tensor& g) -> autograd::GradList { return {mul(g, 3.f)}; });
    return out;
  };
  CHECK_FALSE(autograd::gradCheck(wrong, {x}));
  auto right = [](const std::vector<Tensor>& in) { return mul(in[0], 2.f); };
  CHECK(autograd::gradCheck(right, {x}));
}

TEST_CASE("autograd: views propagate gradients") {
  Rng rng(5);
  Tensor x = Tensor::randn({2, 3, 4}, rng).requiresGrad();
  auto views = [](const std::vector<Tensor>& in) {
    Tensor t = in[0].permute({2, 0, 1}).slice(0, 1, 4, 2).reshape({2, 6});
    Tensor e = in[0].slice(0, 0, 1).expand({3, 3, 4});
    return add(mul(t, t), sum(e, {0}).reshape({2, 6}).contiguous());
  };
  CHECK(autograd::gradCheck(views, {x}));
}
