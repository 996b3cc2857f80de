#include <doctest/doctest.h>

#include <cmath>

#include "core/Rng.h"
#include "core/autograd/GradCheck.h"
#include "core/ops/Elementwise.h"
#include "core/ops/Reduce.h"

using namespace mantissa;

namespace {
using Fn = std::function<Tensor(const std::vector<Tensor>&)>;
}

TEST_CASE("elementwise: values against scalar math") {
  Tensor a = Tensor::fromVector({-2.f, -0.5f, 0.f, 1.5f});
  CHECK(relu(a).toVector() == std::vector<float>{0, 0, 0, 1.5f});
  CHECK(leakyRelu(a, 0.1f).toVector()[0] == doctest::Approx(-0.2f));
  CHECK(abs(a).toVector() == std::vector<float>{2, 0.5f, 0, 1.5f});
  CHECK(clamp(a, -1.f, 1.f).toVector() == std::vector<float>{-1, -0.5f, 0, 1});
  std::vector<float> sg = sigmoid(Tensor::fromVector({-100.f, 0.f, 100.f})).toVector();
  CHECK(sg[0] == doctest::Approx(3.7200760e-44).epsilon(1e-3));  // no overflow in exp(100)
  CHECK(sg[1] == 0.5f);
  CHECK(sg[2] == 1.f);
  CHECK(tanh(a).toVector()[3] == doctest::Approx(std::tanh(1.5f)));
  CHECK(pow(Tensor::fromVector({2.f, 3.f}), 3.f).toVector() == std::vector<float>{8, 27});
  Tensor m = Tensor::fromVector({1.f, 0.f, 1.f, 0.f});
  CHECK(where(m, a, Tensor::full({1}, 9.f)).toVector() == std::vector<float>{-2, 9, 0, 9});
}

TEST_CASE("elementwise: broadcasting shapes and errors") {
  Tensor a = Tensor::ones({2, 3});
  Tensor b = Tensor::arange(3);
  CHECK(add(a, b).shape() == Shape{2, 3});
  CHECK(add(a, b).at({1, 2}) == 3.0);
  CHECK(mul(Tensor::ones({4, 1, 3}), Tensor::ones({2, 1})).shape() == Shape{4, 2, 3});
  CHECK_THROWS_WITH_AS(add(a, Tensor::ones({4})), doctest::Contains("add: shapes [2, 3] and [4]"),
                       Error);
  // Non-contiguous operands take the strided path.
  Tensor t = Tensor::arange(6).reshape({2, 3}).transpose(0, 1);
  CHECK(add(t, Tensor::zeros({3, 2})).toVector() == std::vector<float>{0, 3, 1, 4, 2, 5});
}

TEST_CASE("elementwise: gradients match central differences") {
  Rng rng(11);
  Tensor a = Tensor::randn({3, 4}, rng).requiresGrad();
  Tensor b = Tensor::randn({4}, rng).requiresGrad();
  Tensor pos = Tensor::rand({3, 4}, rng, 0.5f, 2.f).requiresGrad();
  std::vector<std::pair<const char*, Fn>> binary = {
      {"add", [](const std::vector<Tensor>& in) { return add(in[0], in[1]); }},
      {"sub", [](const std::vector<Tensor>& in) { return sub(in[0], in[1]); }},
      {"mul", [](const std::vector<Tensor>& in) { return mul(in[0], in[1]); }},
      {"div", [](const std::vector<Tensor>& in) { return div(in[0], add(abs(in[1]), 1.f)); }},
      {"maximum", [](const std::vector<Tensor>& in) { return maximum(in[0], in[1]); }},
      {"minimum", [](const std::vector<Tensor>& in) { return minimum(in[0], in[1]); }},
      {"where", [](const std::vector<Tensor>& in) {
         return where(greater(in[0], Tensor::zeros({})), in[0], in[1]); }},
  };
  for (auto& [name, fn] : binary) {
    CAPTURE(name);
    auto r = autograd::gradCheck(fn, {a, b});
    CHECK_MESSAGE(r.ok, r.message);
  }
  std::vector<std::pair<const char*, Fn>> unaryPos = {
      {"log", [](const std::vector<Tensor>& in) { return log(in[0]); }},
      {"sqrt", [](const std::vector<Tensor>& in) { return sqrt(in[0]); }},
      {"pow", [](const std::vector<Tensor>& in) { return pow(in[0], 2.5f); }},
  };
  for (auto& [name, fn] : unaryPos) {
    CAPTURE(name);
    auto r = autograd::gradCheck(fn, {pos});
    CHECK_MESSAGE(r.ok, r.message);
  }
  std::vector<std::pair<const char*, Fn>> unary = {
      {"exp", [](const std::vector<Tensor>& in) { return exp(in[0]); }},
      {"neg", [](const std::vector<Tensor>& in) { return neg(in[0]); }},
      {"abs", [](const std::vector<Tensor>& in) { return abs(in[0]); }},
      {"clamp", [](const std::vector<Tensor>& in) { return clamp(in[0], -0.5f, 0.7f); }},
      {"relu", [](const std::vector<Tensor>& in) { return relu(in[0]); }},
      {"leaky_relu", [](const std::vector<Tensor>& in) { return leakyRelu(in[0], 0.2f); }},
      {"tanh", [](const std::vector<Tensor>& in) { return tanh(in[0]); }},
      {"sigmoid", [](const std::vector<Tensor>& in) { return sigmoid(in[0]); }},
      {"scalar ops", [](const std::vector<Tensor>& in) { return (in[0] * 3.f + 1.f) / 2.f; }},
  };
  for (auto& [name, fn] : unary) {
    CAPTURE(name);
    auto r = autograd::gradCheck(fn, {a});
    CHECK_MESSAGE(r.ok, r.message);
  }
}

TEST_CASE("elementwise: activations propagate NaN like PyTorch") {
  Tensor x = Tensor::fromVector({std::nanf(""), -1.f});
  CHECK(std::isnan(relu(x).toVector()[0]));
  CHECK(std::isnan(leakyRelu(x).toVector()[0]));
  CHECK(std::isnan(sigmoid(x).toVector()[0]));
  CHECK(std::isnan(tanh(x).toVector()[0]));
}
