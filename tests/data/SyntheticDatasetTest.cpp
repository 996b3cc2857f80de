#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "core/Error.h"
#include "data/SyntheticDataset.h"

using namespace mantissa;
using namespace mantissa::data;

TEST_CASE("SyntheticDataset: deterministic, balanced labels, requested shape") {
  SyntheticDataset a({.size = 50, .numClasses = 4, .shape = {2, 3, 3}, .seed = 11});
  SyntheticDataset b({.size = 50, .numClasses = 4, .shape = {2, 3, 3}, .seed = 11});
  SyntheticDataset c({.size = 50, .numClasses = 4, .shape = {2, 3, 3}, .seed = 12});
  CHECK(a.size() == 50);
  CHECK(a.exampleShape() == Shape{2, 3, 3});
  for (int64_t i = 0; i < 50; ++i) {
    Example x = a.get(i);
    CHECK(x.label == i % 4);
    CHECK(x.image.shape() == Shape{2, 3, 3});
    CHECK(x.image.toVector() == b.get(i).image.toVector());  // same seed: same sample
    CHECK(x.image.toVector() == a.get(i).image.toVector());  // a pure function of the index
    CHECK(x.image.toVector() != c.get(i).image.toVector());
  }
  CHECK(a.get(0).image.toVector() != a.get(4).image.toVector());  // same class, other noise
  SyntheticDataset clean({.size = 8, .numClasses = 4, .shape = {5}, .noise = 0.f});
  CHECK(clean.get(6).image.toVector() == clean.pattern(2).toVector());
  for (float v : clean.pattern(1).toVector()) {
    CHECK(v >= -1.f);
    CHECK(v < 1.f);
  }
}

TEST_CASE("SyntheticDataset: default classes are separable by the nearest pattern") {
  SyntheticDataset ds({.size = 500, .numClasses = 10, .shape = {1, 8, 8}, .seed = 3});
  int correct = 0;
  for (int64_t i = 0; i < ds.size(); ++i) {
    std::vector<float> x = ds.get(i).image.toVector();
    int64_t best = -1;
    double bestDist = std::numeric_limits<double>::infinity();
    for (int64_t k = 0; k < ds.numClasses(); ++k) {
      std::vector<float> p = ds.pattern(k).toVector();
      double d = 0;
      for (size_t j = 0; j < x.size(); ++j) d += (x[j] - p[j]) * (x[j] - p[j]);
      if (d < bestDist) {
        bestDist = d;
        best = k;
      }
    }
    correct += best == i % 10;
  }
  CHECK(correct >= 490);
}

TEST_CASE("SyntheticDataset: bad options are errors") {
  CHECK_THROWS_WITH_AS(SyntheticDataset({.numClasses = 0}), doctest::Contains("numClasses 0"),
                       Error);
  CHECK_THROWS_WITH_AS(SyntheticDataset({.shape = {3, 0}}), doctest::Contains("empty axis"), Error);
  CHECK_THROWS_WITH_AS(SyntheticDataset({.noise = -1.f}), doctest::Contains("noise"), Error);
  CHECK_THROWS_AS(SyntheticDataset({.size = 3}).get(3), Error);
}
