#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/Dataset.h"

namespace mantissa::data {

/// Where Debian's `dataset-fashion-mnist` package installs Fashion-MNIST.
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

/// Images and labels from a pair of IDX files (the MNIST format: rank-3 unsigned-byte images
/// N x rows x cols, rank-1 unsigned-byte labels), each plain or gzip-compressed (detected from
/// the content). Everything is read and validated in the constructor and kept as bytes; `get`
/// converts one image to F32 [1, rows, cols] in [0, 1]. Errors name the file and the offset:
/// missing file, bad magic, truncation (plain or gzip), image/label count mismatch, labels
/// outside [0, numClasses).
class IdxDataset : public Dataset {
 public:
  IdxDataset(const std::string& imagesPath, const std::string& labelsPath, int64_t numClasses = 10);

  int64_t size() const override { return count_; }
  Example get(int64_t index) const override;
  Shape exampleShape() const override { return {1, rows_, cols_}; }
  int64_t numClasses() const override { return numClasses_; }
  std::string name() const override;

  /// The raw row-major bytes of image `index` (rows * cols of them).
  const uint8_t* pixels(int64_t index) const;
  int64_t label(int64_t index) const;
  const std::string& imagesPath() const { return imagesPath_; }
  const std::string& labelsPath() const { return labelsPath_; }

 protected:
  /// Sets what `name()` returns, e.g. "FashionMnist(train, 60000)".
  void setName(const std::string& prefix);

 private:
  std::string imagesPath_, labelsPath_, name_;
  // The decompressed files as read; the elements start at the offsets after the IDX headers.
  std::vector<uint8_t> images_, labels_;
  size_t imagesOffset_ = 0, labelsOffset_ = 0;
  int64_t count_ = 0, rows_ = 0, cols_ = 0, numClasses_ = 0;
};

/// Fashion-MNIST (Xiao et al. 2017): 60000 training and 10000 test images of 28x28 clothing
/// items in 10 classes. Reads `train-images-idx3-ubyte[.gz]` and friends from `dir`.
class FashionMnist : public IdxDataset {
 public:
  explicit FashionMnist(const std::string& dir = kFashionMnistDir, Split split = Split::Train);
  explicit FashionMnist(Split split) : FashionMnist(kFashionMnistDir, split) {}
  /// "T-shirt/top", "Trouser", ... in label order.
  static const std::vector<std::string>& classNames();
};

/// MNIST handwritten digits (LeCun et al. 1998); same file names and layout as Fashion-MNIST.
class Mnist : public IdxDataset {
 public:
  Mnist(const std::string& dir, Split split = Split::Train);
};

}  // namespace mantissa::data
