// mantissa-gan: WGAN (Arjovsky et al. 2017, as trained in the Flexpoint paper) or DCGAN on
// Fashion-MNIST-like data, in any precision recipe.
#include <iostream>

#include "apps/cli/Apps.h"
#include "apps/cli/GanRun.h"

namespace mantissa::cli {

int ganApp(int argc, char** argv) {
  cxxopts::Options options("mantissa-gan", "Train a GAN (WGAN or DCGAN) in a low-precision format");
  addCommonOptions(options);
  options.add_options("GAN")(
      "gan", "wgan (weight clipping, RMSprop lr 5e-5) or dcgan (Adam 2e-4, betas 0.5/0.999)",
      cxxopts::value<std::string>()->default_value("wgan"))(
      "latent", "length of the noise vector z", cxxopts::value<int64_t>()->default_value("100"))(
      "width", "feature maps of the generator's last and the critic's first layer (ngf = ndf)",
      cxxopts::value<int64_t>()->default_value("64"))(
      "n-critic", "WGAN: critic steps per generator step",
      cxxopts::value<int64_t>()->default_value("5"))(
      "clip", "WGAN: critic weights are clipped to [-c, c]",
      cxxopts::value<double>()->default_value("0.01"))(
      "image-size", "28 or 64 (default: the data's size; other sizes are resized to it)",
      cxxopts::value<int64_t>()->default_value("0"))(
      "samples", "directory for the per-epoch PNG grids of 64 samples ('' = none)",
      cxxopts::value<std::string>()->default_value("samples"))(
      "fid-classifier",
      "mantissa-resnet checkpoint whose pooled features give the per-epoch "
      "Frechet distance (an FID-like score, docs/apps.md)",
      cxxopts::value<std::string>()->default_value(""))(
      "fid-samples", "real and generated images in the Frechet distance",
      cxxopts::value<int64_t>()->default_value("2000"));
  auto result = options.parse(argc, argv);
  if (result.count("help")) {
    std::cout << options.help() << '\n';
    return 0;
  }
  CommonOptions opts = parseCommon(result, argc, argv);
  GanOptions gan;
  std::string type = result["gan"].as<std::string>();
  if (type != "wgan" && type != "dcgan") {
    throw UsageError("--gan '" + type + "' (allowed: wgan, dcgan)");
  }
  gan.type = type == "wgan" ? GanType::Wgan : GanType::Dcgan;
  // The papers' settings, unless given: the learning rates, and a constant rate.
  if (!result.count("lr")) opts.lr = gan.type == GanType::Wgan ? 5e-5 : 2e-4;
  if (!result.count("lr-schedule")) opts.lrSchedule = "constant";
  gan.latent = result["latent"].as<int64_t>();
  gan.width = result["width"].as<int64_t>();
  gan.nCritic = result["n-critic"].as<int64_t>();
  gan.clip = result["clip"].as<double>();
  gan.imageSize = result["image-size"].as<int64_t>();
  gan.samplesDir = result["samples"].as<std::string>();
  gan.fidClassifier = result["fid-classifier"].as<std::string>();
  gan.fidSamples = result["fid-samples"].as<int64_t>();
  auto positive = [](int64_t v, const char* name) {
    if (v < 1) throw UsageError(std::string(name) + " " + std::to_string(v) + " (must be >= 1)");
  };
  positive(gan.latent, "--latent");
  positive(gan.width, "--width");
  positive(gan.nCritic, "--n-critic");
  if (!(gan.clip > 0)) throw UsageError("--clip " + std::to_string(gan.clip) + " (must be > 0)");
  if (gan.imageSize != 0 && gan.imageSize != 28 && gan.imageSize != 64) {
    throw UsageError("--image-size " + std::to_string(gan.imageSize) + " (allowed: 28, 64)");
  }
  if (gan.fidSamples < 2) {
    throw UsageError("--fid-samples " + std::to_string(gan.fidSamples) + " (must be >= 2)");
  }
  return runGan(opts, gan);
}

}  // namespace mantissa::cli
