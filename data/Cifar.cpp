#include "data/Cifar.h"

#include <filesystem>

#include "core/Error.h"
#include "data/detail/CifarParser.h"
#include "data/detail/FileBytes.h"
#include "data/detail/ImageOps.h"

namespace mantissa::data {

namespace {
/// The directory holding the batch files: `dir`, or `dir/<archiveDir>` when that exists (the
/// layout right after extracting the archive).
std::string batchDir(const std::string& dir, const char* archiveDir) {
  std::error_code ec;
  std::filesystem::path sub = std::filesystem::path(dir) / archiveDir;
  return std::filesystem::is_directory(sub, ec) ? sub.string() : dir;
}

std::vector<std::string> inDir(const std::string& dir, const std::vector<std::string>& names,
                               const char* what) {
  std::vector<std::string> files;
  for (const std::string& n : names) files.push_back(detail::findPlainOrGzip(dir, n, what));
  return files;
}
}  // namespace

CifarDataset::CifarDataset(const std::vector<std::string>& files, std::vector<int64_t> labelClasses,
                           int labelIndex, const std::string& name)
    : numClasses_(labelClasses.at(static_cast<size_t>(labelIndex))) {
  const detail::CifarLayout layout{std::move(labelClasses), labelIndex};
  for (const std::string& file : files) {
    bool gz = false;
    std::vector<uint8_t> bytes = detail::readMaybeGzip(file, &gz);
    detail::parseCifar(bytes.data(), bytes.size(), gz ? file + " (after gunzip)" : file, layout,
                       images_, labels_);
  }
  name_ = name + ", " + std::to_string(labels_.size()) + ")";
}

Example CifarDataset::get(int64_t index) const {
  const uint8_t* src = pixels(index);
  Tensor image = Tensor::empty({3, 32, 32});
  detail::bytesToUnit(src, detail::kCifarImageBytes, image.data<float>());
  return {std::move(image), labels_[static_cast<size_t>(index)]};
}

const uint8_t* CifarDataset::pixels(int64_t index) const {
  checkIndex(index);
  return images_.data() + static_cast<size_t>(index) * detail::kCifarImageBytes;
}

int64_t CifarDataset::label(int64_t index) const {
  checkIndex(index);
  return labels_[static_cast<size_t>(index)];
}

Cifar10::Cifar10(const std::string& dir, Split split)
    : CifarDataset(inDir(batchDir(dir, "cifar-10-batches-bin"),
                         split == Split::Train
                             ? std::vector<std::string>{"data_batch_1.bin", "data_batch_2.bin",
                                                        "data_batch_3.bin", "data_batch_4.bin",
                                                        "data_batch_5.bin"}
                             : std::vector<std::string>{"test_batch.bin"},
                         "Cifar10"),
                   {10}, 0, std::string("Cifar10(") + splitName(split)) {}

const std::vector<std::string>& Cifar10::classNames() {
  static const std::vector<std::string> names = {
      "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
  return names;
}

Cifar100::Cifar100(const std::string& dir, Split split, Cifar100Label label)
    : CifarDataset(inDir(batchDir(dir, "cifar-100-binary"),
                         {split == Split::Train ? "train.bin" : "test.bin"}, "Cifar100"),
                   {20, 100}, label == Cifar100Label::Fine ? 1 : 0,
                   std::string("Cifar100(") + splitName(split) +
                       (label == Cifar100Label::Fine ? ", fine" : ", coarse")) {}

}  // namespace mantissa::data
