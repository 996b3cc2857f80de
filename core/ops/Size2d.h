#pragma once

#include <cstdint>
#include <string>

namespace mantissa {

/// A (height, width) pair for the spatial options of 2-D ops (kernel, stride, padding,
/// dilation). Converts implicitly from one integer (the same value for both axes) or from a
/// braced pair, so options read like PyTorch's: `Conv2dOptions{.stride = 2, .padding = {1, 0}}`.
struct Size2d {
  int64_t h = 0;
  int64_t w = 0;

  constexpr Size2d() = default;
  constexpr Size2d(int64_t both) : h(both), w(both) {}  // NOLINT: implicit by design
  constexpr Size2d(int64_t height, int64_t width) : h(height), w(width) {}

  constexpr bool operator==(const Size2d&) const = default;
  /// "3" when both axes agree, "(3, 5)" otherwise (for error messages).
  std::string toString() const {
    return h == w ? std::to_string(h) : "(" + std::to_string(h) + ", " + std::to_string(w) + ")";
  }
};

}  // namespace mantissa
