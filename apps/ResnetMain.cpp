// mantissa-resnet: trains a ResNet classifier (CIFAR-style ResNet-20/32/44/56/110 by default,
// ImageNet-style ResNet-18/34/50 with --variant imagenet) in any precision recipe.
//   mantissa-resnet --precision flexpoint --epochs 2 --checkpoint runs/r20.h5 --log runs/r20.jsonl
#include <iostream>

#include "apps/cli/ClassifierRun.h"
#include "layers/models/CifarResNet.h"
#include "layers/models/ResNet.h"

using namespace mantissa;

namespace {

int run(int argc, char** argv) {
  cxxopts::Options options("mantissa-resnet", "Train a ResNet in a low-precision format");
  cli::addCommonOptions(options);
  options.add_options("Model")
      ("depth", "CIFAR variant: 20, 32, 44, 56, 110 (6n+2); ImageNet variant: 18, 34, 50",
       cxxopts::value<int>()->default_value("20"))
      ("variant", "cifar (3 stages of 16/32/64 channels) or imagenet (torchvision ResNet)",
       cxxopts::value<std::string>()->default_value("cifar"))
      ("shortcut", "CIFAR variant: A (zero-padded identity) or B (1x1 projection)",
       cxxopts::value<std::string>()->default_value("A"));
  auto result = options.parse(argc, argv);
  if (result.count("help")) {
    std::cout << options.help() << '\n';
    return 0;
  }
  cli::CommonOptions opts = cli::parseCommon(result, argc, argv);
  if (!result.count("lr")) opts.lr = 0.1;
  int depth = result["depth"].as<int>();
  std::string variant = result["variant"].as<std::string>();
  std::string shortcut = result["shortcut"].as<std::string>();
  if (variant != "cifar" && variant != "imagenet") {
    throw cli::UsageError("--variant '" + variant + "' (allowed: cifar, imagenet)");
  }
  if (shortcut != "A" && shortcut != "B") {
    throw cli::UsageError("--shortcut '" + shortcut + "' (allowed: A, B)");
  }
  if (variant == "cifar" && (depth < 8 || (depth - 2) % 6 != 0)) {
    throw cli::UsageError("--depth " + std::to_string(depth) +
                          " for the CIFAR variant (allowed: 6n+2, e.g. 20, 32, 44, 56, 110)");
  }
  if (variant == "imagenet" && depth != 18 && depth != 34 && depth != 50) {
    throw cli::UsageError("--depth " + std::to_string(depth) +
                          " for the ImageNet variant (allowed: 18, 34, 50)");
  }

  cli::ClassifierSpec spec;
  spec.app = "mantissa-resnet";
  spec.input = {.size = variant == "imagenet" ? 32 : 0, .channels = 0, .augment = true};
  spec.makeModel = [&](int64_t channels, int64_t classes, Rng& rng) -> std::shared_ptr<nn::Model> {
    if (variant == "cifar") {
      return std::make_shared<nn::CifarResNet>(
          nn::CifarResNetOptions{.depth = depth, .inChannels = channels, .numClasses = classes,
                                 .shortcut = shortcut == "A" ? nn::ShortcutType::A
                                                             : nn::ShortcutType::B},
          rng);
    }
    return std::make_shared<nn::ResNet>(
        nn::ResNetOptions{.depth = depth, .inChannels = channels, .numClasses = classes}, rng);
  };
  return cli::runClassifier(opts, spec);
}

}  // namespace

int main(int argc, char** argv) { return cli::runMain("mantissa-resnet", run, argc, argv); }
