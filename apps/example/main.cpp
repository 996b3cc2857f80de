// A user-defined CNN trained from C++ against the installed library, in any precision recipe
// (argv[1]: fp32, flexpoint, hbfp8, boosters, s2fp8, fp8, bf16; default hbfp8).
#include <cstdio>
#include <string>

#include "core/ops/Elementwise.h"
#include "core/ops/Loss.h"
#include "core/ops/Pool.h"
#include "core/ops/Reduce.h"
#include "data/Data.h"
#include "layers/Layers.h"
#include "optim/Sgd.h"

using namespace mantissa;
namespace nn = mantissa::nn;

class SmallCnn : public nn::Module {
 public:
  explicit SmallCnn(Rng& rng) : nn::Module("SmallCnn") {
    conv1_ = registerModule(
        "conv1", std::make_shared<nn::Conv2d>(1, 8, 3, rng, nn::Conv2dOptions{.padding = 1}));
    bn1_ = registerModule("bn1", std::make_shared<nn::BatchNorm2d>(8));
    conv2_ = registerModule(
        "conv2", std::make_shared<nn::Conv2d>(8, 16, 3, rng, nn::Conv2dOptions{.padding = 1}));
    fc_ = registerModule("fc", std::make_shared<nn::Linear>(16 * 4 * 4, 4, rng));
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = maxPool2d(relu(bn1_->forward(conv1_->forward(x))), 2);  // [N, 8, 4, 4]
    return fc_->forward(relu(conv2_->forward(h)).flatten(1));
  }

 private:
  std::shared_ptr<nn::Conv2d> conv1_, conv2_;
  std::shared_ptr<nn::BatchNorm2d> bn1_;
  std::shared_ptr<nn::Linear> fc_;
};

int main(int argc, char** argv) {
  Rng rng(1);
  SmallCnn model(rng);
  model.setPolicy(formats::FormatPolicy::recipe(argc > 1 ? argv[1] : "hbfp8"));
  data::SyntheticDataset train({.size = 1024, .numClasses = 4, .shape = {1, 8, 8}, .seed = 3});
  data::DataLoader loader(train, {.batchSize = 32, .shuffle = true, .seed = 7});
  optim::Sgd sgd(model.namedParameters(), {.lr = 0.05, .momentum = 0.9});
  for (auto& [name, m] : model.namedMasterFormats())
    sgd.setMasterFormat(name, m.format, m.blockAxis);
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    double lossSum = 0, correct = 0;
    for (const data::Batch& b : loader.epoch(epoch)) {
      Tensor logits = model.forward(b.data);
      Tensor loss = crossEntropy(logits, b.target);
      sgd.zeroGrad();
      loss.backward();
      sgd.step();
      lossSum += loss.item() * b.target.numel();
      correct += sum(equal(argmax(logits, 1).to(DType::F32), b.target.to(DType::F32))).item();
    }
    std::printf("epoch %lld  loss %.4f  accuracy %.3f\n", static_cast<long long>(epoch),
                lossSum / train.size(), correct / train.size());
  }
  std::printf("%s", model.describePrecision().c_str());
}
