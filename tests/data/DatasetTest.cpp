#include <doctest/doctest.h>

#include <vector>

#include "core/Error.h"
#include "data/Dataset.h"
#include "data/SyntheticDataset.h"

using namespace mantissa;
using namespace mantissa::data;

TEST_CASE("Subset: selects and reorders samples of its base dataset") {
  SyntheticDataset base({.size = 10, .numClasses = 3, .shape = {2}, .seed = 5});
  Subset picked(base, {7, 2, 2});
  CHECK(picked.size() == 3);
  CHECK(picked.numClasses() == 3);
  CHECK(picked.exampleShape() == Shape{2});
  CHECK(picked.baseIndex(0) == 7);
  CHECK(picked.get(0).label == 7 % 3);
  CHECK(picked.get(0).image.toVector() == base.get(7).image.toVector());
  CHECK(picked.get(2).image.toVector() == base.get(2).image.toVector());  // duplicates allowed
  CHECK(picked.name() == "Subset(" + base.name() + ", 3)");

  Subset tail = Subset::range(base, 6, 10);
  CHECK(tail.size() == 4);
  CHECK(tail.get(3).image.toVector() == base.get(9).image.toVector());
  CHECK(Subset::range(base, 4, 4).size() == 0);

  CHECK_THROWS_WITH_AS(Subset(base, {1, 10}),
                       doctest::Contains("entry 1 is index 10, out of range [0, 10)"), Error);
  CHECK_THROWS_WITH_AS(Subset::range(base, 3, 11),
                       doctest::Contains("[3, 11) is not within [0, 10]"), Error);
  CHECK_THROWS_WITH_AS(tail.get(4), doctest::Contains("index 4 out of range [0, 4)"), Error);
  CHECK(std::string(splitName(Split::Test)) == "test");
}
