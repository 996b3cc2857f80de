#include <doctest/doctest.h>

#include <atomic>
#include <cmath>
#include <sstream>

#include "apps/common/Metrics.h"
#include "apps/common/Progress.h"
#include "apps/common/TrainLoop.h"
#include "core/ops/Elementwise.h"
#include "data/SyntheticDataset.h"
#include "layers/Linear.h"
#include "optim/Sgd.h"

using namespace mantissa;

namespace {

class Mlp : public nn::Module {
 public:
  Mlp(int64_t in, int64_t classes, Rng& rng) : nn::Module("Mlp") {
    fc1_ = registerModule("fc1", std::make_shared<nn::Linear>(in, 32, rng));
    fc2_ = registerModule("fc2", std::make_shared<nn::Linear>(32, classes, rng));
  }
  Tensor forward(const Tensor& x) override { return fc2_->forward(relu(fc1_->forward(x.flatten(1)))); }
  std::shared_ptr<nn::Linear> fc1_, fc2_;
};

}  // namespace

TEST_CASE("TrainLoop: a tiny model trained 50 steps on synthetic data reduces the loss") {
  data::SyntheticDataset ds({.size = 50 * 16, .numClasses = 4, .shape = {1, 4, 4}, .seed = 3});
  data::DataLoader loader(ds, {.batchSize = 16, .shuffle = true, .seed = 1, .prefetch = 0});
  Rng rng(1);
  Mlp model(16, 4, rng);
  optim::Sgd sgd(model.namedParameters(), {.lr = 0.1, .momentum = 0.9});
  train::EpochResult before = train::evaluateClassifier(model, loader);
  train::EpochResult r = train::trainClassifierEpoch(model, sgd, loader, {.epoch = 0});
  CHECK(r.batches == 50);
  CHECK(r.images == 800);
  train::EpochResult after = train::evaluateClassifier(model, loader);
  CHECK(after.loss < 0.5 * before.loss);
  CHECK(after.accuracy > 0.9);
}

TEST_CASE("TrainLoop: limit, stop request and non-finite loss") {
  data::SyntheticDataset ds({.size = 64, .numClasses = 2, .shape = {4}, .seed = 2});
  data::DataLoader loader(ds, {.batchSize = 8, .prefetch = 0});
  Rng rng(2);
  Mlp model(4, 2, rng);
  optim::Sgd sgd(model.namedParameters(), {.lr = 0.01});
  SUBCASE("limitBatches") {
    CHECK(train::trainClassifierEpoch(model, sgd, loader, {.limitBatches = 3}).batches == 3);
  }
  SUBCASE("a stop request ends the epoch after the current batch") {
    std::atomic<bool> stop{true};
    train::EpochResult r = train::trainClassifierEpoch(model, sgd, loader, {.stop = &stop});
    CHECK(r.batches == 1);
    CHECK(r.stopped);
    CHECK(loader.position() == data::LoaderPosition{0, 1});
  }
  SUBCASE("NaN weights stop the run before the optimizer step") {
    Tensor w = model.fc1_->weight();
    w.data<float>()[0] = std::nanf("");
    std::vector<float> before = model.fc2_->weight().toVector();
    CHECK_THROWS_WITH_AS(train::trainClassifierEpoch(model, sgd, loader, {.epoch = 4}),
                         doctest::Contains("non-finite training loss"), train::NonFiniteLoss);
    CHECK(model.fc2_->weight().toVector() == before);
    CHECK(sgd.iteration() == 0);
  }
}

TEST_CASE("Metrics: JSON lines are valid and escape strings") {
  train::JsonObject o;
  o.add("event", "epoch").add("loss", 0.5).add("n", int64_t{3}).add("ok", true);
  o.add("text", "a \"quoted\"\nline").add("nan", std::nan(""));
  o.add("loss", 0.25);  // replaces
  CHECK(o.str() == "{\"event\":\"epoch\",\"loss\":0.25,\"n\":3,\"ok\":true,"
                   "\"text\":\"a \\\"quoted\\\"\\nline\",\"nan\":null}");
  CHECK(train::peakRssMiB() > 1.0);
}

TEST_CASE("Progress: plain lines when not a terminal") {
  std::ostringstream os;
  train::Progress p(os, 0, 1e9);
  p.update({.epoch = 0, .numEpochs = 2, .batch = 1, .numBatches = 3, .loss = 1.0});
  CHECK(os.str().empty());  // rate-limited
  p.update({.epoch = 0, .numEpochs = 2, .batch = 3, .numBatches = 3, .loss = 0.5, .accuracy = 0.75});
  CHECK(os.str().find("epoch 1/2 3/3 loss 0.5000 acc 75.00%") != std::string::npos);
  CHECK(os.str().find('\r') == std::string::npos);
}
