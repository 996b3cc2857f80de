#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/Shape.h"
#include "core/Tensor.h"

namespace mantissa::data {

/// Which part of a dataset with a fixed train/test partition to read.
enum class Split { Train, Test };

/// "train" / "test".
const char* splitName(Split split);

/// One sample: an F32 image laid out CHW (pixels in [0, 1] for the file-based datasets) and
/// its class label.
struct Example {
  Tensor image;
  int64_t label = 0;
};

/// A random-access collection of labelled samples (flashlight's `Dataset`).
/// `get` must be safe to call concurrently from several threads (the DataLoader reads on its own
/// thread) and must return a tensor the caller may modify (never a view into a cache).
class Dataset {
 public:
  virtual ~Dataset() = default;
  /// Number of samples.
  virtual int64_t size() const = 0;
  /// Sample `index` in [0, size()); throws naming the dataset when out of range.
  virtual Example get(int64_t index) const = 0;
  /// Shape of every image, CHW (e.g. [1, 28, 28] for Fashion-MNIST).
  virtual Shape exampleShape() const = 0;
  /// Labels lie in [0, numClasses()).
  virtual int64_t numClasses() const = 0;
  /// Short description for logs: "FashionMnist(train, 60000)".
  virtual std::string name() const = 0;

 protected:
  /// Throws `name(): index i out of range [0, size())` unless 0 <= index < size().
  void checkIndex(int64_t index) const;
};

/// The samples of `base` at `indices`, in that order (a validation split, a quick subset for a
/// test). Holds a reference: `base` must outlive the subset.
class Subset : public Dataset {
 public:
  /// Every index must lie in [0, base.size()); duplicates are allowed.
  Subset(const Dataset& base, std::vector<int64_t> indices);
  /// Samples [begin, end) of `base`.
  static Subset range(const Dataset& base, int64_t begin, int64_t end);

  int64_t size() const override { return static_cast<int64_t>(indices_.size()); }
  Example get(int64_t index) const override;
  Shape exampleShape() const override { return base_.exampleShape(); }
  int64_t numClasses() const override { return base_.numClasses(); }
  std::string name() const override;
  /// Index into `base` of sample `index`.
  int64_t baseIndex(int64_t index) const;

 private:
  const Dataset& base_;
  std::vector<int64_t> indices_;
};

}  // namespace mantissa::data
