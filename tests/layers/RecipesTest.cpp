#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "apps/common/Precision.h"
#include "apps/common/TrainLoop.h"
#include "core/ops/Conv.h"
#include "core/ops/Elementwise.h"
#include "core/ops/Linalg.h"
#include "core/ops/Reduce.h"
#include "data/SyntheticDataset.h"
#include "layers/Conv2d.h"
#include "layers/Linear.h"
#include "layers/MaxPool2d.h"
#include "optim/Sgd.h"

using namespace mantissa;
using formats::FormatPolicy;

namespace {

const char* kRecipes[] = {"fp32", "flexpoint", "hbfp8", "boosters", "s2fp8", "fp8", "bf16"};

class SmallCnn : public nn::Module {
 public:
  explicit SmallCnn(Rng& rng) : nn::Module("SmallCnn") {
    conv1_ = registerModule("conv1", std::make_shared<nn::Conv2d>(1, 8, 3, rng, nn::Conv2dOptions{.padding = 1}));
    pool_ = registerModule("pool", std::make_shared<nn::MaxPool2d>(2));
    conv2_ = registerModule("conv2", std::make_shared<nn::Conv2d>(8, 16, 3, rng, nn::Conv2dOptions{.padding = 1}));
    fc_ = registerModule("fc", std::make_shared<nn::Linear>(16 * 4 * 4, 4, rng));
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = pool_->forward(relu(conv1_->forward(x)));
    return fc_->forward(relu(conv2_->forward(h)).flatten(1));
  }
  std::shared_ptr<nn::Conv2d> conv1_, conv2_;
  std::shared_ptr<nn::MaxPool2d> pool_;
  std::shared_ptr<nn::Linear> fc_;
};

/// Quantizes like a fresh copy of one direction of a point would, without touching the point.
Tensor sameAs(const formats::QuantDirection& dir, const Tensor& x, int64_t axis, uint64_t step,
              const std::string& name, bool backward) {
  auto state = dir.state ? dir.state->clone() : nullptr;
  formats::QuantizeArgs args;
  args.role = dir.role;
  args.blockAxis = axis;
  args.step = step;
  args.pointName = name;
  args.stream = formats::streamOf(name) ^ (backward ? 0x9e3779b97f4a7c15ull : 0);
  return dir.format->quantize(x, args, state.get());
}

Tensor permuteBlock(const formats::QuantDirection& dir, const Tensor& x, int64_t axis,
                    const std::string& name, bool backward) {
  return sameAs(dir, x, axis, dir.calls, name, backward);
}

}  // namespace

TEST_CASE("Recipes: a Linear layer's three GEMMs see the recipe's formats on the right axes") {
  // Bitwise comparisons with the FP32 kernels: run the layer's GEMMs in FP32 too. The bf16
  // GEMM path (same result up to summation order) is tested in Bf16GemmTest.cpp.
  struct Restore {
    bool on;
    ~Restore() { setBf16GemmEnabled(on); }
  } restore{bf16GemmEnabled()};
  setBf16GemmEnabled(false);
  for (std::string recipe : kRecipes) {
    CAPTURE(recipe);
    Rng rng(7);
    nn::Linear fc(70, 9, rng);  // 70 = one full HBFP block of 64 plus a partial one
    fc.setPolicy(FormatPolicy::recipe(recipe));
    Tensor x = Tensor::randn({5, 70}, rng).requiresGrad();
    Tensor g = Tensor::randn({5, 9}, rng);

    const auto& act = fc.activationPoint()->forward();
    const auto& wFwd = fc.weightPoint()->forward();
    const auto& wBwd = fc.weightPoint()->backward();
    const auto& err = fc.errorPoint()->backward();
    bool blocked = act.format->isBlocked();
    // Expected operands, computed before the layer advances any adaptive state. Forward GEMM:
    // x and w blocked along `in` (axis 1).
    Tensor xq = permuteBlock(act, x.detach(), 1, "activation", false);
    Tensor wq = permuteBlock(wFwd, fc.weight().detach(), 1, "weight", false);
    Tensor y = fc.forward(x);
    CHECK(y.toVector() == linearForward(xq, wq, fc.bias().detach()).toVector());

    // Backward-data: error blocked along `out` (axis 1), weight along `out` (axis 0).
    // Backward-weights: error and x blocked along N (axis 0).
    uint64_t errStep = err.calls;
    Tensor eData = sameAs(err, g, 1, errStep, "error", true);
    Tensor eWeight = blocked ? sameAs(err, g, 0, errStep + 1, "error", true) : eData;
    Tensor wData = blocked ? sameAs(wFwd, fc.weight().detach(), 0, wFwd.calls, "weight", false) : wq;
    Tensor xWeight = blocked ? sameAs(act, x.detach(), 0, act.calls + 1, "activation", false) : xq;
    Tensor gw = sameAs(wBwd, linearBackwardWeights(xWeight, eWeight, false).weight, 1, wBwd.calls,
                       "weight", true);
    y.backward({.grad = g});
    CHECK(x.grad().toVector() == linearBackwardData(eData, wData).toVector());
    CHECK(fc.weight().grad().toVector() == gw.toVector());
    CHECK(fc.bias().grad().toVector() == sum(g, {0}).toVector());  // bias stays FP32
    if (blocked) {
      // The axis matters: blocking the error along N for the data GEMM would give another result.
      CHECK(x.grad().toVector() != linearBackwardData(sameAs(err, g, 0, errStep, "error", true), wData).toVector());
    }
  }
}

TEST_CASE("Recipes: HBFP conv input blocks run along channels, one exponent per block") {
  Rng rng(8);
  nn::Conv2d conv(80, 4, 1, rng, nn::Conv2dOptions{.bias = false});
  conv.setPolicy(FormatPolicy::recipe("hbfp8"));
  Tensor x = Tensor::randn({2, 80, 3, 3}, rng);
  // Make channel 0 huge at one pixel: only the block holding channels 0..63 of that pixel may
  // lose precision; the block of channels 64..79 at that pixel and all other pixels must not.
  x.data<float>()[0] = 1000.f;
  // 1x1 conv with weights 0.75 (exact in hbfp8: 0.75 = 96 * 2^-7 with e = 0; 1.0 would saturate
  // to 1 - 2^-7): y = 0.75 * the sum over channels of the GEMM input.
  conv.setTensor("weight", Tensor::full({4, 80, 1, 1}, 0.75));
  Tensor y = conv.forward(x);
  // Independent reference: per pixel, blocks of 64 and 16 channels, e = ceil(log2 max|x|),
  // 8-bit mantissa (ulp 2^(e-7)), RNE, clamp to 2^e - ulp.
  for (int64_t n = 0; n < 2; ++n) {
    for (int64_t p = 0; p < 9; ++p) {
      double expect = 0;
      for (int64_t c0 : {0, 64}) {
        int64_t c1 = std::min<int64_t>(c0 + 64, 80);
        double mx = 0;
        for (int64_t c = c0; c < c1; ++c) mx = std::max(mx, std::fabs(x.at({n, c, p / 3, p % 3})));
        int e = static_cast<int>(std::ceil(std::log2(mx)));
        double ulp = std::ldexp(1.0, e - 7), lim = std::ldexp(1.0, e) - ulp;
        for (int64_t c = c0; c < c1; ++c) {
          double q = std::nearbyint(x.at({n, c, p / 3, p % 3}) / ulp) * ulp;
          expect += 0.75 * std::clamp(q, -lim, lim);
        }
      }
      CHECK(y.at({n, 0, p / 3, p % 3}) == doctest::Approx(expect).epsilon(1e-6));
    }
  }
}

TEST_CASE("Recipes: master weights are stored in the recipe's master format") {
  for (std::string recipe : {"hbfp8", "flexpoint", "fp8"}) {
    CAPTURE(recipe);
    Rng rng(9);
    SmallCnn model(rng);
    optim::Sgd sgd(model.namedParameters(), {.lr = 0.05, .momentum = 0.9});
    train::applyPrecision(model, &sgd, formats::PrecisionSchedule::parse(recipe), 0, 1, 1);
    Tensor x = Tensor::randn({4, 1, 8, 8}, rng);
    for (int i = 0; i < 3; ++i) {
      sgd.zeroGrad();
      sum(model.forward(x)).backward();
      sgd.step();
    }
    Tensor w = model.conv2_->weight().detach();
    std::string master = FormatPolicy::recipe(recipe).master->spec();
    if (master == "hbfp16") {
      // Every block of 64 along the input channels (axis 1, per tap) holds integers times one ulp.
      auto f = formats::parse("hbfp16");
      CHECK(f->quantize(w, {.blockAxis = 1}).toVector() == w.toVector());
    } else if (master == "flex16+5") {
      // One shared exponent: every value is an int16 times the Autoflex scale of the master state.
      double dec = -1;
      for (auto& [k, v] : sgd.masterState("conv2.weight")->metrics()) {
        if (k == "dec" || k == "exponent") dec = v;
      }
      REQUIRE(dec >= 0);
      for (float v : w.toVector()) {
        double m = std::ldexp(v, static_cast<int>(dec));
        CHECK(m == std::nearbyint(m));
        CHECK(std::fabs(m) <= 32768);
      }
    } else {
      CHECK(sgd.masterFormat("conv2.weight") == nullptr);  // FP32 master
    }
  }
}

TEST_CASE("Recipes: a tiny CNN learns a synthetic task to > 90% under every recipe") {
  // One pattern per class; train and test differ in their noise (sample index).
  data::SyntheticDataset all({.size = 768, .numClasses = 4, .shape = {1, 8, 8}, .noise = 0.5f, .seed = 5});
  data::Subset train = data::Subset::range(all, 0, 512), test = data::Subset::range(all, 512, 768);
  for (std::string recipe : kRecipes) {
    CAPTURE(recipe);
    Rng rng(11);
    SmallCnn model(rng);
    optim::Sgd sgd(model.namedParameters(), {.lr = 0.05, .momentum = 0.9});
    data::DataLoader loader(train, {.batchSize = 32, .shuffle = true, .seed = 3, .prefetch = 0});
    data::DataLoader testLoader(test, {.batchSize = 128, .prefetch = 0});
    auto schedule = formats::PrecisionSchedule::parse(recipe);
    const int64_t epochs = 2;
    for (int64_t e = 0; e < epochs; ++e) {
      train::applyPrecision(model, &sgd, schedule, e, epochs, 1);
      train::trainClassifierEpoch(model, sgd, loader, {.epoch = e, .numEpochs = epochs});
    }
    CHECK(train::evaluateClassifier(model, testLoader).accuracy > 0.9);
  }
}
