#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/Dataset.h"

namespace mantissa::data {

/// Images and labels from CIFAR binary batch files (Krizhevsky 2009, "binary version"): records
/// of label byte(s) followed by 3x32x32 bytes (R, G, B planes). `get` returns F32 [3, 32, 32] in
/// [0, 1]. Errors name the file and the offset: missing file, empty file, a size that is not a
/// whole number of records, a label out of range. Files may also be gzip-compressed.
class CifarDataset : public Dataset {
 public:
  int64_t size() const override { return static_cast<int64_t>(labels_.size()); }
  Example get(int64_t index) const override;
  Shape exampleShape() const override { return {3, 32, 32}; }
  int64_t numClasses() const override { return numClasses_; }
  std::string name() const override { return name_; }

  /// The raw CHW bytes of image `index` (3072 of them).
  const uint8_t* pixels(int64_t index) const;
  int64_t label(int64_t index) const;

 protected:
  /// Reads `files` (in order) with `labelClasses` label bytes per record, keeping label byte
  /// `labelIndex` as the target.
  CifarDataset(const std::vector<std::string>& files, std::vector<int64_t> labelClasses,
               int labelIndex, const std::string& name);

 private:
  std::vector<uint8_t> images_, labels_;
  int64_t numClasses_ = 0;
  std::string name_;
};

/// CIFAR-10: `data_batch_1.bin` ... `data_batch_5.bin` (50000 training images) and
/// `test_batch.bin` (10000), 10 classes. `dir` is the directory holding the files (the
/// archive's `cifar-10-batches-bin`; when `dir` contains that sub-directory it is used).
class Cifar10 : public CifarDataset {
 public:
  Cifar10(const std::string& dir, Split split = Split::Train);
  /// "airplane", "automobile", ... in label order.
  static const std::vector<std::string>& classNames();
};

/// Which of CIFAR-100's two labels is the target.
enum class Cifar100Label { Fine, Coarse };

/// CIFAR-100: `train.bin` (50000) and `test.bin` (10000); each record carries a coarse label
/// (20 superclasses) and a fine label (100 classes); both are validated.
class Cifar100 : public CifarDataset {
 public:
  Cifar100(const std::string& dir, Split split = Split::Train,
           Cifar100Label label = Cifar100Label::Fine);
};

}  // namespace mantissa::data
