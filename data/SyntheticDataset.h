#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/Shape.h"
#include "data/Dataset.h"

namespace mantissa::data {

/// Options of SyntheticDataset.
struct SyntheticOptions {
  int64_t size = 1024;
  int64_t numClasses = 10;
  /// Shape of one sample, CHW (any rank >= 1 is accepted).
  Shape shape = {1, 8, 8};
  /// Standard deviation of the Gaussian noise added to the class pattern.
  float noise = 0.5f;
  uint64_t seed = 0;
};

/// Labelled samples generated on the fly, for tests and benchmarks: sample i has label
/// i % numClasses and equals that class's pattern (entries uniform in [-1, 1], drawn once from
/// the seed) plus N(0, noise^2) noise drawn from Rng(seed).fork(i). Every sample is a pure
/// function of (options, i), and with the default noise the classes are separable enough for a
/// tiny network to learn them in a few dozen steps.
class SyntheticDataset : public Dataset {
 public:
  explicit SyntheticDataset(SyntheticOptions options = {});

  int64_t size() const override { return options_.size; }
  Example get(int64_t index) const override;
  Shape exampleShape() const override { return options_.shape; }
  int64_t numClasses() const override { return options_.numClasses; }
  std::string name() const override;

  /// The noise-free pattern of class `label`, of shape exampleShape().
  Tensor pattern(int64_t label) const;

 private:
  SyntheticOptions options_;
  int64_t numel_ = 0;
  std::vector<float> patterns_;  // numClasses x numel
};

}  // namespace mantissa::data
