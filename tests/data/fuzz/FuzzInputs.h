#pragma once

// What the fuzzers feed to the IDX and CIFAR parsers; the corpus test runs the same functions
// over tests/data/corpus/ so every input the fuzzers kept stays a regression test.

#include <cstddef>
#include <cstdint>
#include <exception>
#include <vector>

#include "core/Error.h"
#include "data/detail/CifarParser.h"
#include "data/detail/FileBytes.h"
#include "data/detail/IdxParser.h"

namespace mantissa::data::fuzz {

/// Caps decompression so a small input cannot request gigabytes.
inline constexpr size_t kFuzzMaxBytes = size_t{64} << 20;

/// Bytes (gunzipped when they look like gzip) through the IDX parser and label check, then a
/// read of every element so the sanitizers see any out-of-bounds access. Throws mantissa::Error
/// on bad input, as the datasets do.
inline uint64_t parseIdxInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> bytes;
  if (detail::isGzip(data, size)) {
    bytes = detail::gunzip(data, size, "fuzz.gz", kFuzzMaxBytes);
  } else {
    bytes.assign(data, data + size);
  }
  detail::IdxArray a = detail::parseIdx(std::move(bytes), "fuzz");
  if (a.dims.size() == 1) detail::checkIdxLabels(a, 10, "fuzz");
  uint64_t sum = 0;
  const int64_t n = a.numel();
  for (int64_t i = 0; i < n; ++i) sum += a.data()[i];
  return sum;
}

/// Bytes through the CIFAR parser with the CIFAR-10 and both CIFAR-100 layouts, each tried
/// on its own. Returns a checksum when at least one layout accepts the input, otherwise rethrows
/// the last layout's mantissa::Error.
inline uint64_t parseCifarInput(const uint8_t* data, size_t size) {
  uint64_t sum = 0;
  int accepted = 0;
  std::exception_ptr last;
  for (const detail::CifarLayout& layout :
       {detail::CifarLayout::cifar10(), detail::CifarLayout::cifar100(true),
        detail::CifarLayout::cifar100(false)}) {
    std::vector<uint8_t> images, labels;
    try {
      detail::parseCifar(data, size, "fuzz.bin", layout, images, labels);
    } catch (const Error&) {
      last = std::current_exception();
      continue;
    }
    ++accepted;
    for (uint8_t v : images) sum += v;
    for (uint8_t v : labels) sum += v;
  }
  if (accepted == 0) std::rethrow_exception(last);
  return sum;
}

}  // namespace mantissa::data::fuzz
