#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/Tensor.h"

namespace mantissa {
class Rng;
}

namespace mantissa::data {

/// A per-sample image transform: F32 CHW in, F32 CHW out. Its only source of randomness is
/// `rng`, which the DataLoader derives from (seed, epoch, sample index), so augmentation is
/// reproducible and resumable. The input is never modified. Every class below is callable and
/// converts to a Transform; so does any lambda with this signature.
using Transform = std::function<Tensor(const Tensor& image, Rng& rng)>;

/// Applies transforms in order, passing the same generator along.
class Compose {
 public:
  explicit Compose(std::vector<Transform> transforms);
  Tensor operator()(const Tensor& image, Rng& rng) const;

 private:
  std::vector<Transform> transforms_;
};

/// (x - mean[c]) / std[c] per channel. `mean` and `std` have one entry per channel, or a single
/// entry used for every channel.
class Normalize {
 public:
  Normalize(std::vector<float> mean, std::vector<float> std);
  Tensor operator()(const Tensor& image, Rng& rng) const;

 private:
  std::vector<float> mean_, invStd_;
};

/// Pads every side with `padding` pixels of value `fill`, then crops a height x width window
/// at a uniformly random offset (the standard CIFAR/Fashion-MNIST augmentation; torchvision's
/// RandomCrop(size, padding)). Draws two integers from the generator.
class RandomCrop {
 public:
  /// A size x size crop.
  explicit RandomCrop(int64_t size, int64_t padding = 0, float fill = 0.f);
  /// A height x width crop.
  static RandomCrop rect(int64_t height, int64_t width, int64_t padding = 0, float fill = 0.f);
  Tensor operator()(const Tensor& image, Rng& rng) const;

 private:
  void validate() const;

  int64_t height_, width_, padding_;
  float fill_;
};

/// Mirrors the image left-right with probability `p`. Draws one uniform from the generator.
class RandomHorizontalFlip {
 public:
  explicit RandomHorizontalFlip(float p = 0.5f);
  Tensor operator()(const Tensor& image, Rng& rng) const;

 private:
  float p_;
};

/// Bilinear resize to height x width with half-pixel centres (PyTorch's
/// F.interpolate(mode="bilinear", align_corners=False), no antialiasing); e.g. 28x28 to 227x227
/// for AlexNet. Deterministic.
class Resize {
 public:
  Resize(int64_t height, int64_t width);
  explicit Resize(int64_t size) : Resize(size, size) {}
  Tensor operator()(const Tensor& image, Rng& rng) const;

 private:
  int64_t height_, width_;
};

/// Repeats a one-channel image into three identical channels (grey images into RGB models).
class GreyToRgb {
 public:
  Tensor operator()(const Tensor& image, Rng& rng) const;
};

}  // namespace mantissa::data
