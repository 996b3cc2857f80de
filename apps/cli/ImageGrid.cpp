#include "apps/cli/ImageGrid.h"

#include <stb/stb_image_write.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <vector>

#include "core/Error.h"

namespace mantissa::cli {

void writeImageGrid(const Tensor& images, const std::string& path, int64_t nrow, int64_t padding) {
  MANTISSA_CHECK(
      images.dim() == 4 && (images.size(1) == 1 || images.size(1) == 3) && images.size(0) > 0, path,
      ": image grid of shape ", toString(images.shape()), " (expected [N, 1 or 3, H, W])");
  MANTISSA_CHECK(nrow > 0 && padding >= 0, path, ": nrow must be > 0 and padding >= 0");
  Tensor x = images.detach().to(DType::F32).contiguous();
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t cols = std::min(nrow, n), rows = (n + cols - 1) / cols;
  const int64_t gw = cols * (w + padding) + padding, gh = rows * (h + padding) + padding;
  std::vector<uint8_t> pixels(static_cast<size_t>(gw * gh * c), 0);
  const float* src = x.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    int64_t y0 = padding + (i / cols) * (h + padding), x0 = padding + (i % cols) * (w + padding);
    for (int64_t ch = 0; ch < c; ++ch) {
      for (int64_t yy = 0; yy < h; ++yy) {
        for (int64_t xx = 0; xx < w; ++xx) {
          float v = src[((i * c + ch) * h + yy) * w + xx];
          // NaN (a diverged generator) shows as black rather than undefined bytes.
          double b = std::isnan(v) ? 0.0 : std::clamp(255.0 * (v + 1.0) / 2.0 + 0.5, 0.0, 255.0);
          pixels[((y0 + yy) * gw + x0 + xx) * c + ch] = static_cast<uint8_t>(std::floor(b));
        }
      }
    }
  }
  std::filesystem::path p(path);
  if (p.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(p.parent_path(), ec);
    MANTISSA_CHECK(!ec, path, ": cannot create directory ", p.parent_path().string(), ": ",
                   ec.message());
  }
  int ok = stbi_write_png(path.c_str(), static_cast<int>(gw), static_cast<int>(gh),
                          static_cast<int>(c), pixels.data(), static_cast<int>(gw * c));
  MANTISSA_CHECK(ok != 0, path, ": cannot write the PNG file");
}

}  // namespace mantissa::cli
