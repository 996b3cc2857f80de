#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace mantissa::data::detail {

/// An IDX array (LeCun's MNIST file format) of unsigned bytes: a 4-byte magic number
/// 00 00 08 <rank>, `rank` big-endian uint32 sizes, then the elements in row-major order.
struct IdxArray {
  std::vector<uint8_t> bytes;  // the whole (decompressed) file
  size_t dataOffset = 0;       // byte offset of the first element in `bytes`
  std::vector<int64_t> dims;   // sizes, outermost first
  int64_t count = 0;           // number of elements (validated against the file size)
  const uint8_t* data() const { return bytes.data() + dataOffset; }
  int64_t numel() const { return count; }
};

/// Parses the IDX content `bytes` (already decompressed). Only element type 0x08 (unsigned byte)
/// and ranks 1 to 4 are accepted. Every error is a mantissa::Error naming `name` and the byte
/// offset concerned: short or wrong magic, unsupported type or rank, truncated header, data
/// shorter than the header declares, trailing bytes after the data.
IdxArray parseIdx(std::vector<uint8_t> bytes, const std::string& name);

/// Checks that every element of a rank-1 label array is below `numClasses`; the error names
/// `name`, the entry and its byte offset.
void checkIdxLabels(const IdxArray& labels, int64_t numClasses, const std::string& name);

}  // namespace mantissa::data::detail
