#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace mantissa::data::detail {

/// Bytes of one CIFAR image: 3 planes (R, G, B) of 32x32, row-major.
inline constexpr size_t kCifarImageBytes = 3 * 32 * 32;

/// Record layout of a CIFAR binary batch: `labelBytes` label bytes, then the image.
/// CIFAR-10: one label (< 10). CIFAR-100: coarse (< 20) then fine (< 100) label.
struct CifarLayout {
  std::vector<int64_t> labelClasses;  // class count of each label byte, in file order
  int labelIndex = 0;                 // which label byte is the dataset's target

  size_t recordBytes() const { return labelClasses.size() + kCifarImageBytes; }
  static CifarLayout cifar10() { return {{10}, 0}; }
  static CifarLayout cifar100(bool fine) { return {{20, 100}, fine ? 1 : 0}; }
};

/// Appends the records of one CIFAR binary batch to `images` (kCifarImageBytes each) and
/// `labels` (the selected label). Throws mantissa::Error naming `name` for an empty file, a
/// size that is not a whole number of records (naming the offset of the incomplete record) and
/// a label out of range (naming the record and its byte offset). Nothing is appended on error.
void parseCifar(const uint8_t* data, size_t size, const std::string& name,
                const CifarLayout& layout, std::vector<uint8_t>& images,
                std::vector<uint8_t>& labels);

}  // namespace mantissa::data::detail
