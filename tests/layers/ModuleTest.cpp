#include <doctest/doctest.h>

#include <cmath>

#include "core/Rng.h"
#include "core/autograd/GradCheck.h"
#include "core/ops/Elementwise.h"
#include "core/ops/Reduce.h"
#include "formats/PrecisionSchedule.h"
#include "layers/Linear.h"
#include "layers/models/CifarResNet.h"

using namespace mantissa;
using namespace mantissa::nn;

namespace {

class TwoLayer : public Module {
 public:
  explicit TwoLayer(Rng& rng) : Module("TwoLayer") {
    fc1_ = registerModule("fc1", std::make_shared<Linear>(4, 8, rng));
    fc2_ = registerModule("fc2", std::make_shared<Linear>(8, 3, rng, LinearOptions{.bias = false}));
    scale_ = registerBuffer("scale", Tensor::full({1}, 2.0));
  }
  Tensor forward(const Tensor& x) override { return fc2_->forward(relu(fc1_->forward(x))); }

  std::shared_ptr<Linear> fc1_, fc2_;
  Tensor scale_;
};

}  // namespace

TEST_CASE("Module: dotted names in registration order") {
  Rng rng(1);
  TwoLayer m(rng);
  std::vector<std::string> names;
  for (auto& [n, t] : m.namedParameters()) names.push_back(n);
  CHECK(names == std::vector<std::string>{"fc1.weight", "fc1.bias", "fc2.weight"});
  CHECK(m.namedBuffers().at(0).first == "scale");
  std::vector<std::string> points;
  for (auto& [n, q] : m.namedQuantPoints()) points.push_back(n);
  CHECK(points == std::vector<std::string>{"fc1.activation", "fc1.weight", "fc1.error",
                                           "fc2.activation", "fc2.weight", "fc2.error"});
  CHECK(m.numParameters() == 4 * 8 + 8 + 8 * 3);
  CHECK(m.describe().find("(fc2): Linear(8, 3, bias=false)") != std::string::npos);
  CHECK(m.namedParameters()[0].second.shape() == Shape{8, 4});  // PyTorch [out, in]
}

TEST_CASE("Module: PyTorch default init bounds for Linear") {
  Rng rng(2);
  Linear fc(100, 50, rng);
  float bound = 0.1f;
  for (float v : fc.weight().toVector()) CHECK(std::fabs(v) <= bound);
  CHECK(max(abs(fc.weight())).item() > 0.09f);  // actually spread over the range
}

TEST_CASE("Module: Linear gradients match central differences") {
  Rng rng(3);
  Linear fc(5, 3, rng);
  Tensor x = Tensor::randn({4, 5}, rng).requiresGrad();
  auto fn = [&](const std::vector<Tensor>& in) { return fc.forward(in[0]); };
  auto r = autograd::gradCheck(fn, {x});
  CHECK_MESSAGE(r.ok, r.message);
  // Parameter gradients: compare with the closed form dL/dW = gᵀx for L = sum(y * g).
  Tensor g = Tensor::randn({4, 3}, rng);
  fc.zeroGrad();
  sum(mul(fc.forward(x.detach()), g)).backward();
  Tensor expectW = Tensor::zeros({3, 5});
  for (int o = 0; o < 3; ++o)
    for (int i = 0; i < 5; ++i) {
      double acc = 0;
      for (int n = 0; n < 4; ++n) acc += g.at({n, o}) * x.at({n, i});
      CHECK(fc.weight().grad().at({o, i}) == doctest::Approx(acc).epsilon(1e-5));
    }
  CHECK(fc.bias().grad().toVector() == sum(g, {0}).toVector());
}

TEST_CASE("Module: strict state loading names the key") {
  Rng rng(4);
  TwoLayer a(rng), b(rng);
  io::StateDict sd;
  a.saveState(sd, "");
  b.loadState(sd, "");
  CHECK(b.fc1_->weight().toVector() == a.fc1_->weight().toVector());
  SUBCASE("missing key") {
    io::StateDict bad = sd;
    bad.tensors.erase("model/fc2.weight");
    CHECK_THROWS_WITH_AS(b.loadState(bad, ""), doctest::Contains("missing 'model/fc2.weight'"), Error);
  }
  SUBCASE("extra key") {
    io::StateDict bad = sd;
    bad.tensors["model/fc3.weight"] = Tensor::zeros({1});
    CHECK_THROWS_WITH_AS(b.loadState(bad, ""), doctest::Contains("unexpected 'model/fc3.weight'"), Error);
  }
  SUBCASE("shape mismatch leaves the model untouched") {
    io::StateDict bad = sd;
    bad.tensors["model/fc1.bias"] = Tensor::zeros({9});
    std::vector<float> before = b.fc1_->weight().toVector();
    CHECK_THROWS_WITH_AS(b.loadState(bad, ""), doctest::Contains("'model/fc1.bias': shape [9]"), Error);
    CHECK(b.fc1_->weight().toVector() == before);
  }
}

TEST_CASE("Module: policies reach the points named by selectors") {
  Rng rng(5);
  TwoLayer m(rng);
  m.setPolicy(FormatPolicy::recipe("fp8"));
  m.setPolicy("last", FormatPolicy::recipe("bf16"));
  CHECK(m.fc1_->weightPoint()->forwardFormat()->spec() == "e4m3");
  CHECK(m.fc1_->errorPoint()->backwardFormat()->spec() == "e5m2");
  CHECK(m.fc1_->activationPoint()->backwardFormat()->spec() == "fp32");
  CHECK(m.fc2_->weightPoint()->forwardFormat()->spec() == "bf16");
  CHECK_THROWS_WITH_AS(m.setPolicy("fc9", FormatPolicy::fp32()), doctest::Contains("'fc9' matches no"),
                       Error);
  m.applySchedule(formats::PrecisionSchedule::parse("hbfp8; fc1/weight=fp32"), 0, 1);
  CHECK(m.fc1_->weightPoint()->forwardFormat()->spec() == "fp32");
  CHECK(m.fc2_->weightPoint()->forwardFormat()->spec() == "hbfp8");
  auto masters = m.namedMasterFormats();
  REQUIRE(masters.size() == 2);
  CHECK(masters[0].first == "fc1.weight");
  CHECK(masters[0].second.format->spec() == "hbfp16");
  CHECK(masters[0].second.blockAxis == 1);
  CHECK(m.describePrecision().find("fc2.activation  fwd=hbfp8  bwd=fp32") != std::string::npos);
}

TEST_CASE("Module: submodules in depth-first pre-order, so first/last are the input and output layers") {
  Rng rng(6);
  nn::CifarResNet net({.depth = 8, .inChannels = 1, .numClasses = 10}, rng);
  std::vector<std::string> names;
  for (auto& [n, m] : net.dotProductLayers()) names.push_back(n);
  CHECK(names == std::vector<std::string>{"conv1", "layer1.0.conv1", "layer1.0.conv2",
                                          "layer2.0.conv1", "layer2.0.conv2", "layer3.0.conv1",
                                          "layer3.0.conv2", "fc"});
  net.setPolicy(FormatPolicy::recipe("hbfp8"));
  net.applySchedule(formats::PrecisionSchedule::parse("boosters"), 0, 10);
  for (auto& [n, q] : net.namedQuantPoints()) {
    if (n.find(".weight") == std::string::npos) continue;
    bool boosted = n.rfind("conv1.", 0) == 0 || n.rfind("fc.", 0) == 0;
    CAPTURE(n);
    CHECK(q->forwardFormat()->spec() == (boosted ? "hbfp6" : "hbfp4"));
  }
  std::vector<std::string> modules;
  for (auto& [n, m] : net.namedModules()) modules.push_back(n);
  CHECK(modules.at(0) == "conv1");
  CHECK(modules.at(3) == "layer1");
  CHECK(modules.at(4) == "layer1.0");
  CHECK(modules.back() == "fc");
}
