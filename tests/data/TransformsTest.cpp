#include <doctest/doctest.h>

#include <set>
#include <utility>
#include <vector>

#include "core/Error.h"
#include "core/Rng.h"
#include "data/Transforms.h"

using namespace mantissa;
using namespace mantissa::data;

namespace {
/// [c, h, w] image whose value at (c, y, x) is 100 c + 10 y + x.
Tensor coded(int64_t c, int64_t h, int64_t w) {
  std::vector<float> v;
  for (int64_t i = 0; i < c; ++i)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) v.push_back(static_cast<float>(100 * i + 10 * y + x));
  return Tensor::fromVector(v, {c, h, w});
}
}  // namespace

TEST_CASE("Normalize: per-channel (x - mean) / std") {
  Rng rng(0);
  Tensor x = Tensor::fromVector({0.f, 1.f, 0.5f, 0.75f}, {2, 1, 2});
  Tensor y = Normalize({0.5f, 0.25f}, {0.5f, 0.25f})(x, rng);
  CHECK(y.shape() == Shape{2, 1, 2});
  CHECK(y.toVector() == std::vector<float>{-1.f, 1.f, 1.f, 2.f});
  // One mean/std pair applies to every channel (Fashion-MNIST statistics).
  Tensor z = Normalize({0.2860f}, {0.3530f})(x, rng);
  CHECK(z.at({1, 0, 1}) == doctest::Approx((0.75 - 0.2860) / 0.3530));
  CHECK(x.toVector() == std::vector<float>{0.f, 1.f, 0.5f, 0.75f});  // input untouched
  CHECK_THROWS_WITH_AS(Normalize({0.5f}, {0.f}), doctest::Contains("std[0] = 0"), Error);
  CHECK_THROWS_WITH_AS(Normalize({0.1f, 0.2f, 0.3f}, {1.f, 1.f, 1.f})(x, rng),
                       doctest::Contains("3 means for an image with 2 channels"), Error);
}

TEST_CASE("RandomCrop: output is a window of the zero-padded image; all offsets occur") {
  const int64_t c = 2, h = 5, w = 6, pad = 2, size = 4;
  Tensor x = coded(c, h, w);
  RandomCrop crop(size, pad, -1.f);
  std::set<std::pair<int64_t, int64_t>> offsets;
  Rng rng(42);
  for (int trial = 0; trial < 400; ++trial) {
    Tensor y = crop(x, rng);
    REQUIRE(y.shape() == Shape{c, size, size});
    // Find the window (top, left) of the padded image that y equals, by brute force.
    int matches = 0;
    for (int64_t top = 0; top + size <= h + 2 * pad; ++top) {
      for (int64_t left = 0; left + size <= w + 2 * pad; ++left) {
        bool same = true;
        for (int64_t ch = 0; ch < c && same; ++ch)
          for (int64_t yy = 0; yy < size && same; ++yy)
            for (int64_t xx = 0; xx < size && same; ++xx) {
              int64_t sy = top + yy - pad, sx = left + xx - pad;
              float ref =
                  (sy < 0 || sy >= h || sx < 0 || sx >= w) ? -1.f : 100.f * ch + 10.f * sy + sx;
              same = y.at({ch, yy, xx}) == ref;
            }
        if (same) {
          ++matches;
          offsets.insert({top, left});
        }
      }
    }
    CHECK(matches == 1);
  }
  CHECK(offsets.size() == static_cast<size_t>((h + 2 * pad - size + 1) * (w + 2 * pad - size + 1)));

  SUBCASE("same generator state, same crop") {
    Rng a(7), b(7);
    CHECK(crop(x, a).toVector() == crop(x, b).toVector());
  }
  SUBCASE("no padding, full size: identity") {
    Rng r(1);
    CHECK(RandomCrop::rect(h, w)(x, r).toVector() == x.toVector());
  }
  SUBCASE("crop larger than the padded image") {
    Rng r(1);
    CHECK_THROWS_WITH_AS(RandomCrop(10, 0)(x, r),
                         doctest::Contains("larger than the padded image 5x6"), Error);
  }
}

TEST_CASE("RandomHorizontalFlip: mirrors rows with probability p") {
  Tensor x = coded(2, 3, 4);
  Rng rng(3);
  Tensor y = RandomHorizontalFlip(1.f)(x, rng);
  for (int64_t ch = 0; ch < 2; ++ch)
    for (int64_t r = 0; r < 3; ++r)
      for (int64_t col = 0; col < 4; ++col) CHECK(y.at({ch, r, col}) == x.at({ch, r, 3 - col}));
  CHECK(RandomHorizontalFlip(0.f)(x, rng).toVector() == x.toVector());
  int flipped = 0;
  RandomHorizontalFlip half;
  for (int i = 0; i < 2000; ++i) flipped += half(x, rng).at({0, 0, 0}) != x.at({0, 0, 0});
  CHECK(flipped > 900);
  CHECK(flipped < 1100);
  CHECK_THROWS_AS(RandomHorizontalFlip(1.5f), Error);
}

TEST_CASE("Resize: bilinear with half-pixel centres matches hand-derived values") {
  Rng rng(0);
  SUBCASE("2x2 up to 4x4 (PyTorch interpolate, align_corners=False)") {
    Tensor x = Tensor::fromVector({0.f, 1.f, 2.f, 3.f}, {1, 2, 2});
    // Source coordinate of output o is max(0, (o + 0.5) / 2 - 0.5) = 0, 0.25, 0.75, 1.25 ->
    // clamp 1.
    std::vector<float> expected = {0.f,  0.25f, 0.75f, 1.f,  0.5f, 0.75f, 1.25f, 1.5f,
                                   1.5f, 1.75f, 2.25f, 2.5f, 2.f,  2.25f, 2.75f, 3.f};
    std::vector<float> y = Resize(4)(x, rng).toVector();
    for (size_t i = 0; i < expected.size(); ++i) CHECK(y[i] == doctest::Approx(expected[i]));
  }
  SUBCASE("4x4 down to 2x2 averages 2x2 blocks") {
    Tensor x = coded(1, 4, 4);  // 10 y + x
    std::vector<float> y = Resize(2, 2)(x, rng).toVector();
    // Centres at source 0.5 and 2.5: the mean of each 2x2 block.
    CHECK(y == std::vector<float>{5.5f, 7.5f, 25.5f, 27.5f});
  }
  SUBCASE("28x28 to 227x227 keeps a constant and the value range") {
    Tensor x = Tensor::full({1, 28, 28}, 0.25);
    Tensor y = Resize(227)(x, rng);
    CHECK(y.shape() == Shape{1, 227, 227});
    for (float v : y.toVector()) CHECK(v == 0.25f);
    Tensor ramp = coded(1, 28, 28);
    std::vector<float> r = Resize(227, 113)(ramp, rng).toVector();
    CHECK(*std::min_element(r.begin(), r.end()) == 0.f);
    CHECK(*std::max_element(r.begin(), r.end()) == 297.f);
  }
  SUBCASE("same size is the identity") {
    Tensor x = coded(3, 5, 7);
    CHECK(Resize(5, 7)(x, rng).toVector() == x.toVector());
  }
}

TEST_CASE("GreyToRgb and Compose") {
  Rng rng(0);
  Tensor g = coded(1, 2, 3);
  Tensor rgb = GreyToRgb()(g, rng);
  CHECK(rgb.shape() == Shape{3, 2, 3});
  for (int64_t c = 0; c < 3; ++c) CHECK(rgb.slice(0, c, c + 1).toVector() == g.toVector());
  CHECK_THROWS_WITH_AS(GreyToRgb()(rgb, rng), doctest::Contains("expected one channel"), Error);

  // Order matters: normalising with per-channel statistics needs the three channels first.
  Compose pipeline({GreyToRgb(), Normalize({0.f, 1.f, 2.f}, {1.f, 1.f, 1.f})});
  Tensor y = pipeline(g, rng);
  CHECK(y.at({0, 1, 2}) == 12.f);
  CHECK(y.at({1, 1, 2}) == 11.f);
  CHECK(y.at({2, 1, 2}) == 10.f);
  CHECK_THROWS_AS(Compose({GreyToRgb(), Transform{}}), Error);
  Transform asFunction = pipeline;  // every transform converts to the type-erased Transform
  CHECK(asFunction(g, rng).toVector() == y.toVector());
  CHECK_THROWS_WITH_AS(Resize(2)(Tensor::zeros({4, 4}), rng),
                       doctest::Contains("expected a CHW image"), Error);
}
