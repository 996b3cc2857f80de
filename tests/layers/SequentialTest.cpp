#include <doctest/doctest.h>

#include "core/Rng.h"
#include "layers/Layers.h"
#include "tests/layers/LayerTestUtil.h"

using namespace mantissa;
namespace nn = mantissa::nn;
using mantissa::testing::checkModuleGrads;
using mantissa::testing::maxAbsDiff;

TEST_CASE("Sequential: children named 0, 1, ... and chained in order") {
  Rng rng(1);
  nn::Sequential seq;
  auto fc1 = seq.push_back(std::make_shared<nn::Linear>(4, 6, rng));
  seq.push_back(std::make_shared<nn::ReLU>());
  auto fc2 = seq.push_back(std::make_shared<nn::Linear>(6, 2, rng));
  CHECK(seq.size() == 3);
  std::vector<std::string> names;
  for (auto& [n, t] : seq.namedParameters()) names.push_back(n);
  CHECK(names == std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"});
  Tensor x = Tensor::randn({5, 4}, rng);
  CHECK(maxAbsDiff(seq.forward(x), fc2->forward(relu(fc1->forward(x)))) == 0);
  CHECK(seq.atAs<nn::Linear>(2) == fc2);
  CHECK(seq[1]->typeName() == "ReLU");
  CHECK_THROWS_WITH_AS(seq.at(3), doctest::Contains("index 3 out of range (size 3)"), Error);
  CHECK_THROWS_WITH_AS(seq.atAs<nn::Linear>(1), doctest::Contains("child 1 is a ReLU"), Error);
  CHECK(seq.describe() ==
        "Sequential(\n  (0): Linear(4, 6)\n  (1): ReLU()\n  (2): Linear(6, 2)\n)\n");
  auto r = checkModuleGrads(seq, x);
  CHECK_MESSAGE(r.ok, r.message);
}

TEST_CASE("Sequential: nesting, initializer list, empty identity") {
  Rng rng(2);
  auto inner = std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
      std::make_shared<nn::Linear>(3, 3, rng), std::make_shared<nn::Tanh>()});
  nn::Sequential outer{inner, std::make_shared<nn::Linear>(3, 1, rng)};
  CHECK(outer.namedParameters().at(0).first == "0.0.weight");
  CHECK(outer.namedParameters().at(2).first == "1.weight");
  CHECK(outer.dotProductLayers().size() == 2);
  nn::Sequential empty;
  Tensor x = Tensor::randn({2, 3}, rng);
  CHECK(empty.forward(x).isSameAs(x));
}
