#pragma once

#include <memory>
#include <string>

#include "data/Dataset.h"
#include "data/Transforms.h"

namespace mantissa::cli {

/// The train and test splits of the dataset named by `--data`, with the normalisation
/// statistics that go with it.
struct DataSplits {
  std::unique_ptr<data::Dataset> train, test;
  std::vector<float> mean, std;
  std::string name;  // "fashion-mnist", "mnist-like", "cifar10"
};

/// Opens `dir`: IDX files (train-images-idx3-ubyte[.gz], ...) or CIFAR-10 binary batches
/// (data_batch_1.bin, ...). Empty = the installed Fashion-MNIST. Errors name the directory
/// and what was looked for.
DataSplits openDataset(const std::string& dir);

/// How the apps turn stored images into network inputs.
struct InputSpec {
  int64_t size = 0;        // resize to size x size (0 = keep)
  int64_t channels = 0;    // 3: grey images are repeated to RGB (0 = keep)
  bool augment = true;     // training only: pad + random crop, random horizontal flip
};

/// Training (augmenting) and test transforms for `splits` and `input`.
data::Transform trainTransform(const DataSplits& splits, const InputSpec& input);
data::Transform testTransform(const DataSplits& splits, const InputSpec& input);

}  // namespace mantissa::cli
