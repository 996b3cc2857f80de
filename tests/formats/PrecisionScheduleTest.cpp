#include <doctest/doctest.h>

#include "formats/PrecisionSchedule.h"

using namespace mantissa;
using namespace mantissa::formats;

namespace {
std::string specOf(const FormatPolicy& p, Role r) { return p.get(r)->spec(); }
}  // namespace

TEST_CASE("PrecisionSchedule: recipes give the A.2 table") {
  struct Row {
    const char* recipe;
    const char* w;
    const char* a;
    const char* e;
    const char* wg;
    const char* m;
  };
  for (Row r : {Row{"fp32", "fp32", "fp32", "fp32", "fp32", "fp32"},
                Row{"flexpoint", "flex16+5", "flex16+5", "flex16+5", "flex16+5", "flex16+5"},
                Row{"hbfp8", "hbfp8", "hbfp8", "hbfp8", "fp32", "hbfp16"},
                Row{"boosters", "hbfp4", "hbfp4", "hbfp4", "fp32", "hbfp16"},
                Row{"s2fp8", "s2fp8", "s2fp8", "s2fp8", "fp32", "fp32"},
                Row{"fp8", "e4m3", "e4m3", "e5m2", "fp32", "fp32"},
                Row{"bf16", "bf16", "bf16", "bf16", "fp32", "fp32"}}) {
    CAPTURE(r.recipe);
    // A middle layer in a middle epoch: the recipe's base row.
    FormatPolicy p = PrecisionSchedule::parse(r.recipe).policyFor("layer2.conv", 1, 3, 0, 10);
    CHECK(specOf(p, Role::Weight) == r.w);
    CHECK(specOf(p, Role::Activation) == r.a);
    CHECK(specOf(p, Role::Error) == r.e);
    CHECK(specOf(p, Role::WeightGrad) == r.wg);
    CHECK(specOf(p, Role::Master) == r.m);
  }
}

TEST_CASE("PrecisionSchedule: Accuracy Boosters per layer and epoch") {
  PrecisionSchedule s = PrecisionSchedule::parse("boosters");
  const int64_t layers = 5, epochs = 4;
  for (int64_t epoch = 0; epoch < epochs; ++epoch) {
    for (int64_t i = 0; i < layers; ++i) {
      CAPTURE(epoch);
      CAPTURE(i);
      FormatPolicy p = s.policyFor("l" + std::to_string(i), i, layers, epoch, epochs);
      bool boosted = i == 0 || i == layers - 1 || epoch == epochs - 1;
      const char* expected = boosted ? "hbfp6" : "hbfp4";
      CHECK(specOf(p, Role::Weight) == expected);
      CHECK(specOf(p, Role::Activation) == expected);
      CHECK(specOf(p, Role::Error) == expected);
      CHECK(specOf(p, Role::WeightGrad) == "fp32");
      CHECK(specOf(p, Role::Master) == "hbfp16");
    }
  }
  // boost=3: the final three epochs are boosted.
  PrecisionSchedule s3 = PrecisionSchedule::parse("boosters:boost=3");
  CHECK(specOf(s3.policyFor("l2", 2, 5, 6, 10), Role::Weight) == "hbfp4");
  CHECK(specOf(s3.policyFor("l2", 2, 5, 7, 10), Role::Weight) == "hbfp6");
}

TEST_CASE("PrecisionSchedule: override rules by name, glob, role and epoch range") {
  PrecisionSchedule s = PrecisionSchedule::parse(
      "fp8; layer1.*/weight=bf16; fc/error,weight_grad=hbfp8:block=32@2-3; last/*=fp32@last");
  FormatPolicy a = s.policyFor("layer1.0.conv1", 1, 4, 0, 6);
  CHECK(specOf(a, Role::Weight) == "bf16");
  CHECK(specOf(a, Role::Activation) == "e4m3");
  FormatPolicy fcEarly = s.policyFor("fc", 3, 4, 1, 6);
  CHECK(specOf(fcEarly, Role::Error) == "e5m2");
  FormatPolicy fcMid = s.policyFor("fc", 3, 4, 2, 6);
  CHECK(specOf(fcMid, Role::Error) == "hbfp8:block=32");
  CHECK(specOf(fcMid, Role::WeightGrad) == "hbfp8:block=32");
  CHECK(specOf(fcMid, Role::Weight) == "e4m3");
  FormatPolicy fcLast = s.policyFor("fc", 3, 4, 5, 6);
  CHECK(specOf(fcLast, Role::Weight) == "fp32");
  CHECK(specOf(fcLast, Role::Error) == "fp32");
  // Later rules win; a recipe as value sets its formats for the given roles.
  PrecisionSchedule r = PrecisionSchedule::parse("hbfp8; conv1=flexpoint; conv1/weight=fp32");
  FormatPolicy c = r.policyFor("conv1", 0, 2, 0, 1);
  CHECK(specOf(c, Role::Weight) == "fp32");
  CHECK(specOf(c, Role::Activation) == "flex16+5");
  CHECK(specOf(c, Role::Master) == "hbfp16");  // master not in the default roles
}

TEST_CASE("PrecisionSchedule: selectors") {
  CHECK(matchesSelector("conv1|fc", "fc", 5, 6));
  CHECK_FALSE(matchesSelector("conv1|fc", "fc2", 5, 7));
  CHECK(matchesSelector("layer?.*.conv2", "layer3.1.conv2", 2, 9));
  CHECK(matchesSelector("first", "anything", 0, 3));
  CHECK_FALSE(matchesSelector("first", "anything", 1, 3));
  CHECK(matchesSelector("last", "x", 2, 3));
  CHECK(matchesSelector("*", "a.b.c", 1, 3));
}

TEST_CASE("PrecisionSchedule: errors name the bad part") {
  CHECK_THROWS_WITH_AS(PrecisionSchedule::parse("hbfp9000x"), doctest::Contains("'hbfp9000x' is not a recipe"),
                       Error);
  CHECK_THROWS_WITH_AS(PrecisionSchedule::parse("fp32; conv1/wieght=bf16"),
                       doctest::Contains("wieght"), Error);
  CHECK_THROWS_WITH_AS(PrecisionSchedule::parse("fp32; conv1=bf16@x-2"),
                       doctest::Contains("bad epoch 'x'"), Error);
  CHECK_THROWS_WITH_AS(PrecisionSchedule::parse("fp32; conv1=nosuchformat"),
                       doctest::Contains("nosuchformat"), Error);
  CHECK_THROWS_WITH_AS(PrecisionSchedule::parse("boosters:boost=0"), doctest::Contains("boost"),
                       Error);
  CHECK_THROWS_AS(PrecisionSchedule::parse(""), Error);
}
