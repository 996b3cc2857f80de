#pragma once

#include <memory>

#include "core/Rng.h"
#include "layers/Sequential.h"
#include "layers/models/Model.h"

namespace mantissa::nn {

/// Which AlexNet to build.
enum class AlexNetVariant {
  /// Krizhevsky et al. 2012 on 227x227 inputs (one tower unless `groups` = 2):
  ///   conv1 96 11x11/4 - relu - LRN - maxpool 3/2 - conv2 256 5x5 pad 2 - relu - LRN -
  ///   maxpool 3/2 - conv3 384 3x3 - relu - conv4 384 3x3 - relu - conv5 256 3x3 - relu -
  ///   maxpool 3/2 - fc6 4096 - relu - dropout - fc7 4096 - relu - dropout - fc8.
  /// 62,378,344 parameters for 3 channels and 1000 classes (60,965,224 with groups = 2).
  Original,
  /// The same design scaled to 28x28 / 32x32 inputs:
  ///   conv1 64 5x5 pad 2 - relu - LRN - maxpool 3/2 - conv2 192 5x5 pad 2 - relu - LRN -
  ///   maxpool 3/2 - conv3 384 3x3 - relu - conv4 256 3x3 - relu - conv5 256 3x3 - relu -
  ///   maxpool 3/2 - fc6 1024 - relu - dropout - fc7 1024 - relu - dropout - fc8.
  /// Maps 32 -> 15 -> 7 -> 3 (fc6 input 2304) or 28 -> 13 -> 6 -> 2 (1024). 5,871,434
  /// parameters for 3x32x32 and 10 classes; 4,557,514 for 1x28x28.
  Small,
};

/// Options of AlexNet.
struct AlexNetOptions {
  AlexNetVariant variant = AlexNetVariant::Original;
  int64_t inChannels = 3;
  int64_t numClasses = 1000;
  /// Input height = width; 0 means the variant's default (227 Original, 32 Small). Other sizes
  /// work as long as the final map is at least 1x1; it fixes the fc6 input size.
  int64_t inputSize = 0;
  /// 2 reproduces the paper's two-GPU split: conv2, conv4 and conv5 see half the channels.
  int64_t groups = 1;
  /// Dropout probability of the two hidden fully-connected layers (the paper's 0.5).
  float dropout = 0.5f;
};

/// AlexNet with overlapping max pooling (3x3, stride 2), local response normalisation after
/// conv1 and conv2 (paper §3.3: n = 5, k = 2, alpha = 1e-4 on the plain sum, which is alpha =
/// 5e-4 in PyTorch's averaged convention, beta = 0.75), ReLU everywhere and dropout on the
/// outputs of fc6 and fc7 (paper §4.2). State names follow torchvision's AlexNet: the
/// convolutional part is `features.<i>`, the classifier `classifier.<i>` (Sequential indices).
/// Weights use PyTorch's default initialisation; each Dropout owns a generator seeded from
/// `rng`.
class AlexNet : public Model {
 public:
  AlexNet(const AlexNetOptions& opts, Rng& rng);

  Tensor forward(const Tensor& x) override;
  /// "alexnet" or "alexnet-small".
  std::string name() const override;
  /// "variant=original, in_channels=3, num_classes=1000, input_size=227, groups=1, dropout=0.5".
  std::string extraRepr() const override;
  const AlexNetOptions& options() const { return opts_; }
  /// Input height/width the model was built for.
  int64_t inputSize() const { return size_; }

 private:
  AlexNetOptions opts_;
  int64_t size_;
  std::shared_ptr<Sequential> features_, classifier_;
};

}  // namespace mantissa::nn
