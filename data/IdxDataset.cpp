#include "data/IdxDataset.h"

#include "core/Error.h"
#include "data/detail/FileBytes.h"
#include "data/detail/IdxParser.h"
#include "data/detail/ImageOps.h"

namespace mantissa::data {

namespace {
detail::IdxArray readIdx(const std::string& path) {
  bool gz = false;
  std::vector<uint8_t> bytes = detail::readMaybeGzip(path, &gz);
  // Offsets in errors refer to the decompressed content for gzip files; say so in the name.
  return detail::parseIdx(std::move(bytes), gz ? path + " (after gunzip)" : path);
}

std::string idxFile(const std::string& dir, Split split, const char* kind, const char* what) {
  std::string base = std::string(split == Split::Train ? "train" : "t10k") + "-" + kind;
  return detail::findPlainOrGzip(dir, base, what);
}
}  // namespace

IdxDataset::IdxDataset(const std::string& imagesPath, const std::string& labelsPath,
                       int64_t numClasses)
    : imagesPath_(imagesPath), labelsPath_(labelsPath), numClasses_(numClasses) {
  MANTISSA_CHECK(numClasses >= 1 && numClasses <= 256, "IdxDataset: numClasses ", numClasses,
                 " must be in [1, 256] (labels are bytes)");
  detail::IdxArray images = readIdx(imagesPath);
  MANTISSA_CHECK(images.dims.size() == 3, "'", imagesPath,
                 "': expected a rank-3 IDX image file (count, rows, cols), got rank ",
                 images.dims.size());
  // The file-size check bounds count x rows x cols only when count > 0; bound the image size
  // on its own so row/column products never overflow for an empty file.
  constexpr int64_t kMaxSide = 1 << 16;
  MANTISSA_CHECK(images.dims[1] > 0 && images.dims[2] > 0 && images.dims[1] <= kMaxSide &&
                     images.dims[2] <= kMaxSide,
                 "'", imagesPath, "': image size ", images.dims[1], "x", images.dims[2],
                 " at offset 8 outside [1, ", kMaxSide, "]");
  detail::IdxArray labels = readIdx(labelsPath);
  MANTISSA_CHECK(labels.dims.size() == 1, "'", labelsPath,
                 "': expected a rank-1 IDX label file, got rank ", labels.dims.size());
  MANTISSA_CHECK(images.dims[0] == labels.dims[0], "IdxDataset: '", imagesPath, "' holds ",
                 images.dims[0], " images but '", labelsPath, "' holds ", labels.dims[0],
                 " labels");
  detail::checkIdxLabels(labels, numClasses, labelsPath);
  count_ = images.dims[0];
  rows_ = images.dims[1];
  cols_ = images.dims[2];
  images_ = std::move(images.bytes);
  imagesOffset_ = images.dataOffset;
  labels_ = std::move(labels.bytes);
  labelsOffset_ = labels.dataOffset;
  setName("IdxDataset('" + imagesPath + "'");
}

Example IdxDataset::get(int64_t index) const {
  const uint8_t* src = pixels(index);
  Tensor image = Tensor::empty({1, rows_, cols_});
  detail::bytesToUnit(src, static_cast<size_t>(rows_ * cols_), image.data<float>());
  return {std::move(image), labels_[labelsOffset_ + static_cast<size_t>(index)]};
}

const uint8_t* IdxDataset::pixels(int64_t index) const {
  checkIndex(index);
  return images_.data() + imagesOffset_ + static_cast<size_t>(index * rows_ * cols_);
}

int64_t IdxDataset::label(int64_t index) const {
  checkIndex(index);
  return labels_[labelsOffset_ + static_cast<size_t>(index)];
}

std::string IdxDataset::name() const { return name_; }

void IdxDataset::setName(const std::string& prefix) {
  name_ = prefix + ", " + std::to_string(count_) + ")";
}

FashionMnist::FashionMnist(const std::string& dir, Split split)
    : IdxDataset(idxFile(dir, split, "images-idx3-ubyte", "FashionMnist"),
                 idxFile(dir, split, "labels-idx1-ubyte", "FashionMnist"), 10) {
  setName(std::string("FashionMnist(") + splitName(split));
}

const std::vector<std::string>& FashionMnist::classNames() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                                 "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                                 "Bag",         "Ankle boot"};
  return names;
}

Mnist::Mnist(const std::string& dir, Split split)
    : IdxDataset(idxFile(dir, split, "images-idx3-ubyte", "Mnist"),
                 idxFile(dir, split, "labels-idx1-ubyte", "Mnist"), 10) {
  setName(std::string("Mnist(") + splitName(split));
}

}  // namespace mantissa::data
