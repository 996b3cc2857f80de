#pragma once

// Helpers for the data tests: a self-cleaning temporary directory and writers for IDX, gzip and
// CIFAR files built byte by byte from the format descriptions (independently of the parsers).

#include <zlib.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

#include "tests/TempDir.h"

namespace mantissa::data::test {

using mantissa::test::TempDir;

inline void writeBytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!f) throw std::runtime_error("cannot write " + path);
}

/// A gzip stream (RFC 1952) of `bytes`, made with zlib's deflate.
inline std::vector<uint8_t> gzipBytes(const std::vector<uint8_t>& bytes) {
  z_stream zs{};
  if (deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::runtime_error("deflateInit2");
  }
  std::vector<uint8_t> out(deflateBound(&zs, bytes.size()) + 64);
  zs.next_in = const_cast<Bytef*>(bytes.data());
  zs.avail_in = static_cast<uInt>(bytes.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  if (deflate(&zs, Z_FINISH) != Z_STREAM_END) throw std::runtime_error("deflate");
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

/// IDX content: magic 00 00 08 <rank>, big-endian uint32 sizes, then `values`.
inline std::vector<uint8_t> idxBytes(const std::vector<uint32_t>& dims,
                                     const std::vector<uint8_t>& values) {
  std::vector<uint8_t> out = {0, 0, 0x08, static_cast<uint8_t>(dims.size())};
  for (uint32_t d : dims) {
    for (int shift : {24, 16, 8, 0}) out.push_back(static_cast<uint8_t>(d >> shift));
  }
  out.insert(out.end(), values.begin(), values.end());
  return out;
}

/// One CIFAR record: label bytes, then 3072 image bytes.
inline std::vector<uint8_t> cifarRecord(const std::vector<uint8_t>& labels,
                                        const std::vector<uint8_t>& image) {
  std::vector<uint8_t> out = labels;
  out.insert(out.end(), image.begin(), image.end());
  return out;
}

}  // namespace mantissa::data::test
