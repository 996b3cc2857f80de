#include "data/detail/IdxParser.h"

#include <cstdio>
#include <sstream>

#include "core/Error.h"

namespace mantissa::data::detail {

namespace {
constexpr uint8_t kUnsignedByte = 0x08;
constexpr int kMaxRank = 4;

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08X", v);
  return buf;
}

uint32_t bigEndian32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | uint32_t{p[3]};
}
}  // namespace

IdxArray parseIdx(std::vector<uint8_t> bytes, const std::string& name) {
  const size_t size = bytes.size();
  MANTISSA_CHECK(size >= 4, "'", name, "': not an IDX file: ", size,
                 " bytes, shorter than the 4-byte magic number");
  const uint32_t magic = bigEndian32(bytes.data());
  MANTISSA_CHECK(bytes[0] == 0 && bytes[1] == 0, "'", name, "': bad IDX magic number ",
                 hex32(magic), " at offset 0 (expected 0x000008NN)");
  MANTISSA_CHECK(bytes[2] == kUnsignedByte, "'", name, "': IDX element type 0x", std::hex,
                 int{bytes[2]}, std::dec,
                 " at offset 2 is not supported (only 0x08, unsigned byte;", " magic ",
                 hex32(magic), ")");
  const int rank = bytes[3];
  MANTISSA_CHECK(rank >= 1 && rank <= kMaxRank, "'", name, "': IDX rank ", rank,
                 " at offset 3 is not supported (1 to ", kMaxRank, ")");
  const size_t header = 4 + 4 * static_cast<size_t>(rank);
  MANTISSA_CHECK(size >= header, "'", name, "': truncated IDX header: rank ", rank, " needs ",
                 header, " bytes, the file has ", size);

  IdxArray out;
  // Sizes are uint32 each, so the product of up to four of them can overflow 64 bits; saturate
  // at a value no file can reach and let the size comparison below report the mismatch.
  constexpr uint64_t kSaturated = uint64_t{1} << 62;
  uint64_t count = 1;
  std::ostringstream shape;
  for (int d = 0; d < rank; ++d) {
    uint32_t n = bigEndian32(bytes.data() + 4 + 4 * d);
    out.dims.push_back(n);
    shape << (d ? "x" : "") << n;
    count = (n != 0 && count > kSaturated / n) ? kSaturated : count * n;
  }
  const size_t payload = size - header;
  MANTISSA_CHECK(
      count <= payload, "'", name, "': truncated IDX data: the header declares ", shape.str(),
      (count >= kSaturated ? std::string(" (overflowing)") : " = " + std::to_string(count)),
      " bytes from offset ", header, ", but only ", payload, " are present (file ends at offset ",
      size, ")");
  MANTISSA_CHECK(count == payload, "'", name, "': ", payload - count,
                 " unexpected trailing bytes after the IDX data, starting at offset ",
                 header + count, " (header declares ", shape.str(), ")");
  // Not the product of `dims` recomputed later: with a zero size among huge ones that product
  // overflows before reaching zero (found by fuzzing, tests/data/corpus/idx/zero_dim_overflow).
  out.count = static_cast<int64_t>(count);
  out.dataOffset = header;
  out.bytes = std::move(bytes);
  return out;
}

void checkIdxLabels(const IdxArray& labels, int64_t numClasses, const std::string& name) {
  MANTISSA_CHECK(labels.dims.size() == 1, "'", name,
                 "': expected a rank-1 IDX label file, got rank ", labels.dims.size());
  const uint8_t* p = labels.data();
  for (int64_t i = 0; i < labels.dims[0]; ++i) {
    MANTISSA_CHECK(p[i] < numClasses, "'", name, "': label ", int{p[i]}, " of entry ", i,
                   " (byte offset ", labels.dataOffset + static_cast<size_t>(i),
                   ") is out of range for ", numClasses, " classes");
  }
}

}  // namespace mantissa::data::detail
