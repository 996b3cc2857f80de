#include <doctest/doctest.h>

#include "core/Rng.h"
#include "core/autograd/GradCheck.h"
#include "core/ops/Reduce.h"
#include "core/parallel/ParallelFor.h"

using namespace mantissa;

TEST_CASE("reduce: values over axes") {
  Tensor t = Tensor::arange(24).reshape({2, 3, 4});
  CHECK(sum(t).item() == 276.f);
  CHECK(sum(t, {0, 2}).toVector() == std::vector<float>{60, 92, 124});
  CHECK(sum(t, {1}, true).shape() == Shape{2, 1, 4});
  CHECK(mean(t, {-1}).at({1, 2}) == doctest::Approx(21.5));
  CHECK(max(t, 1).toVector() == std::vector<float>{8, 9, 10, 11, 20, 21, 22, 23});
  CHECK(max(t).item() == 23.f);
  CHECK(argmax(t, 2).toVector<int64_t>() == std::vector<int64_t>{3, 3, 3, 3, 3, 3});
  // var of 0..3 = 1.25 (population), 5/3 (unbiased)
  CHECK(var(t, {2}).at({0, 0}) == doctest::Approx(1.25));
  CHECK(var(t, {2}, true).at({0, 0}) == doctest::Approx(5.0 / 3.0));
  CHECK(reduceTo(Tensor::ones({4, 2, 3}), {2, 1}).toVector() == std::vector<float>{12, 12});
  CHECK_THROWS_WITH_AS(sum(t, {3}), doctest::Contains("sum: axis 3 out of range"), Error);
}

TEST_CASE("reduce: long rows give the same sum on 1 and 2 threads") {
  Rng rng(2);
  Tensor x = Tensor::randn({3, 1 << 18}, rng);
  int saved = numThreads();
  setNumThreads(1);
  std::vector<float> one = sum(x, {1}).toVector();
  float allOne = sum(x).item();
  setNumThreads(2);
  CHECK(sum(x, {1}).toVector() == one);
  CHECK(sum(x).item() == allOne);
  setNumThreads(saved);
}

TEST_CASE("reduce: gradients match central differences") {
  Rng rng(4);
  Tensor x = Tensor::randn({3, 4, 5}, rng).requiresGrad();
  using Fn = std::function<Tensor(const std::vector<Tensor>&)>;
  std::vector<std::pair<const char*, Fn>> fns = {
      {"sum all", [](const std::vector<Tensor>& in) { return sum(in[0]); }},
      {"sum axes", [](const std::vector<Tensor>& in) { return sum(in[0], {0, 2}); }},
      {"mean keepdim", [](const std::vector<Tensor>& in) { return mean(in[0], {1}, true); }},
      {"max", [](const std::vector<Tensor>& in) { return max(in[0], 1); }},
      {"var", [](const std::vector<Tensor>& in) { return var(in[0], {2}, true); }},
  };
  for (auto& [name, fn] : fns) {
    CAPTURE(name);
    auto r = autograd::gradCheck(fn, {x});
    CHECK_MESSAGE(r.ok, r.message);
  }
}
