// mantissa-alexnet: AlexNet (Krizhevsky et al. 2012) through the shared classifier run.
#include <iostream>

#include "apps/cli/Apps.h"
#include "apps/cli/ClassifierRun.h"
#include "layers/models/AlexNet.h"

namespace mantissa::cli {

int alexnetApp(int argc, char** argv) {
  cxxopts::Options options("mantissa-alexnet", "Train AlexNet in a low-precision format");
  addCommonOptions(options);
  options.add_options("Model")(
      "variant",
      "original (227x227 RGB inputs: images are resized, grey repeated to RGB) or "
      "small (the same design for 28x28 / 32x32 inputs, images as they are)",
      cxxopts::value<std::string>()->default_value("small"))(
      "groups", "1, or 2 for the paper's two-GPU split of conv2, conv4 and conv5",
      cxxopts::value<int64_t>()->default_value("1"))("dropout",
                                                     "dropout probability after fc6 and fc7",
                                                     cxxopts::value<float>()->default_value("0.5"));
  auto result = options.parse(argc, argv);
  if (result.count("help")) {
    std::cout << options.help() << '\n';
    return 0;
  }
  CommonOptions opts = parseCommon(result, argc, argv);
  if (!result.count("lr")) opts.lr = 0.01;  // the paper's initial rate
  std::string variant = result["variant"].as<std::string>();
  int64_t groups = result["groups"].as<int64_t>();
  float dropout = result["dropout"].as<float>();
  if (variant != "original" && variant != "small") {
    throw UsageError("--variant '" + variant + "' (allowed: original, small)");
  }
  if (groups != 1 && groups != 2) {
    throw UsageError("--groups " + std::to_string(groups) + " (allowed: 1, 2)");
  }
  if (!(dropout >= 0.f && dropout < 1.f)) {
    throw UsageError("--dropout " + std::to_string(dropout) + " (must lie in [0, 1))");
  }
  const bool original = variant == "original";

  ClassifierSpec spec;
  spec.app = "mantissa-alexnet";
  spec.input = original ? InputSpec{.size = 227, .channels = 3, .augment = true}
                        : InputSpec{.size = 0, .channels = 0, .augment = true};
  spec.makeModelForSize = [&](int64_t channels, int64_t classes, int64_t size,
                              Rng& rng) -> std::shared_ptr<nn::Model> {
    return std::make_shared<nn::AlexNet>(
        nn::AlexNetOptions{
            .variant = original ? nn::AlexNetVariant::Original : nn::AlexNetVariant::Small,
            .inChannels = channels,
            .numClasses = classes,
            .inputSize = size,
            .groups = groups,
            .dropout = dropout},
        rng);
  };
  return runClassifier(opts, spec);
}

}  // namespace mantissa::cli
