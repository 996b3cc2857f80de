#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/Dataset.h"

namespace mantissa::data {

/// Options of ImageFolder.
struct ImageFolderOptions {
  /// 1 (grey) or 3 (RGB); the decoder converts whatever the file holds.
  int64_t channels = 3;
  /// Resize every image (bilinear) to height x width. When 0, every image must have the size
  /// of the first one (a different size is an error naming the file).
  int64_t height = 0, width = 0;
  /// File extensions read (case-insensitive); other files are ignored.
  std::vector<std::string> extensions = {".png", ".jpg", ".jpeg", ".bmp"};
};

/// A directory with one sub-directory per class (`root/cat/001.png`, `root/dog/x.jpg`), like
/// torchvision's ImageFolder. Classes are the sub-directory names in sorted order (label = rank);
/// files are sorted within each class. Images are decoded lazily in `get` (on the loader thread)
/// with stb_image and returned as F32 CHW in [0, 1]. A file that cannot be decoded gives an Error
/// naming it and the decoder's reason.
class ImageFolder : public Dataset {
 public:
  explicit ImageFolder(const std::string& root, ImageFolderOptions options = {});

  int64_t size() const override { return static_cast<int64_t>(files_.size()); }
  Example get(int64_t index) const override;
  Shape exampleShape() const override { return {options_.channels, height_, width_}; }
  int64_t numClasses() const override { return static_cast<int64_t>(classes_.size()); }
  std::string name() const override;

  /// Sub-directory names in label order.
  const std::vector<std::string>& classNames() const { return classes_; }
  /// Path of sample `index`.
  const std::string& path(int64_t index) const;
  int64_t label(int64_t index) const;

 private:
  /// Fills classes_, files_ and labels_ (may throw std::filesystem_error).
  void listFiles(const std::vector<std::string>& exts);

  std::string root_;
  ImageFolderOptions options_;
  std::vector<std::string> classes_, files_;
  std::vector<int64_t> labels_;
  int64_t height_ = 0, width_ = 0;
};

}  // namespace mantissa::data
