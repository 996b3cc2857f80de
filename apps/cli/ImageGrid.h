#pragma once

#include <cstdint>
#include <string>

#include "core/Tensor.h"

namespace mantissa::cli {

/// Writes images [N, C, H, W] (C = 1 or 3, values in [-1, 1] like a Tanh generator's output)
/// as one PNG grid: `nrow` images per row, `padding` black pixels between and around them
/// (torchvision's make_grid + save_image). A pixel value v becomes the byte
/// floor(clamp(255 (v + 1) / 2 + 0.5, 0, 255)). One-channel images give a grey PNG. The parent
/// directory is created. Errors name the file.
void writeImageGrid(const Tensor& images, const std::string& path, int64_t nrow = 8,
                    int64_t padding = 2);

}  // namespace mantissa::cli
