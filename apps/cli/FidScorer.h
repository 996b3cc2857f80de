#pragma once

#include <cstdint>
#include <string>

#include "apps/cli/DataSetup.h"
#include "apps/cli/FrechetDistance.h"
#include "apps/cli/SavedClassifier.h"
#include "layers/Module.h"

namespace mantissa::cli {

/// An FID-like score for generated images (--fid-classifier): the Fréchet distance between
/// Gaussians fitted to the penultimate features (the globally pooled activations before `fc`)
/// of a ResNet trained by mantissa-resnet, for real test images and for generated ones. It is
/// Heusel et al.'s recipe with a small in-domain classifier in place of Inception-v3, so its
/// values are comparable only between runs scored with the same classifier checkpoint and the
/// same number of samples.
class FidScorer {
 public:
  /// Loads the classifier at `path` (errors name --fid-classifier and the file: not a ResNet,
  /// a channel count or input size other than the GAN's) and the statistics of the first
  /// `samples` test images of `splits`, resized to `imageSize` when they differ.
  FidScorer(const std::string& path, const DataSplits& splits, int64_t imageSize, int64_t samples,
            int64_t batchSize = 250);

  /// The score of `samples` images from `generator` in eval mode (the run's precision), with
  /// latent vectors drawn from Rng(seed, stream): the same noise every epoch.
  double score(nn::Module& generator, int64_t latent, uint64_t seed, uint64_t stream);

  const std::string& classifierModel() const { return clf_.meta.model; }
  int64_t featureDim() const { return real_.dim; }

 private:
  SavedClassifier clf_;
  GaussianStats real_;
  std::vector<float> mean_, std_;
  int64_t samples_, batch_;
};

}  // namespace mantissa::cli
