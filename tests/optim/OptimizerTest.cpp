// The Optimizer base: parameter validation, skipping, learning rate, state keyed by name with
// strict save/load and bit-identical resume, and the master-format snap (with test-only formats,
// so these tests do not depend on formats/ implementations).
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <memory>

#include "core/Rng.h"
#include "core/autograd/Autograd.h"
#include "optim/Adam.h"
#include "optim/RmsProp.h"
#include "optim/Sgd.h"

using namespace mantissa;
using namespace mantissa::optim;

namespace {

/// What the test formats saw on their last call.
struct Seen {
  int calls = 0;
  formats::QuantizeArgs args;
  std::string pointName;
};

/// Rounds to the nearest multiple of 0.25 (ties away from zero), stateless.
class QuarterFormat : public formats::Format {
 public:
  explicit QuarterFormat(std::shared_ptr<Seen> seen = nullptr) : seen_(std::move(seen)) {}
  std::string spec() const override { return "test-quarter"; }
  double bitsPerValue(const Shape&, int64_t) const override { return 32; }
  Tensor quantize(const Tensor& x, const formats::QuantizeArgs& args,
                  formats::FormatState* state) const override {
    if (seen_) {
      ++seen_->calls;
      seen_->args = args;
      seen_->pointName = std::string(args.pointName);
    }
    std::vector<float> v = x.toVector();
    for (float& f : v) f = std::round(f * 4.f) / 4.f;
    return Tensor::fromVector(v, x.shape());
  }
  formats::Encoded encode(const Tensor&, const formats::QuantizeArgs&,
                          formats::FormatState*) const override {
    throw Error("test-quarter: encode not needed");
  }
  Tensor decode(const formats::Encoded&) const override { throw Error("test-quarter: decode not needed"); }

 private:
  std::shared_ptr<Seen> seen_;
};

/// A stateful test format: its state counts calls, and the grid alternates between multiples
/// of 1/4 (even calls) and 1/8 (odd calls), so a lost or wrong state changes the numbers.
struct CountState : formats::FormatState {
  int64_t calls = 0;
  std::unique_ptr<formats::FormatState> clone() const override {
    return std::make_unique<CountState>(*this);
  }
  void saveState(io::StateDict& out, const std::string& prefix) const override {
    out.tensors[prefix + "calls"] = Tensor::fromInts({calls}, {1});
  }
  void loadState(const io::StateDict& in, const std::string& prefix) override {
    calls = in.tensor(prefix + "calls").item<int64_t>();
  }
  std::string describe() const override { return "calls=" + std::to_string(calls); }
};

class AlternatingFormat : public formats::Format {
 public:
  std::string spec() const override { return "test-alternating"; }
  double bitsPerValue(const Shape&, int64_t) const override { return 32; }
  std::unique_ptr<formats::FormatState> makeState() const override {
    return std::make_unique<CountState>();
  }
  Tensor quantize(const Tensor& x, const formats::QuantizeArgs&,
                  formats::FormatState* state) const override {
    auto* s = dynamic_cast<CountState*>(state);
    if (!s) throw Error("test-alternating: missing state");
    const float scale = s->calls++ % 2 == 0 ? 4.f : 8.f;
    std::vector<float> v = x.toVector();
    for (float& f : v) f = std::round(f * scale) / scale;
    return Tensor::fromVector(v, x.shape());
  }
  formats::Encoded encode(const Tensor&, const formats::QuantizeArgs&,
                          formats::FormatState*) const override {
    throw Error("unused");
  }
  Tensor decode(const formats::Encoded&) const override { throw Error("unused"); }
};

/// Identity format whose quantize must never be called.
class IdentityFormat : public formats::Format {
 public:
  std::string spec() const override { return "fp32"; }
  double bitsPerValue(const Shape&, int64_t) const override { return 32; }
  bool isIdentity() const override { return true; }
  Tensor quantize(const Tensor&, const formats::QuantizeArgs&, formats::FormatState*) const override {
    throw Error("identity format was asked to quantize");
  }
  formats::Encoded encode(const Tensor&, const formats::QuantizeArgs&,
                          formats::FormatState*) const override {
    throw Error("unused");
  }
  Tensor decode(const formats::Encoded&) const override { throw Error("unused"); }
};

using Factory = std::function<std::unique_ptr<Optimizer>(NamedParameters)>;

/// A small "model": two named parameters with deterministic initial values.
NamedParameters makeParams() {
  Rng rng(3);
  Tensor w = Tensor::randn({4, 3}, rng).requiresGrad();
  Tensor b = Tensor::randn({3}, rng).requiresGrad();
  return {{"layer1.0.conv1.weight", w}, {"fc.bias", b}};
}

/// Gradients depend only on (step, parameter index). The bias gets no gradient on step 2 so the
/// per-parameter step counts differ.
void setGrads(NamedParameters& ps, int64_t step) {
  for (size_t i = 0; i < ps.size(); ++i) {
    Tensor& p = ps[i].second;
    if (i == 1 && step == 2) {
      p.zeroGrad();
      continue;
    }
    Rng rng(100 + static_cast<uint64_t>(step), i);
    p.setGrad(Tensor::randn(p.shape(), rng, 0.f, 0.5f));
  }
}

std::vector<std::pair<const char*, Factory>> allOptimizers() {
  return {
      {"sgd", [](NamedParameters p) { return std::make_unique<Sgd>(p, SgdOptions{.lr = 0.1}); }},
      {"sgd momentum nesterov wd",
       [](NamedParameters p) {
         return std::make_unique<Sgd>(
             p, SgdOptions{.lr = 0.1, .momentum = 0.9, .weightDecay = 1e-3, .nesterov = true});
       }},
      {"adam amsgrad", [](NamedParameters p) { return std::make_unique<Adam>(p, AdamOptions{.lr = 0.01, .amsgrad = true}); }},
      {"adamw", [](NamedParameters p) { return std::make_unique<AdamW>(p, AdamWOptions{.lr = 0.01}); }},
      {"rmsprop centered momentum",
       [](NamedParameters p) {
         return std::make_unique<RmsProp>(p, RmsPropOptions{.lr = 0.01, .momentum = 0.5, .centered = true});
       }},
  };
}

std::vector<std::vector<float>> values(const NamedParameters& ps) {
  std::vector<std::vector<float>> out;
  for (const auto& [n, p] : ps) out.push_back(p.toVector());
  return out;
}

NamedParameters cloneParams(const NamedParameters& ps) {
  NamedParameters out;
  for (const auto& [n, p] : ps) out.emplace_back(n, p.detach().clone().requiresGrad());
  return out;
}

}  // namespace

TEST_CASE("Optimizer: resume from a StateDict is bit-identical to not stopping") {
  auto alt = std::make_shared<AlternatingFormat>();
  for (auto& [name, make] : allOptimizers()) {
    CAPTURE(name);
    for (bool withMaster : {false, true}) {
      CAPTURE(withMaster);
      // Uninterrupted: 5 steps.
      NamedParameters a = makeParams();
      auto optA = make(a);
      if (withMaster) optA->setMasterFormat("layer1.0.conv1.weight", alt, 1);
      for (int64_t s = 1; s <= 5; ++s) {
        setGrads(a, s);
        optA->setLr(0.1 / static_cast<double>(s));
        optA->step();
      }

      // Interrupted after 3 steps: save, rebuild everything from scratch, load, continue.
      NamedParameters b = makeParams();
      auto optB = make(b);
      if (withMaster) optB->setMasterFormat("layer1.0.conv1.weight", alt, 1);
      for (int64_t s = 1; s <= 3; ++s) {
        setGrads(b, s);
        optB->setLr(0.1 / static_cast<double>(s));
        optB->step();
      }
      io::StateDict dict;
      optB->saveState(dict, "optim/");
      NamedParameters c = cloneParams(b);  // the model checkpoint
      optB.reset();
      auto optC = make(c);
      if (withMaster) optC->setMasterFormat("layer1.0.conv1.weight", alt, 1);
      optC->loadState(dict, "optim/");
      CHECK(optC->iteration() == 3);
      CHECK(optC->lr() == 0.1 / 3.0);  // restored exactly
      CHECK(optC->paramStep("layer1.0.conv1.weight") == 3);
      CHECK(optC->paramStep("fc.bias") == 2);
      for (int64_t s = 4; s <= 5; ++s) {
        setGrads(c, s);
        optC->setLr(0.1 / static_cast<double>(s));
        optC->step();
      }
      CHECK(values(c) == values(a));
      if (withMaster) {
        auto* st = dynamic_cast<const CountState*>(optC->masterState("layer1.0.conv1.weight"));
        REQUIRE(st != nullptr);
        CHECK(st->calls == 5);
      }
    }
  }
}

TEST_CASE("Optimizer: state is keyed by parameter name") {
  NamedParameters ps = makeParams();
  Adam adam(ps, {.lr = 0.01});
  setGrads(ps, 1);
  adam.step();
  io::StateDict dict;
  adam.saveState(dict, "optim/");
  CHECK(dict.attrs.at("optim/type") == "adam");
  CHECK(dict.attrs.at("optim/step") == "1");
  CHECK(dict.attrs.at("optim/lr") == "0.01");
  CHECK(dict.attrs.at("optim/layer1.0.conv1.weight/step") == "1");
  CHECK(dict.tensors.at("optim/layer1.0.conv1.weight/exp_avg").shape() == Shape{4, 3});
  CHECK(dict.tensors.at("optim/fc.bias/exp_avg_sq").shape() == Shape{3});
  CHECK(dict.tensors.size() == 4);

  // The same names in another order load into the right parameters.
  NamedParameters reversed = {ps[1], ps[0]};
  Adam other(reversed, {.lr = 0.01});
  other.loadState(dict, "optim/");
  CHECK(other.slot("fc.bias", "exp_avg").toVector() == adam.slot("fc.bias", "exp_avg").toVector());
  CHECK(other.slot("layer1.0.conv1.weight", "exp_avg_sq").toVector() ==
        adam.slot("layer1.0.conv1.weight", "exp_avg_sq").toVector());

  // Saved tensors are copies: a later step does not change the dictionary.
  std::vector<float> saved = dict.tensors.at("optim/fc.bias/exp_avg").toVector();
  setGrads(ps, 3);
  adam.step();
  CHECK(dict.tensors.at("optim/fc.bias/exp_avg").toVector() == saved);
}

TEST_CASE("Optimizer: strict load errors name the key, and a failed load changes nothing") {
  NamedParameters ps = makeParams();
  Sgd sgd(ps, {.lr = 0.1, .momentum = 0.9});
  setGrads(ps, 1);
  sgd.step();
  io::StateDict dict;
  sgd.saveState(dict, "optim/");

  SUBCASE("a parameter missing from the state") {
    NamedParameters more = makeParams();
    more.emplace_back("head.weight", Tensor::zeros({2}).requiresGrad());
    Sgd bigger(more, {.lr = 0.1, .momentum = 0.9});
    CHECK_THROWS_WITH_AS(bigger.loadState(dict, "optim/"),
                         doctest::Contains("missing attribute 'optim/head.weight/step'"), Error);
  }
  SUBCASE("a parameter the optimizer does not have") {
    NamedParameters fewer = {makeParams()[0]};
    Sgd smaller(fewer, {.lr = 0.1, .momentum = 0.9});
    CHECK_THROWS_WITH_AS(smaller.loadState(dict, "optim/"),
                         doctest::Contains("unexpected key 'optim/fc.bias/"), Error);
  }
  SUBCASE("a slot of another shape") {
    NamedParameters other = {{"layer1.0.conv1.weight", Tensor::zeros({4, 4}).requiresGrad()},
                             {"fc.bias", Tensor::zeros({3}).requiresGrad()}};
    Sgd changed(other, {.lr = 0.1, .momentum = 0.9});
    CHECK_THROWS_WITH_AS(changed.loadState(dict, "optim/"),
                         doctest::Contains("'optim/layer1.0.conv1.weight/momentum_buffer' is f32 "
                                           "[4, 3] but parameter 'layer1.0.conv1.weight' is f32 [4, 4]"),
                         Error);
  }
  SUBCASE("a missing slot") {
    io::StateDict broken = dict;
    broken.tensors.erase("optim/fc.bias/momentum_buffer");
    Sgd fresh(makeParams(), {.lr = 0.1, .momentum = 0.9});
    CHECK_THROWS_WITH_AS(fresh.loadState(broken, "optim/"),
                         doctest::Contains("missing tensor 'optim/fc.bias/momentum_buffer'"), Error);
  }
  SUBCASE("a slot the options do not create") {
    Sgd plain(makeParams(), {.lr = 0.1});
    CHECK_THROWS_WITH_AS(plain.loadState(dict, "optim/"),
                         doctest::Contains("unexpected key 'optim/fc.bias/momentum_buffer'"), Error);
  }
  SUBCASE("another optimizer type") {
    Adam adam(makeParams());
    CHECK_THROWS_WITH_AS(adam.loadState(dict, "optim/"),
                         doctest::Contains("adam: the state under 'optim/' was saved by a 'sgd' optimizer"),
                         Error);
  }
  SUBCASE("an unparsable attribute") {
    io::StateDict broken = dict;
    broken.attrs["optim/fc.bias/step"] = "one";
    Sgd fresh(makeParams(), {.lr = 0.1, .momentum = 0.9});
    CHECK_THROWS_WITH_AS(fresh.loadState(broken, "optim/"),
                         doctest::Contains("attribute 'optim/fc.bias/step' = 'one' is not a "
                                           "non-negative integer"),
                         Error);
  }
  SUBCASE("master format mismatches") {
    auto quarter = std::make_shared<QuarterFormat>();
    Sgd withMaster(makeParams(), {.lr = 0.1, .momentum = 0.9});
    withMaster.setMasterFormat("fc.bias", quarter);
    CHECK_THROWS_WITH_AS(withMaster.loadState(dict, "optim/"),
                         doctest::Contains("missing attribute 'optim/fc.bias/master/format'"), Error);
    io::StateDict masterDict;
    withMaster.saveState(masterDict, "optim/");
    CHECK(masterDict.attrs.at("optim/fc.bias/master/format") == "test-quarter");
    Sgd noMaster(makeParams(), {.lr = 0.1, .momentum = 0.9});
    CHECK_THROWS_WITH_AS(noMaster.loadState(masterDict, "optim/"),
                         doctest::Contains("stores 'fc.bias' in master format 'test-quarter' but "
                                           "none is set here"),
                         Error);
    Sgd otherMaster(makeParams(), {.lr = 0.1, .momentum = 0.9});
    otherMaster.setMasterFormat("fc.bias", std::make_shared<AlternatingFormat>());
    CHECK_THROWS_WITH_AS(otherMaster.loadState(masterDict, "optim/"),
                         doctest::Contains("'optim/fc.bias/master/format' is 'test-quarter' but the "
                                           "master format set for 'fc.bias' is 'test-alternating'"),
                         Error);
  }
  SUBCASE("a failed load leaves the optimizer as it was") {
    NamedParameters fresh = makeParams();
    Sgd target(fresh, {.lr = 0.5, .momentum = 0.9});
    io::StateDict broken = dict;
    broken.tensors["optim/fc.bias/extra"] = Tensor::zeros({3});
    CHECK_THROWS_AS(target.loadState(broken, "optim/"), Error);
    CHECK(target.iteration() == 0);
    CHECK(target.lr() == 0.5);
    CHECK(target.paramStep("fc.bias") == 0);
    CHECK_FALSE(target.slot("fc.bias", "momentum_buffer").defined());
  }
  SUBCASE("keys outside the prefix are ignored") {
    io::StateDict withModel = dict;
    withModel.tensors["model/fc.bias"] = Tensor::zeros({3});
    Sgd fresh(makeParams(), {.lr = 0.1, .momentum = 0.9});
    fresh.loadState(withModel, "optim/");
    CHECK(fresh.iteration() == 1);
  }
}

TEST_CASE("Optimizer: parameters without a gradient are skipped") {
  // PyTorch semantics: a skipped parameter keeps its state and its own step count, so Adam's
  // bias correction for it uses the number of updates it actually received.
  Tensor a = Tensor::fromVector({1.f, 2.f}).requiresGrad();
  Tensor b = Tensor::fromVector({1.f, 2.f}).requiresGrad();
  Adam adam({{"a", a}, {"b", b}}, {.lr = 0.1});
  Tensor g1 = Tensor::fromVector({0.3f, -0.1f}), g2 = Tensor::fromVector({-0.2f, 0.4f});
  a.setGrad(g1);
  b.setGrad(g1);
  adam.step();
  a.setGrad(g2);
  b.zeroGrad();
  adam.step();  // b skipped
  std::vector<float> bAfterSkip = b.toVector();
  b.setGrad(g2);
  a.zeroGrad();
  adam.step();
  CHECK(adam.iteration() == 3);
  CHECK(adam.paramStep("a") == 2);
  CHECK(adam.paramStep("b") == 2);
  // b received (g1, g2) as its steps 1 and 2: exactly what `a` received at iterations 1 and 2.
  CHECK(b.toVector() == a.toVector());
  // One Adam step moves each element by lr against the gradient's sign.
  CHECK(bAfterSkip[0] == doctest::Approx(0.9));
  CHECK(bAfterSkip[1] == doctest::Approx(2.1));
  // A parameter that never had a gradient has no state at all.
  Tensor c = Tensor::ones({2}).requiresGrad();
  Sgd sgd({{"c", c}}, {.lr = 1, .momentum = 0.9});
  sgd.step();
  CHECK(c.toVector() == std::vector<float>{1, 1});
  CHECK(sgd.paramStep("c") == 0);
  CHECK_FALSE(sgd.slot("c", "momentum_buffer").defined());
}

TEST_CASE("Optimizer: zeroGrad, learning rate, updates in place without recording") {
  Tensor w = Tensor::fromVector({1.f, 2.f}).requiresGrad();
  Tensor alias = w;  // another handle to the same parameter
  Sgd sgd({{"w", w}}, {.lr = 0.5});
  CHECK(sgd.type() == "sgd");
  w.setGrad(Tensor::fromVector({1.f, 1.f}));
  sgd.step();
  CHECK(alias.toVector() == std::vector<float>{0.5f, 1.5f});
  CHECK(w.isLeaf());
  CHECK(w.gradFnName().empty());
  sgd.zeroGrad();
  CHECK_FALSE(w.grad().defined());
  sgd.setLr(0.25);
  CHECK(sgd.lr() == 0.25);
  w.setGrad(Tensor::fromVector({2.f, -2.f}));
  sgd.step();
  CHECK(w.toVector() == std::vector<float>{0.f, 2.f});
  CHECK_THROWS_WITH_AS(sgd.setLr(-0.1), doctest::Contains("sgd: learning rate -0.1 must be finite and >= 0"),
                       Error);
  CHECK_THROWS_WITH_AS(sgd.setLr(NAN), doctest::Contains("sgd: learning rate"), Error);
  w.setGrad(Tensor::ones({3}));
  CHECK_THROWS_WITH_AS(sgd.step(),
                       doctest::Contains("sgd: gradient of 'w' has shape [3] but the parameter has shape [2]"),
                       Error);
}

TEST_CASE("Optimizer: parameter validation") {
  Tensor w = Tensor::zeros({2}).requiresGrad();
  CHECK_THROWS_WITH_AS(Sgd({{"w", w}, {"w", Tensor::zeros({2})}}),
                       doctest::Contains("sgd: parameter name 'w' appears twice"), Error);
  CHECK_THROWS_WITH_AS(Sgd({{"a/b", w}}), doctest::Contains("parameter name 'a/b' contains '/'"), Error);
  CHECK_THROWS_WITH_AS(Sgd({{"", w}}), doctest::Contains("sgd: parameter 0 has an empty name"), Error);
  CHECK_THROWS_WITH_AS(Sgd({{"w", w}, {"v", w}}),
                       doctest::Contains("sgd: parameters 'w' and 'v' are the same tensor"), Error);
  Tensor m = Tensor::zeros({2, 3}).requiresGrad();
  CHECK_THROWS_WITH_AS(Sgd({{"t", m.detach().transpose(0, 1)}}),
                       doctest::Contains("sgd: parameter 't' is not contiguous"), Error);
  Tensor derived = mantissa::Tensor();
  {
    Tensor x = Tensor::zeros({2}).requiresGrad();
    derived = x.reshape({1, 2});
  }
  CHECK_THROWS_WITH_AS(Sgd({{"d", derived}}), doctest::Contains("sgd: parameter 'd' is the result of 'reshape'"),
                       Error);
  CHECK_THROWS_WITH_AS(Sgd({{"i", Tensor::fromInts({1, 2})}}),
                       doctest::Contains("sgd: parameter 'i' has dtype i64"), Error);
  Sgd ok({{"w", w}});
  CHECK_THROWS_WITH_AS(ok.setMasterFormat("nope", std::make_shared<QuarterFormat>()),
                       doctest::Contains("sgd: setMasterFormat: no parameter named 'nope'"), Error);
  CHECK_THROWS_WITH_AS(ok.paramStep("nope"), doctest::Contains("no parameter named 'nope'"), Error);
}

TEST_CASE("Optimizer: master format snaps the weight after the update") {
  auto seen = std::make_shared<Seen>();
  auto quarter = std::make_shared<QuarterFormat>(seen);
  Tensor w = Tensor::fromVector({1.f, -2.f, 0.5f}).requiresGrad();
  Tensor b = Tensor::fromVector({0.1f}).requiresGrad();
  Sgd sgd({{"layer1.weight", w}, {"layer1.bias", b}}, {.lr = 0.1});
  sgd.setMasterFormat("layer1.weight", quarter, 0, 99);
  CHECK(sgd.masterFormat("layer1.weight") == quarter);
  CHECK(sgd.masterFormat("layer1.bias") == nullptr);

  // The update gives (0.87, -2.02, 0.76); snapped to quarters: (0.75, -2.0, 0.75).
  w.setGrad(Tensor::fromVector({1.3f, 0.2f, -2.6f}));
  b.setGrad(Tensor::fromVector({0.3f}));
  sgd.step();
  CHECK(w.toVector() == std::vector<float>{0.75f, -2.f, 0.75f});
  CHECK(b.toVector()[0] == doctest::Approx(0.07));  // fp32 master: not snapped
  CHECK(seen->calls == 1);
  CHECK(seen->args.role == formats::Role::Master);
  CHECK(seen->args.blockAxis == 0);
  CHECK(seen->args.seed == 99);
  CHECK(seen->args.step == 0);
  CHECK(seen->pointName == "layer1.weight.master");
  // FNV-1a 64 of "layer1.weight.master", the stream a QuantPoint of that name would use.
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char ch : std::string("layer1.weight.master")) h = (h ^ ch) * 0x100000001b3ull;
  CHECK(seen->args.stream == h);

  // No gradient: no update and no snap.
  w.zeroGrad();
  sgd.step();
  CHECK(seen->calls == 1);
  w.setGrad(Tensor::fromVector({0.f, 0.f, 0.f}));
  sgd.step();
  CHECK(seen->calls == 2);
  CHECK(seen->args.step == 2);  // the third iteration, counted from 0

  SUBCASE("null and identity formats remove the snap") {
    sgd.setMasterFormat("layer1.weight", nullptr);
    CHECK(sgd.masterFormat("layer1.weight") == nullptr);
    sgd.setMasterFormat("layer1.weight", std::make_shared<IdentityFormat>());
    CHECK(sgd.masterFormat("layer1.weight") == nullptr);
    w.setGrad(Tensor::fromVector({0.1f, 0.1f, 0.1f}));
    sgd.step();  // IdentityFormat::quantize would throw
    CHECK(w.toVector()[0] == doctest::Approx(0.74));
    CHECK(seen->calls == 2);
  }
  SUBCASE("the same spec again keeps the adaptive state, another spec starts fresh") {
    auto alt = std::make_shared<AlternatingFormat>();
    sgd.setMasterFormat("layer1.bias", alt);
    b.setGrad(Tensor::fromVector({0.f}));
    sgd.step();
    auto* st = dynamic_cast<const CountState*>(sgd.masterState("layer1.bias"));
    REQUIRE(st != nullptr);
    CHECK(st->calls == 1);
    sgd.setMasterFormat("layer1.bias", std::make_shared<AlternatingFormat>());
    CHECK(dynamic_cast<const CountState*>(sgd.masterState("layer1.bias"))->calls == 1);
    sgd.setMasterFormat("layer1.bias", quarter);
    CHECK(sgd.masterState("layer1.bias") == nullptr);  // stateless format
  }
}

TEST_CASE("Optimizer: master format state is saved under <name>/master/state/") {
  auto alt = std::make_shared<AlternatingFormat>();
  Tensor w = Tensor::fromVector({0.3f, 0.6f}).requiresGrad();
  Sgd sgd({{"w", w}}, {.lr = 0.01});
  sgd.setMasterFormat("w", alt);
  for (int i = 0; i < 3; ++i) {
    w.setGrad(Tensor::fromVector({1.f, 1.f}));
    sgd.step();
  }
  io::StateDict dict;
  sgd.saveState(dict, "optim/");
  CHECK(dict.attrs.at("optim/w/master/format") == "test-alternating");
  CHECK(dict.tensors.at("optim/w/master/state/calls").item<int64_t>() == 3);
  Sgd other({{"w", Tensor::zeros({2}).requiresGrad()}}, {.lr = 0.01});
  other.setMasterFormat("w", alt);
  other.loadState(dict, "optim/");
  CHECK(dynamic_cast<const CountState*>(other.masterState("w"))->calls == 3);
  io::StateDict broken = dict;
  broken.tensors["optim/w/master/other"] = Tensor::zeros({1});
  Sgd strict({{"w", Tensor::zeros({2}).requiresGrad()}}, {.lr = 0.01});
  strict.setMasterFormat("w", alt);
  CHECK_THROWS_WITH_AS(strict.loadState(broken, "optim/"),
                       doctest::Contains("unexpected key 'optim/w/master/other'"), Error);
}
