#include <doctest/doctest.h>

#include <stb/stb_image_write.h>

#include <filesystem>
#include <string>
#include <vector>

#include "core/Error.h"
#include "data/ImageFolder.h"
#include "tests/data/DataTestUtil.h"

using namespace mantissa;
using namespace mantissa::data;
using mantissa::data::test::TempDir;
using mantissa::data::test::writeBytes;

namespace {
/// Interleaved RGB pixels of a w x h image: (x * 40 + seed, y * 50 + seed, x + y + seed) mod 256.
std::vector<uint8_t> rgb(int w, int h, int seed) {
  std::vector<uint8_t> v;
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      v.push_back(static_cast<uint8_t>((x * 40 + seed) % 256));
      v.push_back(static_cast<uint8_t>((y * 50 + seed) % 256));
      v.push_back(static_cast<uint8_t>((x + y + seed) % 256));
    }
  }
  return v;
}

void writePng(const std::string& path, int w, int h, int comp, const std::vector<uint8_t>& px) {
  REQUIRE(stbi_write_png(path.c_str(), w, h, comp, px.data(), w * comp) != 0);
}
}  // namespace

TEST_CASE("ImageFolder: classes from sub-directories, exact PNG pixels") {
  TempDir dir;
  writePng(dir.file("zebra/b.png"), 4, 3, 3, rgb(4, 3, 5));
  writePng(dir.file("zebra/a.PNG"), 4, 3, 3, rgb(4, 3, 9));
  writePng(dir.file("ant/only.png"), 4, 3, 3, rgb(4, 3, 1));
  writeBytes(dir.file("ant/notes.txt"), {'h', 'i'});  // ignored: not an image extension
  std::filesystem::create_directories(dir.str() + "/empty_class");

  ImageFolder ds(dir.str());
  CHECK(ds.classNames() == std::vector<std::string>{"ant", "empty_class", "zebra"});
  CHECK(ds.numClasses() == 3);
  CHECK(ds.size() == 3);
  CHECK(ds.exampleShape() == Shape{3, 3, 4});
  CHECK(ds.label(0) == 0);
  CHECK(ds.label(1) == 2);
  CHECK(ds.path(1).ends_with("zebra/a.PNG"));  // sorted within the class
  Example ex = ds.get(2);                      // zebra/b.png, seed 5
  CHECK(ex.label == 2);
  std::vector<uint8_t> px = rgb(4, 3, 5);
  for (int c = 0; c < 3; ++c) {
    for (int y = 0; y < 3; ++y) {
      for (int x = 0; x < 4; ++x) {
        CHECK(ex.image.at({c, y, x}) ==
              static_cast<float>(px[static_cast<size_t>((y * 4 + x) * 3 + c)]) / 255.0f);
      }
    }
  }
}

TEST_CASE("ImageFolder: grey conversion, resizing and JPEG") {
  TempDir dir;
  SUBCASE("grey PNG read as one channel") {
    std::vector<uint8_t> grey = {0, 51, 102, 255};
    writePng(dir.file("c/g.png"), 2, 2, 1, grey);
    ImageFolder ds(dir.str(), {.channels = 1});
    Example ex = ds.get(0);
    CHECK(ex.image.shape() == Shape{1, 2, 2});
    CHECK(ex.image.toVector() == std::vector<float>{0.f, 51 / 255.f, 102 / 255.f, 1.f});
  }
  SUBCASE("grey PNG expanded to RGB") {
    writePng(dir.file("c/g.png"), 2, 1, 1, {10, 200});
    ImageFolder ds(dir.str());
    CHECK(ds.get(0).image.toVector() == std::vector<float>{10 / 255.f, 200 / 255.f, 10 / 255.f,
                                                           200 / 255.f, 10 / 255.f, 200 / 255.f});
  }
  SUBCASE("images of any size resized to the requested size") {
    writePng(dir.file("c/big.png"), 8, 6, 3, std::vector<uint8_t>(8 * 6 * 3, 128));
    writePng(dir.file("c/small.png"), 2, 2, 3, std::vector<uint8_t>(2 * 2 * 3, 64));
    ImageFolder ds(dir.str(), {.height = 5, .width = 5});
    for (int64_t i = 0; i < 2; ++i) {
      Example ex = ds.get(i);
      CHECK(ex.image.shape() == Shape{3, 5, 5});
      // A constant image stays constant under bilinear resizing.
      float v = ds.path(i).ends_with("big.png") ? 128 / 255.f : 64 / 255.f;
      for (float p : ex.image.toVector()) CHECK(p == doctest::Approx(v));
    }
  }
  SUBCASE("JPEG decodes close to the original") {
    std::vector<uint8_t> flat(16 * 16 * 3, 100);
    REQUIRE(stbi_write_jpg(dir.file("c/x.jpg").c_str(), 16, 16, 3, flat.data(), 95) != 0);
    ImageFolder ds(dir.str());
    for (float p : ds.get(0).image.toVector())
      CHECK(p == doctest::Approx(100 / 255.0).epsilon(0.02));
  }
}

TEST_CASE("ImageFolder: bad input is an Error naming the file or directory") {
  TempDir dir;
  SUBCASE("missing directory") {
    CHECK_THROWS_WITH_AS(ImageFolder(dir.str() + "/nope"), doctest::Contains("missing directory"),
                         Error);
  }
  SUBCASE("no class directories") {
    CHECK_THROWS_WITH_AS(ImageFolder(dir.str()), doctest::Contains("has no sub-directories"),
                         Error);
  }
  SUBCASE("no images") {
    writeBytes(dir.file("a/readme.txt"), {'x'});
    CHECK_THROWS_WITH_AS(ImageFolder(dir.str()), doctest::Contains("no image files under"), Error);
  }
  SUBCASE("undecodable first image (header read at construction)") {
    writeBytes(dir.file("a/broken.png"), {'n', 'o', 't', ' ', 'a', ' ', 'p', 'n', 'g'});
    const std::string expected = "cannot decode '" + dir.str() + "/a/broken.png'";
    CHECK_THROWS_WITH_AS(ImageFolder(dir.str()), doctest::Contains(expected.c_str()), Error);
  }
  SUBCASE("undecodable later image (decoded in get)") {
    writePng(dir.file("a/1.png"), 2, 2, 3, rgb(2, 2, 0));
    std::vector<uint8_t> png;
    {
      // A valid PNG cut in the middle of its data.
      writePng(dir.file("b/2.png"), 8, 8, 3, rgb(8, 8, 3));
      std::FILE* f = std::fopen(dir.file("b/2.png").c_str(), "rb");
      png.resize(4096);
      png.resize(std::fread(png.data(), 1, png.size(), f));
      std::fclose(f);
    }
    png.resize(png.size() / 2);
    writeBytes(dir.file("b/2.png"), png);
    ImageFolder ds(dir.str());
    CHECK_NOTHROW(ds.get(0));
    const std::string expected = "cannot decode '" + dir.str() + "/b/2.png'";
    CHECK_THROWS_WITH_AS(ds.get(1), doctest::Contains(expected.c_str()), Error);
  }
  SUBCASE("size differs from the first image") {
    writePng(dir.file("a/1.png"), 2, 2, 3, rgb(2, 2, 0));
    writePng(dir.file("a/2.png"), 3, 2, 3, rgb(3, 2, 0));
    ImageFolder ds(dir.str());
    CHECK_THROWS_WITH_AS(ds.get(1), doctest::Contains("2.png' is 3x2 but the first image is 2x2"),
                         Error);
  }
  SUBCASE("bad options") {
    writePng(dir.file("a/1.png"), 2, 2, 3, rgb(2, 2, 0));
    CHECK_THROWS_WITH_AS(ImageFolder(dir.str(), {.channels = 2}), doctest::Contains("channels 2"),
                         Error);
    CHECK_THROWS_WITH_AS(ImageFolder(dir.str(), {.height = 4}), doctest::Contains("both be 0"),
                         Error);
  }
}
