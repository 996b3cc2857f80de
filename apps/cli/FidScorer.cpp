#include "apps/cli/FidScorer.h"

#include <algorithm>
#include <cstdio>

#include "core/autograd/Autograd.h"
#include "data/DataLoader.h"

namespace mantissa::cli {

FidScorer::FidScorer(const std::string& path, const DataSplits& splits, int64_t imageSize,
                     int64_t samples, int64_t batchSize)
    : clf_(loadSavedClassifier(path, "--fid-classifier")),
      mean_(splits.mean),
      std_(splits.std),
      samples_(samples),
      batch_(batchSize) {
  const std::string ctx = "--fid-classifier " + path;
  MANTISSA_CHECK(isResNet(*clf_.model), ctx, ": a checkpoint of model '", clf_.meta.model,
                 "'; the Fréchet distance uses the pooled features of a ResNet classifier "
                 "trained by mantissa-resnet");
  int64_t channels = splits.test->exampleShape()[0];
  MANTISSA_CHECK(clf_.input.channels == channels, ctx, ": the classifier takes ",
                 clf_.input.channels, "-channel images, the GAN's data has ", channels);
  MANTISSA_CHECK(clf_.input.size == 0 || clf_.input.size == imageSize, ctx,
                 ": the classifier was trained on ", clf_.input.size, "x", clf_.input.size,
                 " images, the GAN makes ", imageSize, "x", imageSize);
  MANTISSA_CHECK(samples >= 2 && samples <= splits.test->size(), "--fid-samples ", samples,
                 " (must lie in [2, ", splits.test->size(), "], the test images of the data)");
  if (auto it = clf_.meta.extra.find("dataset");
      it != clf_.meta.extra.end() && it->second != splits.name) {
    std::fprintf(stderr, "note: the --fid-classifier was trained on '%s', the GAN's data is '%s'\n",
                 it->second.c_str(), splits.name.c_str());
  }
  mean_.resize(channels, mean_.front());
  std_.resize(channels, std_.front());
  std::vector<data::Transform> t;
  if (splits.test->exampleShape().back() != imageSize) t.push_back(data::Resize(imageSize));
  t.push_back(data::Normalize(mean_, std_));
  data::DataLoader loader(*splits.test,
                          {.batchSize = batchSize, .transform = data::Compose(std::move(t))});
  autograd::NoGradGuard noGrad;
  clf_.model->eval();
  GaussianAccumulator acc;
  for (const data::Batch& b : loader.epoch(0)) {
    int64_t take = std::min(b.data.size(0), samples_ - acc.count());
    acc.add(penultimateFeatures(*clf_.model, b.data.slice(0, 0, take)));
    if (acc.count() >= samples_) break;
  }
  real_ = acc.stats();
}

double FidScorer::score(nn::Module& generator, int64_t latent, uint64_t seed, uint64_t stream) {
  autograd::NoGradGuard noGrad;
  bool wasTraining = generator.isTraining();
  generator.eval();
  Rng rng(seed, stream);
  GaussianAccumulator acc;
  const int64_t channels = static_cast<int64_t>(mean_.size());
  while (acc.count() < samples_) {
    int64_t n = std::min(batch_, samples_ - acc.count());
    Tensor images = generator.forward(Tensor::randn({n, latent}, rng)).contiguous();
    // Tanh output in [-1, 1] -> pixels in [0, 1] -> the classifier's normalisation.
    float* p = images.data<float>();
    const int64_t plane = images.numel() / (n * channels);
    for (int64_t i = 0; i < n * channels; ++i) {
      int64_t c = i % channels;
      float a = 0.5f / std_[c], b = (0.5f - mean_[c]) / std_[c];
      for (int64_t k = 0; k < plane; ++k) p[i * plane + k] = a * p[i * plane + k] + b;
    }
    acc.add(penultimateFeatures(*clf_.model, images));
  }
  generator.train(wasTraining);
  return frechetDistance(real_, acc.stats());
}

}  // namespace mantissa::cli
