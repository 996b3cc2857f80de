// mantissa-bench-train: time of one training step (forward, cross-entropy, backward, SGD step
// with master snapping) per precision recipe, as a ratio to fp32 measured in the same run.
// Recipes are interleaved round by round so that a noisy, shared machine slows all of them
// alike; the median over rounds is reported.
//   mantissa-bench-train [--model resnet20] [--batch 128] [--rounds 10] [--threads 2]
//                        [--recipes fp32,flexpoint,hbfp8,boosters,s2fp8,fp8,bf16]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <cxxopts.hpp>

#include "apps/common/Precision.h"
#include "core/Rng.h"
#include "core/ops/Loss.h"
#include "core/parallel/ParallelFor.h"
#include "formats/PrecisionSchedule.h"
#include "layers/models/AlexNet.h"
#include "layers/models/CifarResNet.h"
#include "optim/Sgd.h"

using namespace mantissa;

namespace {

std::shared_ptr<nn::Model> makeModel(const std::string& name, Rng& rng) {
  if (name.rfind("resnet", 0) == 0) {
    int depth = std::stoi(name.substr(6));
    return std::make_shared<nn::CifarResNet>(
        nn::CifarResNetOptions{.depth = depth, .inChannels = 1, .numClasses = 10}, rng);
  }
  if (name == "alexnet-small") {
    return std::make_shared<nn::AlexNet>(
        nn::AlexNetOptions{.variant = nn::AlexNetVariant::Small, .inChannels = 1,
                           .numClasses = 10, .inputSize = 28},
        rng);
  }
  throw std::runtime_error("--model '" + name + "' (allowed: resnetN (6n+2), alexnet-small)");
}

struct Run {
  std::string recipe;
  std::shared_ptr<nn::Model> model;
  std::unique_ptr<optim::Sgd> sgd;
  std::vector<double> seconds;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  cxxopts::Options options("mantissa-bench-train", "Training-step time per precision recipe");
  options.add_options()
      ("model", "resnet20, resnet56, resnet110, alexnet-small", cxxopts::value<std::string>()->default_value("resnet20"))
      ("batch", "batch size", cxxopts::value<int64_t>()->default_value("128"))
      ("rounds", "timed rounds (one step per recipe each)", cxxopts::value<int>()->default_value("10"))
      ("threads", "threads (0 = all)", cxxopts::value<int>()->default_value("0"))
      ("recipes", "comma-separated recipes", cxxopts::value<std::vector<std::string>>()->default_value(
          "fp32,flexpoint,hbfp8,boosters,s2fp8,fp8,bf16"));
  try {
    auto r = options.parse(argc, argv);
    if (r["threads"].as<int>() > 0) setNumThreads(r["threads"].as<int>());
    const int64_t batch = r["batch"].as<int64_t>();
    const std::string modelName = r["model"].as<std::string>();
    Rng dataRng(1);
    Tensor x = Tensor::randn({batch, 1, 28, 28}, dataRng);
    std::vector<int64_t> labels(static_cast<size_t>(batch));
    for (auto& l : labels) l = static_cast<int64_t>(dataRng.uniformInt(10));
    Tensor y = Tensor::fromInts(labels);

    std::vector<Run> runs;
    for (const std::string& recipe : r["recipes"].as<std::vector<std::string>>()) {
      Run run;
      run.recipe = recipe;
      Rng rng(7);
      run.model = makeModel(modelName, rng);
      run.sgd = std::make_unique<optim::Sgd>(run.model->namedParameters(),
                                             optim::SgdOptions{.lr = 0.01, .momentum = 0.9, .weightDecay = 5e-4});
      train::applyPrecision(*run.model, run.sgd.get(), formats::PrecisionSchedule::parse(recipe), 0, 2, 1);
      runs.push_back(std::move(run));
    }
    auto step = [&](Run& run) {
      auto t0 = std::chrono::steady_clock::now();
      Tensor loss = crossEntropy(run.model->forward(x), y);
      run.sgd->zeroGrad();
      loss.backward();
      run.sgd->step();
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };
    for (Run& run : runs) {
      for (int i = 0; i < 2; ++i) step(run);  // warm-up: primitive creation, Autoflex init
    }
    for (int round = 0; round < r["rounds"].as<int>(); ++round) {
      for (Run& run : runs) run.seconds.push_back(step(run));
    }
    double base = median(runs.front().seconds);
    std::printf("model,recipe,batch,threads,median_step_ms,images_per_sec,ratio_to_%s\n",
                runs.front().recipe.c_str());
    for (Run& run : runs) {
      double m = median(run.seconds);
      std::printf("%s,%s,%lld,%d,%.2f,%.1f,%.3f\n", modelName.c_str(), run.recipe.c_str(),
                  static_cast<long long>(batch), numThreads(), 1e3 * m, batch / m, m / base);
    }
    std::printf("\n| recipe | step (ms) | images/s | vs %s |\n|---|---:|---:|---:|\n",
                runs.front().recipe.c_str());
    for (Run& run : runs) {
      double m = median(run.seconds);
      std::printf("| %s | %.1f | %.0f | %.2fx |\n", run.recipe.c_str(), 1e3 * m, batch / m, m / base);
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "mantissa-bench-train: error: " << e.what() << '\n';
    return 2;
  }
}
