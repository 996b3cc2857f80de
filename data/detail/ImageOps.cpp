#include "data/detail/ImageOps.h"

#include <algorithm>
#include <array>
#include <vector>

namespace mantissa::data::detail {

namespace {
const std::array<float, 256>& unitTable() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int v = 0; v < 256; ++v) t[v] = static_cast<float>(v) / 255.0f;
    return t;
  }();
  return table;
}

/// Source taps and weights of one output coordinate along an axis of `in` samples.
struct Taps {
  std::vector<int64_t> i0, i1;
  std::vector<float> w1;  // weight of i1; i0 gets 1 - w1
};

Taps makeTaps(int64_t in, int64_t out) {
  Taps t;
  t.i0.resize(out);
  t.i1.resize(out);
  t.w1.resize(out);
  // Half-pixel centres: output pixel o covers source coordinate (o + 0.5) * in/out - 0.5;
  // coordinates left of the first centre clamp to it (PyTorch's area_pixel_compute_source_index).
  const double scale = static_cast<double>(in) / static_cast<double>(out);
  for (int64_t o = 0; o < out; ++o) {
    double src = std::max(0.0, (static_cast<double>(o) + 0.5) * scale - 0.5);
    int64_t i0 = std::min(static_cast<int64_t>(src), in - 1);
    t.i0[o] = i0;
    t.i1[o] = std::min(i0 + 1, in - 1);
    t.w1[o] = static_cast<float>(src - static_cast<double>(i0));
  }
  return t;
}
}  // namespace

void bytesToUnit(const uint8_t* src, size_t n, float* dst) {
  const float* table = unitTable().data();
  for (size_t i = 0; i < n; ++i) dst[i] = table[src[i]];
}

void interleavedToPlanar(const uint8_t* src, int64_t channels, int64_t height, int64_t width,
                         float* dst) {
  const float* table = unitTable().data();
  const int64_t plane = height * width;
  for (int64_t p = 0; p < plane; ++p) {
    for (int64_t c = 0; c < channels; ++c) dst[c * plane + p] = table[src[p * channels + c]];
  }
}

void resizeBilinear(const float* src, int64_t channels, int64_t height, int64_t width, float* dst,
                    int64_t outHeight, int64_t outWidth) {
  const Taps ty = makeTaps(height, outHeight), tx = makeTaps(width, outWidth);
  std::vector<float> row0(outWidth), row1(outWidth);
  for (int64_t c = 0; c < channels; ++c) {
    const float* plane = src + c * height * width;
    float* out = dst + c * outHeight * outWidth;
    for (int64_t y = 0; y < outHeight; ++y) {
      // Interpolate the two source rows horizontally, then blend them vertically.
      const float* r0 = plane + ty.i0[y] * width;
      const float* r1 = plane + ty.i1[y] * width;
      for (int64_t x = 0; x < outWidth; ++x) {
        float a = tx.w1[x];
        row0[x] = r0[tx.i0[x]] + a * (r0[tx.i1[x]] - r0[tx.i0[x]]);
        row1[x] = r1[tx.i0[x]] + a * (r1[tx.i1[x]] - r1[tx.i0[x]]);
      }
      float b = ty.w1[y];
      float* o = out + y * outWidth;
      for (int64_t x = 0; x < outWidth; ++x) o[x] = row0[x] + b * (row1[x] - row0[x]);
    }
  }
}

}  // namespace mantissa::data::detail
