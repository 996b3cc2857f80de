#include <doctest/doctest.h>

#include <stb/stb_image.h>

#include "apps/cli/ImageGrid.h"
#include "tests/apps/AppTestUtil.h"

using namespace mantissa;

TEST_CASE("ImageGrid: PNG pixels follow the documented mapping, with padding") {
  apps::test::TempDir dir;
  SUBCASE("grey") {
    // Two 2x2 images; v -> floor(clamp(255 (v + 1) / 2 + 0.5, 0, 255)).
    Tensor images = Tensor::fromVector({-1, 0, 1, 0.5f, 2, -3, -0.5f, 0.25f}, {2, 1, 2, 2});
    std::string path = dir.file("sub/grid.png");
    cli::writeImageGrid(images, path, 8, 1);
    int w = 0, h = 0, c = 0;
    unsigned char* px = stbi_load(path.c_str(), &w, &h, &c, 0);
    REQUIRE(px != nullptr);
    CHECK(w == 2 * (2 + 1) + 1);
    CHECK(h == 1 * (2 + 1) + 1);
    CHECK(c == 1);
    auto at = [&](int x, int y) { return static_cast<int>(px[y * w + x]); };
    // First image at (1, 1), second at (4, 1).
    CHECK(at(1, 1) == 0);
    CHECK(at(2, 1) == 128);
    CHECK(at(1, 2) == 255);
    CHECK(at(2, 2) == 191);
    CHECK(at(4, 1) == 255);  // clamped
    CHECK(at(5, 1) == 0);
    CHECK(at(4, 2) == 64);                             // 63.75 + 0.5
    CHECK(at(5, 2) == 159);                            // 159.375 + 0.5
    for (int x = 0; x < w; ++x) CHECK(at(x, 0) == 0);  // padding
    CHECK(at(3, 1) == 0);
    stbi_image_free(px);
  }
  SUBCASE("RGB, several rows") {
    Tensor images = Tensor::full({5, 3, 1, 1}, 1.0);
    std::string path = dir.file("rgb.png");
    cli::writeImageGrid(images, path, 2, 2);
    int w = 0, h = 0, c = 0;
    unsigned char* px = stbi_load(path.c_str(), &w, &h, &c, 0);
    REQUIRE(px != nullptr);
    CHECK(w == 2 * 3 + 2);
    CHECK(h == 3 * 3 + 2);
    CHECK(c == 3);
    CHECK(px[(2 * w + 2) * 3 + 1] == 255);
    CHECK(px[(8 * w + 5) * 3 + 0] == 0);  // the empty sixth cell
    stbi_image_free(px);
  }
  CHECK_THROWS_WITH_AS(cli::writeImageGrid(Tensor::zeros({2, 2, 4, 4}), dir.file("x.png")),
                       doctest::Contains("x.png"), Error);
  CHECK_THROWS_WITH_AS(cli::writeImageGrid(Tensor::zeros({1, 1, 4, 4}), "/proc/nope/x.png"),
                       doctest::Contains("/proc/nope"), Error);
}
