#include "apps/cli/DataSetup.h"

#include <filesystem>

#include "core/Error.h"
#include "data/Cifar.h"
#include "data/IdxDataset.h"

namespace mantissa::cli {

namespace fs = std::filesystem;

namespace {
bool hasEither(const fs::path& dir, const std::string& name) {
  return fs::exists(dir / name) || fs::exists(dir / (name + ".gz"));
}
}  // namespace

DataSplits openDataset(const std::string& dirIn) {
  std::string dir = dirIn.empty() ? std::string(data::kFashionMnistDir) : dirIn;
  MANTISSA_CHECK(fs::is_directory(dir), "--data: '", dir, "' is not a directory",
                 dirIn.empty() ? " (install Debian's dataset-fashion-mnist package)" : "");
  DataSplits s;
  if (hasEither(dir, "train-images-idx3-ubyte")) {
    // Fashion-MNIST and MNIST share the IDX layout; the statistics differ slightly, and the
    // Fashion-MNIST ones are used for both (per-channel normalisation only rescales inputs).
    s.train = std::make_unique<data::FashionMnist>(dir, data::Split::Train);
    s.test = std::make_unique<data::FashionMnist>(dir, data::Split::Test);
    s.mean = {0.2860f};
    s.std = {0.3530f};
    s.name = dirIn.empty() ? "fashion-mnist" : "idx:" + dir;
  } else if (fs::exists(fs::path(dir) / "data_batch_1.bin")) {
    s.train = std::make_unique<data::Cifar10>(dir, data::Split::Train);
    s.test = std::make_unique<data::Cifar10>(dir, data::Split::Test);
    s.mean = {0.4914f, 0.4822f, 0.4465f};
    s.std = {0.2470f, 0.2435f, 0.2616f};
    s.name = "cifar10";
  } else {
    MANTISSA_CHECK(false, "--data: '", dir, "' holds neither IDX files "
                   "(train-images-idx3-ubyte[.gz], ...) nor CIFAR-10 batches (data_batch_1.bin, ...)");
  }
  return s;
}

data::Transform trainTransform(const DataSplits& splits, const InputSpec& input) {
  std::vector<data::Transform> t;
  Shape shape = splits.train->exampleShape();
  int64_t side = shape.back();
  if (input.augment) {
    // 28x28 images get 2 pixels of padding, 32x32 the usual 4 (He et al. 2016).
    t.push_back(data::RandomCrop(side, side <= 28 ? 2 : 4));
    t.push_back(data::RandomHorizontalFlip(0.5f));
  }
  if (input.size > 0 && input.size != side) t.push_back(data::Resize(input.size));
  std::vector<float> mean = splits.mean, std = splits.std;
  if (input.channels == 3 && shape[0] == 1) {
    t.push_back(data::GreyToRgb());
    mean.assign(3, mean[0]);
    std.assign(3, std[0]);
  }
  t.push_back(data::Normalize(mean, std));
  return data::Compose(std::move(t));
}

data::Transform testTransform(const DataSplits& splits, const InputSpec& input) {
  InputSpec noAugment = input;
  noAugment.augment = false;
  return trainTransform(splits, noAugment);
}

}  // namespace mantissa::cli
