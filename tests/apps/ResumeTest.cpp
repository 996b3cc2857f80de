#include <doctest/doctest.h>

#include <cmath>
#include <csignal>
#include <filesystem>

#include "apps/cli/ClassifierRun.h"
#include "core/io/Checkpoint.h"
#include "core/io/Hdf5.h"
#include "tests/apps/AppTestUtil.h"
#include "core/ops/Elementwise.h"
#include "layers/Conv2d.h"
#include "layers/Linear.h"
#include "layers/MaxPool2d.h"
#include "tests/data/DataTestUtil.h"

using namespace mantissa;
namespace fs = std::filesystem;
using apps::test::checkSameState;

namespace {

/// A small CNN whose training forward can raise SIGTERM at a chosen call, like a user pressing
/// Ctrl-C in the middle of an epoch.
class Tiny : public nn::Model {
 public:
  Tiny(int64_t classes, Rng& rng, int64_t signalAt) : nn::Model("Tiny"), signalAt_(signalAt) {
    conv_ = registerModule("conv", std::make_shared<nn::Conv2d>(1, 4, 3, rng, nn::Conv2dOptions{.padding = 1}));
    pool_ = registerModule("pool", std::make_shared<nn::MaxPool2d>(2));
    fc_ = registerModule("fc", std::make_shared<nn::Linear>(4 * 4 * 4, classes, rng));
  }
  Tensor forward(const Tensor& x) override {
    if (isTraining() && ++calls_ == signalAt_) std::raise(SIGTERM);
    return fc_->forward(pool_->forward(relu(conv_->forward(x))).flatten(1));
  }
  std::string name() const override { return "tiny"; }

 private:
  int64_t signalAt_, calls_ = 0;
  std::shared_ptr<nn::Conv2d> conv_;
  std::shared_ptr<nn::MaxPool2d> pool_;
  std::shared_ptr<nn::Linear> fc_;
};

/// 8x8 grey images of 10 classes (class-dependent bright square plus noise) as IDX files.
void writeDataset(const std::string& dir) {
  Rng rng(3);
  for (auto [name, count] : {std::pair{"train", 128u}, std::pair{"t10k", 32u}}) {
    std::vector<uint8_t> pixels, labels;
    for (uint32_t i = 0; i < count; ++i) {
      uint8_t label = static_cast<uint8_t>(i % 10);
      labels.push_back(label);
      for (int p = 0; p < 64; ++p) {
        bool on = (p / 8 + p % 8) % 10 == label;
        pixels.push_back(static_cast<uint8_t>((on ? 180 : 20) + rng.uniformInt(60)));
      }
    }
    data::test::writeBytes(dir + "/" + name + "-images-idx3-ubyte",
                           data::test::idxBytes({count, 8, 8}, pixels));
    data::test::writeBytes(dir + "/" + name + "-labels-idx1-ubyte", data::test::idxBytes({count}, labels));
  }
}

int run(const std::string& dataDir, const std::string& precision, int64_t epochs,
        const std::string& checkpoint, const std::string& resume, int64_t signalAt,
        bool changePrecision = false, const std::string& lrSchedule = "cosine",
        const std::string& log = "") {
  cli::CommonOptions o;
  o.lrSchedule = lrSchedule;
  o.lrMilestones = {1};
  o.log = log;
  o.precision = precision;
  o.changePrecision = changePrecision;
  o.data = dataDir;
  o.epochs = epochs;
  o.batchSize = 16;  // 8 batches per epoch
  o.lr = 0.05;
  o.checkpoint = checkpoint;
  o.resume = resume;
  o.quiet = true;
  o.seed = 5;
  cli::ClassifierSpec spec;
  spec.app = "resume-test";
  spec.input = {.augment = true};
  spec.makeModel = [signalAt](int64_t, int64_t classes, Rng& rng) {
    return std::make_shared<Tiny>(classes, rng, signalAt);
  };
  return cli::runClassifier(o, spec);
}

}  // namespace

TEST_CASE("Resume: interrupted and resumed runs end bit-identical to uninterrupted ones") {
  data::test::TempDir dir;
  writeDataset(dir.str());
  for (std::string precision : {"fp32", "flexpoint", "boosters", "s2fp8",
                                "hbfp8; */*=hbfp8:round=stochastic"}) {
    CAPTURE(precision);
    std::string a = dir.file("a.h5"), b = dir.file("b.h5"), c = dir.file("c.h5");
    REQUIRE(run(dir.str(), precision, 2, a, "", -1) == 0);
    // Ctrl-C in the middle of epoch 2 (training forward 11 of 16): checkpoint, exit 130, resume.
    REQUIRE(run(dir.str(), precision, 2, b, "", 11) == 130);
    CHECK(io::readMeta(b).epoch == 1);
    REQUIRE(run(dir.str(), precision, 2, b, b, -1) == 0);
    checkSameState(a, b);
    // Stop at an epoch boundary, then extend the run with --epochs 2. (A cosine annealed over
    // one epoch is another schedule than over two, so this uses a per-epoch step schedule.)
    std::string d = dir.file("d.h5");
    REQUIRE(run(dir.str(), precision, 2, d, "", -1, false, "step") == 0);
    REQUIRE(run(dir.str(), precision, 1, c, "", -1, false, "step") == 0);
    REQUIRE(run(dir.str(), precision, 2, c, c, -1, false, "step") == 0);
    if (precision.find("boosters") == std::string::npos) {
      // (boosters boosts the *last* epoch, so a 1-epoch run differs from epoch 1 of 2.)
      checkSameState(d, c);
    }
  }
}

TEST_CASE("Resume: the cosine learning rate anneals every step and reaches 0 after the last") {
  data::test::TempDir dir;
  writeDataset(dir.str());
  std::string log = dir.file("lr.jsonl");
  // 8 batches per epoch, 2 epochs: the rate of optimizer step k (0-based) is
  // 0.05 * (1 + cos(pi * k / 16)) / 2, logged on the step lines (--metrics-every 1).
  auto runLogged = [&](const std::string& schedule) {
    std::filesystem::remove(log);
    cli::CommonOptions c;
    c.lrSchedule = schedule;
    c.lrMilestones = {1};
    c.data = dir.str();
    c.epochs = 2;
    c.batchSize = 16;
    c.lr = 0.05;
    c.quiet = true;
    c.metricsEvery = 1;
    c.log = log;
    cli::ClassifierSpec spec;
    spec.app = "resume-test";
    spec.makeModel = [](int64_t, int64_t classes, Rng& rng) {
      return std::make_shared<Tiny>(classes, rng, -1);
    };
    REQUIRE(cli::runClassifier(c, spec) == 0);
    return apps::test::readJsonl(log);
  };
  const double pi = std::acos(-1.0);
  std::vector<cli::JsonValue> lines = runLogged("cosine");
  std::vector<cli::JsonValue> steps = apps::test::events(lines, "step");
  REQUIRE(steps.size() == 16);
  for (size_t k = 0; k < steps.size(); ++k) {
    CAPTURE(k);
    CHECK(steps[k].find("lr")->number() ==
          doctest::Approx(0.025 * (1 + std::cos(pi * double(k) / 16))).epsilon(1e-9));
  }
  // Epoch lines log the rate of the epoch's first step.
  std::vector<cli::JsonValue> epochs = apps::test::events(lines, "epoch");
  REQUIRE(epochs.size() == 2);
  CHECK(epochs[0].find("lr")->number() == doctest::Approx(0.05));
  CHECK(epochs[1].find("lr")->number() == doctest::Approx(0.025));
  // A step schedule with its milestone at epoch 1 changes the rate exactly at step 8.
  steps = apps::test::events(runLogged("step"), "step");
  REQUIRE(steps.size() == 16);
  CHECK(steps[7].find("lr")->number() == doctest::Approx(0.05));
  CHECK(steps[8].find("lr")->number() == doctest::Approx(0.005));
}

TEST_CASE("Resume: precision changes need --change-precision and are recorded") {
  data::test::TempDir dir;
  writeDataset(dir.str());
  std::string a = dir.file("a.h5");
  REQUIRE(run(dir.str(), "fp8", 1, a, "", -1) == 0);
  CHECK_THROWS_WITH_AS(run(dir.str(), "s2fp8", 2, a, a, -1), doctest::Contains("--change-precision"), Error);
  REQUIRE(run(dir.str(), "s2fp8", 2, a, a, -1, true) == 0);
  io::CheckpointMeta meta = io::readMeta(a);
  CHECK(meta.precision == "s2fp8");
  CHECK(meta.extra.at("precision_history") == "epoch 1: 'fp8' -> 's2fp8'");

  SUBCASE("--eval-only evaluates in the requested precision") {
    auto evalLoss = [&](const std::string& precision) {
      std::string log = dir.file("eval.jsonl");
      std::filesystem::remove(log);
      cli::CommonOptions o;
      o.precision = precision;
      o.changePrecision = true;
      o.data = dir.str();
      o.batchSize = 16;
      o.resume = a;
      o.evalOnly = true;
      o.quiet = true;
      o.log = log;
      cli::ClassifierSpec spec;
      spec.app = "resume-test";
      spec.makeModel = [](int64_t, int64_t classes, Rng& rng) {
        return std::make_shared<Tiny>(classes, rng, -1);
      };
      REQUIRE(cli::runClassifier(o, spec) == 0);
      return apps::test::events(apps::test::readJsonl(log), "eval").at(0).find("test_loss")->number();
    };
    double saved = evalLoss("s2fp8"), fp32 = evalLoss("fp32"), coarse = evalLoss("fp32; */*=hbfp2");
    // Three different arithmetics give three different losses (hbfp2 keeps one magnitude bit).
    CHECK(fp32 != saved);
    CHECK(coarse != fp32);
    CHECK(coarse != saved);
    CHECK(evalLoss("fp32") == fp32);  // and the same one the same loss
  }
}
