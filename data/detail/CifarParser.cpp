#include "data/detail/CifarParser.h"

#include "core/Error.h"

namespace mantissa::data::detail {

void parseCifar(const uint8_t* data, size_t size, const std::string& name,
                const CifarLayout& layout, std::vector<uint8_t>& images,
                std::vector<uint8_t>& labels) {
  const size_t record = layout.recordBytes();
  const size_t numLabels = layout.labelClasses.size();
  MANTISSA_CHECK(numLabels >= 1 && layout.labelIndex >= 0 &&
                     static_cast<size_t>(layout.labelIndex) < numLabels,
                 "'", name, "': invalid CIFAR layout");
  MANTISSA_CHECK(size > 0, "'", name, "': empty CIFAR batch file");
  MANTISSA_CHECK(size % record == 0, "'", name, "': truncated CIFAR batch: ", size,
                 " bytes is not a whole number of ", record, "-byte records; the record at offset ",
                 size / record * record, " has only ", size % record, " bytes");
  const size_t count = size / record;
  // Validate everything before appending so a bad file leaves the outputs untouched.
  for (size_t r = 0; r < count; ++r) {
    const uint8_t* rec = data + r * record;
    for (size_t k = 0; k < numLabels; ++k) {
      MANTISSA_CHECK(rec[k] < layout.labelClasses[k], "'", name, "': record ", r, " (byte offset ",
                     r * record + k, "): label ", int{rec[k]}, " is out of range for ",
                     layout.labelClasses[k], " classes");
    }
  }
  images.reserve(images.size() + count * kCifarImageBytes);
  labels.reserve(labels.size() + count);
  for (size_t r = 0; r < count; ++r) {
    const uint8_t* rec = data + r * record;
    labels.push_back(rec[layout.labelIndex]);
    images.insert(images.end(), rec + numLabels, rec + record);
  }
}

}  // namespace mantissa::data::detail
