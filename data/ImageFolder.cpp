#include "data/ImageFolder.h"

#include <stb/stb_image.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <memory>

#include "core/Error.h"
#include "data/detail/FileBytes.h"
#include "data/detail/ImageOps.h"

namespace mantissa::data {

namespace fs = std::filesystem;

namespace {
std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

/// stb's buffer-length argument is an int: larger files cannot be handed to it in one piece.
int stbLength(const std::vector<uint8_t>& bytes, const std::string& path) {
  MANTISSA_CHECK(bytes.size() <= static_cast<size_t>(INT32_MAX), "ImageFolder: '", path,
                 "' is too large to decode (", bytes.size(), " bytes)");
  return static_cast<int>(bytes.size());
}
}  // namespace

ImageFolder::ImageFolder(const std::string& root, ImageFolderOptions options)
    : root_(root), options_(std::move(options)) {
  MANTISSA_CHECK(options_.channels == 1 || options_.channels == 3, "ImageFolder: channels ",
                 options_.channels, " must be 1 or 3");
  MANTISSA_CHECK(options_.height >= 0 && options_.width >= 0 &&
                     (options_.height == 0) == (options_.width == 0),
                 "ImageFolder: height ", options_.height, " and width ", options_.width,
                 " must both be 0 (keep size) or both positive");
  std::error_code ec;
  MANTISSA_CHECK(fs::is_directory(root, ec), "ImageFolder: missing directory '", root, "'");
  std::vector<std::string> exts;
  for (const std::string& e : options_.extensions) exts.push_back(lower(e));

  try {
    listFiles(exts);
  } catch (const fs::filesystem_error& e) {
    // Unreadable directories surface as mantissa::Error like every other bad input.
    MANTISSA_CHECK(false, "ImageFolder: cannot list '", e.path1().string(),
                   "': ", e.code().message());
  }
  std::string extList;
  for (const std::string& e : options_.extensions) extList += (extList.empty() ? "" : " ") + e;
  MANTISSA_CHECK(!files_.empty(), "ImageFolder: no image files under '", root,
                 "' (extensions read: ", extList, ")");

  if (options_.height > 0) {
    height_ = options_.height;
    width_ = options_.width;
  } else {
    // The first image fixes the size; reading its header is enough.
    std::vector<uint8_t> bytes = detail::readFile(files_[0]);
    int w = 0, h = 0, comp = 0;
    MANTISSA_CHECK(stbi_info_from_memory(bytes.data(), stbLength(bytes, files_[0]), &w, &h, &comp),
                   "ImageFolder: cannot decode '", files_[0], "': ", stbi_failure_reason());
    height_ = h;
    width_ = w;
  }
}

void ImageFolder::listFiles(const std::vector<std::string>& exts) {
  for (const fs::directory_entry& entry : fs::directory_iterator(root_)) {
    if (entry.is_directory()) classes_.push_back(entry.path().filename().string());
  }
  std::sort(classes_.begin(), classes_.end());
  MANTISSA_CHECK(!classes_.empty(), "ImageFolder: '", root_,
                 "' has no sub-directories (one per class expected)");
  for (size_t c = 0; c < classes_.size(); ++c) {
    std::vector<std::string> inClass;
    for (const fs::directory_entry& entry : fs::directory_iterator(fs::path(root_) / classes_[c])) {
      if (!entry.is_regular_file()) continue;
      std::string ext = lower(entry.path().extension().string());
      if (std::find(exts.begin(), exts.end(), ext) != exts.end()) {
        inClass.push_back(entry.path().string());
      }
    }
    std::sort(inClass.begin(), inClass.end());
    for (std::string& f : inClass) {
      files_.push_back(std::move(f));
      labels_.push_back(static_cast<int64_t>(c));
    }
  }
}

Example ImageFolder::get(int64_t index) const {
  checkIndex(index);
  const std::string& file = files_[static_cast<size_t>(index)];
  std::vector<uint8_t> bytes = detail::readFile(file);
  int w = 0, h = 0, comp = 0;
  const int channels = static_cast<int>(options_.channels);
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
      stbi_load_from_memory(bytes.data(), stbLength(bytes, file), &w, &h, &comp, channels),
      &stbi_image_free);
  MANTISSA_CHECK(pixels != nullptr, "ImageFolder: cannot decode '", file,
                 "': ", stbi_failure_reason());
  Tensor image = Tensor::empty({options_.channels, height_, width_});
  if (h == height_ && w == width_) {
    detail::interleavedToPlanar(pixels.get(), channels, h, w, image.data<float>());
  } else {
    MANTISSA_CHECK(options_.height > 0, "ImageFolder: '", file, "' is ", w, "x", h,
                   " but the first image is ", width_, "x", height_,
                   " (set ImageFolderOptions height/width to resize)");
    std::vector<float> planar(static_cast<size_t>(channels) * h * w);
    detail::interleavedToPlanar(pixels.get(), channels, h, w, planar.data());
    detail::resizeBilinear(planar.data(), channels, h, w, image.data<float>(), height_, width_);
  }
  return {std::move(image), labels_[static_cast<size_t>(index)]};
}

std::string ImageFolder::name() const {
  return "ImageFolder('" + root_ + "', " + std::to_string(files_.size()) + ")";
}

const std::string& ImageFolder::path(int64_t index) const {
  checkIndex(index);
  return files_[static_cast<size_t>(index)];
}

int64_t ImageFolder::label(int64_t index) const {
  checkIndex(index);
  return labels_[static_cast<size_t>(index)];
}

}  // namespace mantissa::data
