#pragma once

#include <cstddef>
#include <cstdint>

namespace mantissa::data::detail {

/// dst[i] = src[i] / 255 (correctly rounded, from a 256-entry table).
void bytesToUnit(const uint8_t* src, size_t n, float* dst);

/// Interleaved HWC bytes (as image decoders return them) to planar CHW floats in [0, 1].
void interleavedToPlanar(const uint8_t* src, int64_t channels, int64_t height, int64_t width,
                         float* dst);

/// Bilinear resize of a planar CHW image with half-pixel centres and edge clamping
/// (align_corners=False, no antialiasing: the same values as PyTorch's
/// F.interpolate(mode="bilinear", align_corners=False)).
void resizeBilinear(const float* src, int64_t channels, int64_t height, int64_t width, float* dst,
                    int64_t outHeight, int64_t outWidth);

}  // namespace mantissa::data::detail
