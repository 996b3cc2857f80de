// mantissa-bench-bf16: the bf16 GEMM path of the dot-product layers (docs/ops.md "bf16 GEMM
// path") on vs off, in one process, as ratios.
//   1. Layers: forward + backward of one quantized Conv2d / ConvTranspose2d / Linear.
//   2. Training: one ResNet step (forward, cross-entropy, backward, SGD with master snapping)
//      per recipe, with the step's peak of extra Storage bytes (activations saved for backward,
//      gradients, workspaces) and how many GEMMs ran on bf16.
// Every measurement alternates on and off step by step (and recipe by recipe), so a shared,
// noisy machine slows both alike; medians over the rounds are reported.
//   mantissa-bench-bf16 [--model resnet20] [--batch 128] [--rounds 5] [--threads 2]
//                       [--recipes fp32,hbfp8,boosters,fp8,bf16] [--no-layers] [--no-train]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <cxxopts.hpp>

#include "apps/common/Precision.h"
#include "core/Rng.h"
#include "core/Storage.h"
#include "core/ops/Elementwise.h"
#include "core/ops/Linalg.h"
#include "core/ops/Loss.h"
#include "core/ops/Reduce.h"
#include "core/parallel/ParallelFor.h"
#include "formats/Policy.h"
#include "formats/PrecisionSchedule.h"
#include "layers/Conv2d.h"
#include "layers/ConvTranspose2d.h"
#include "layers/Linear.h"
#include "layers/models/CifarResNet.h"
#include "optim/Sgd.h"

using namespace mantissa;

namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

/// Times `step` with the path on and off, alternating, `rounds` times each after one warm-up.
struct OnOff {
  std::vector<double> on, off;
  double peakOn = 0, peakOff = 0;  // MiB of extra Storage bytes at the step's peak (max)
  Bf16GemmStats stats;             // of the last step with the path on
};

OnOff timeOnOff(const std::function<void()>& step, int rounds) {
  OnOff r;
  auto once = [&](bool on) {
    setBf16GemmEnabled(on);
    resetBf16GemmStats();
    const size_t live = Storage::liveBytes();
    Storage::resetPeak();
    auto t0 = Clock::now();
    step();
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    const double peak = static_cast<double>(Storage::peakBytes() - live) / (1024.0 * 1024.0);
    (on ? r.peakOn : r.peakOff) = std::max(on ? r.peakOn : r.peakOff, peak);
    if (on) r.stats = bf16GemmStats();
    return s;
  };
  once(true);
  once(false);
  for (int i = 0; i < rounds; ++i) {
    r.on.push_back(once(true));
    r.off.push_back(once(false));
  }
  setBf16GemmEnabled(true);
  return r;
}

void layerBench(int rounds) {
  struct Item {
    std::string name;
    std::shared_ptr<nn::DotProductLayer> layer;
    Shape input;
  };
  Rng rng(1);
  std::vector<Item> items{
      {"conv2d 64->64 3x3, 128x64x8x8", std::make_shared<nn::Conv2d>(64, 64, 3, rng, nn::Conv2dOptions{.padding = 1}), {128, 64, 8, 8}},
      {"conv2d 16->16 3x3, 128x16x28x28", std::make_shared<nn::Conv2d>(16, 16, 3, rng, nn::Conv2dOptions{.padding = 1}), {128, 16, 28, 28}},
      {"conv2d 64->64 3x3, 64x64x32x32", std::make_shared<nn::Conv2d>(64, 64, 3, rng, nn::Conv2dOptions{.padding = 1}), {64, 64, 32, 32}},
      {"convT2d 128->64 4x4 s2, 128x128x7x7", std::make_shared<nn::ConvTranspose2d>(128, 64, 4, rng, nn::ConvTranspose2dOptions{.stride = 2, .padding = 1}), {128, 128, 7, 7}},
      {"linear 1024->1024, batch 512", std::make_shared<nn::Linear>(1024, 1024, rng), {512, 1024}},
  };
  std::printf("layer,format,fp32_path_ms,bf16_path_ms,speedup,bf16_gemms\n");
  for (const char* spec : {"hbfp8", "e4m3"}) {
    for (Item& it : items) {
      auto f = formats::parse(spec);
      it.layer->setPolicy(formats::FormatPolicy{.weight = f, .activation = f, .error = f,
                                                .weightGrad = formats::parse("fp32"),
                                                .master = formats::parse("fp32")});
      Tensor x = Tensor::randn(it.input, rng);
      x.requiresGrad();
      Tensor g;
      auto step = [&] {
        x.zeroGrad();
        it.layer->zeroGrad();
        Tensor y = it.layer->forward(x);
        if (!g.defined()) g = Tensor::randn(y.shape(), rng);
        y.backward({.grad = g});
      };
      OnOff r = timeOnOff(step, rounds);
      const double on = median(r.on), off = median(r.off);
      std::printf("%s,%s,%.2f,%.2f,%.2f,%lld\n", it.name.c_str(), spec, 1e3 * off, 1e3 * on, off / on,
                  static_cast<long long>(r.stats.bf16));
    }
  }
  std::printf("\n");
}

void trainBench(const std::string& model, int64_t batch, int rounds,
                const std::vector<std::string>& recipes) {
  MANTISSA_CHECK(model.rfind("resnet", 0) == 0, "--model: resnetN expected, got '", model, "'");
  const int depth = std::stoi(model.substr(6));
  Rng dataRng(1);
  Tensor x = Tensor::randn({batch, 1, 28, 28}, dataRng);
  std::vector<int64_t> labels(static_cast<size_t>(batch));
  for (auto& l : labels) l = static_cast<int64_t>(dataRng.uniformInt(10));
  Tensor y = Tensor::fromInts(labels);
  struct Row {
    std::string recipe;
    OnOff r;
  };
  std::vector<Row> rows;
  for (const std::string& recipe : recipes) {
    Rng rng(7);
    auto net = std::make_shared<nn::CifarResNet>(
        nn::CifarResNetOptions{.depth = depth, .inChannels = 1, .numClasses = 10}, rng);
    optim::Sgd sgd(net->namedParameters(), optim::SgdOptions{.lr = 0.01, .momentum = 0.9, .weightDecay = 5e-4});
    train::applyPrecision(*net, &sgd, formats::PrecisionSchedule::parse(recipe), 0, 2, 1);
    auto step = [&] {
      Tensor loss = crossEntropy(net->forward(x), y);
      sgd.zeroGrad();
      loss.backward();
      sgd.step();
    };
    rows.push_back({recipe, timeOnOff(step, rounds)});
  }
  std::printf("model,recipe,batch,threads,fp32_path_ms,bf16_path_ms,speedup,peak_fp32_path_mib,peak_bf16_path_mib,bf16_gemms,inexact,no_kernel\n");
  for (const Row& row : rows) {
    const double on = median(row.r.on), off = median(row.r.off);
    std::printf("%s,%s,%lld,%d,%.1f,%.1f,%.3f,%.1f,%.1f,%lld,%lld,%lld\n", model.c_str(),
                row.recipe.c_str(), static_cast<long long>(batch), numThreads(), 1e3 * off,
                1e3 * on, off / on, row.r.peakOff, row.r.peakOn,
                static_cast<long long>(row.r.stats.bf16), static_cast<long long>(row.r.stats.inexact),
                static_cast<long long>(row.r.stats.noKernel));
  }
  std::printf("\n| recipe | step, FP32 GEMMs (ms) | step, bf16 path (ms) | speed-up | peak MiB FP32 / bf16 path | GEMMs on bf16 |\n|---|---:|---:|---:|---:|---:|\n");
  for (const Row& row : rows) {
    const double on = median(row.r.on), off = median(row.r.off);
    std::printf("| %s | %.0f | %.0f | %.2fx | %.0f / %.0f | %lld |\n", row.recipe.c_str(), 1e3 * off,
                1e3 * on, off / on, row.r.peakOff, row.r.peakOn,
                static_cast<long long>(row.r.stats.bf16));
  }
}

}  // namespace

int main(int argc, char** argv) {
  cxxopts::Options options("mantissa-bench-bf16", "bf16 GEMM path on vs off");
  options.add_options()
      ("model", "resnetN (6n+2)", cxxopts::value<std::string>()->default_value("resnet20"))
      ("batch", "batch size", cxxopts::value<int64_t>()->default_value("128"))
      ("rounds", "timed rounds (one on and one off step each)", cxxopts::value<int>()->default_value("5"))
      ("threads", "threads (0 = all)", cxxopts::value<int>()->default_value("0"))
      ("recipes", "comma-separated recipes", cxxopts::value<std::vector<std::string>>()->default_value(
          "fp32,hbfp8,boosters,fp8,bf16"))
      ("no-layers", "skip the single-layer timings")
      ("no-train", "skip the training-step timings")
      ("h,help", "this help");
  try {
    auto r = options.parse(argc, argv);
    if (r.count("help")) {
      std::cout << options.help() << '\n';
      return 0;
    }
    if (r["threads"].as<int>() > 0) setNumThreads(r["threads"].as<int>());
    setBf16GemmEnabled(true);  // the benchmark switches it itself, whatever MANTISSA_BF16_GEMM says
    if (!bf16GemmEnabled()) {
      std::cerr << "mantissa-bench-bf16: this CPU has no AVX-512 BF16, the path is never taken; "
                   "both columns measure FP32\n";
    }
    if (!r.count("no-layers")) layerBench(r["rounds"].as<int>());
    if (!r.count("no-train")) {
      trainBench(r["model"].as<std::string>(), r["batch"].as<int64_t>(), r["rounds"].as<int>(),
                 r["recipes"].as<std::vector<std::string>>());
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "mantissa-bench-bf16: error: " << e.what() << '\n';
    return 2;
  }
}
