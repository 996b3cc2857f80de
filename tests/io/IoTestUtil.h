#pragma once

// Helpers for the io tests: a self-cleaning temporary directory, byte-level file surgery and a
// way to capture the message of the error an expression throws.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <unistd.h>

#include "tests/TempDir.h"

#include "core/io/CheckpointError.h"

namespace mantissa::io::test {

using mantissa::test::TempDir;

inline std::vector<char> readBytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void writeBytes(const std::filesystem::path& p, const std::vector<char>& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

/// The message of the CheckpointError `f` throws, or "" when it throws nothing (any other
/// exception type propagates and fails the test).
template <class F>
std::string checkpointErrorOf(F&& f) {
  try {
    f();
  } catch (const CheckpointError& e) {
    return e.what();
  }
  return "";
}

inline bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace mantissa::io::test
