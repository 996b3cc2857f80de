#include <doctest/doctest.h>

#include <cmath>
#include <regex>

#include "apps/cli/Apps.h"
#include "apps/cli/CommonOptions.h"
#include "formats/Ffp8.h"
#include "tests/apps/AppTestUtil.h"

using namespace mantissa;
using apps::test::events;
using apps::test::readJsonl;
using apps::test::runApp;

namespace {

/// "ffp8:e=3,f=5,b=4,s=0" -> its parameters, parsed independently of the format registry.
formats::Ffp8Params ffp8Of(const std::string& spec) {
  std::smatch m;
  REQUIRE(std::regex_match(spec, m, std::regex(R"(ffp8:e=(\d),f=(\d),b=(-?\d+),s=([01]))")));
  return {.s = std::stoi(m[4]), .e = std::stoi(m[1]), .f = std::stoi(m[2]), .b = std::stoi(m[3])};
}

double maxAbs(const Tensor& t) {
  double m = 0;
  for (float v : t.toVector<float>()) m = std::max(m, static_cast<double>(std::fabs(v)));
  return m;
}

}  // namespace

TEST_CASE("Ptq: ffp8:auto per layer on a trained ResNet checkpoint") {
  apps::test::TempDir dir;
  apps::test::writeImages(dir.str(), 96, 48);
  std::string ckpt = dir.file("r8.h5"), log = dir.file("ptq.jsonl");
  apps::test::trainResnet8(dir.str(), ckpt, 4, "flexpoint");
  REQUIRE(runApp(cli::ptqApp, "mantissa-ptq",
                 {"--checkpoint", ckpt, "--data", dir.str(), "--calib-batches", "2", "--batch-size",
                  "16", "--log", log}) == 0);
  auto lines = readJsonl(log);
  auto layers = events(lines, "ptq_layer");
  REQUIRE(layers.size() == 8);  // conv1, 3 blocks x 2 convs (shortcut A), fc
  // In the order of the forward pass.
  CHECK(layers.front().find("layer")->string() == "conv1");
  CHECK(layers[1].find("layer")->string() == "layer1.0.conv1");
  CHECK(layers.back().find("layer")->string() == "fc");
  io::StateDict weights = io::readHdf5(ckpt);
  for (const auto& l : layers) {
    std::string name = l.find("layer")->string();
    CAPTURE(name);
    formats::Ffp8Params w = ffp8Of(l.find("weight_format")->string());
    formats::Ffp8Params a = ffp8Of(l.find("activation_format")->string());
    // Weights have both signs; inputs are post-ReLU everywhere but the first convolution,
    // which sees normalised pixels (negative below the mean), so only it keeps a sign bit.
    CHECK(w.s == 1);
    CHECK(a.s == (name == "conv1" ? 1 : 0));
    CHECK(a.s + a.e + a.f == 8);
    // A.4: the bias makes the largest value just cover max |w| (one more would halve it).
    double m = maxAbs(weights.tensors.at("model/" + name + ".weight"));
    CHECK(w.maxValue() >= m);
    CHECK(w.maxValue() / 2 < m);
    double wmse = l.find("weight_mse")->number(), amse = l.find("activation_mse")->number();
    CHECK(wmse >= 0);
    CHECK(wmse < 1e-3 * m * m);
    CHECK(amse >= 0);
  }
  auto summary = events(lines, "ptq");
  REQUIRE(summary.size() == 1);
  const auto& s = summary[0];
  double fp32 = s.find("fp32_accuracy")->number(), q = s.find("quantized_accuracy")->number();
  CHECK((fp32 >= 0 && fp32 <= 1 && q >= 0 && q <= 1));
  CHECK(s.find("accuracy_delta")->number() == doctest::Approx(q - fp32));
  CHECK(s.find("test_images")->number() == 48);
  CHECK(s.find("calib_images")->number() == 32);
  CHECK(s.find("model")->string() == "resnet8");
  CHECK(s.find("trained_precision")->string() == "flexpoint");

  SUBCASE("a fixed format for every layer") {
    REQUIRE(runApp(cli::ptqApp, "mantissa-ptq",
                   {"--checkpoint", ckpt, "--data", dir.str(), "--format", "e4m3", "--log", log}) ==
            0);
    for (const auto& l : events(readJsonl(log), "ptq_layer")) {
      CHECK(l.find("weight_format")->string() == "e4m3");
      CHECK(l.find("activation_format")->string() == "e4m3");
    }
    // fp32 changes nothing: the same accuracy and zero error.
    REQUIRE(runApp(cli::ptqApp, "mantissa-ptq",
                   {"--checkpoint", ckpt, "--data", dir.str(), "--format", "fp32", "--log", log}) ==
            0);
    auto again = readJsonl(log);
    CHECK(events(again, "ptq")[0].find("accuracy_delta")->number() == 0);
    for (const auto& l : events(again, "ptq_layer")) CHECK(l.find("weight_mse")->number() == 0);
  }
}

TEST_CASE("Ptq: bad inputs name the option and file") {
  apps::test::TempDir dir;
  apps::test::writeImages(dir.str(), 32, 16);
  std::string ckpt = dir.file("r8.h5");
  apps::test::trainResnet8(dir.str(), ckpt, 1);
  auto fails = [&](std::vector<std::string> args, const std::string& what) {
    CAPTURE(what);
    CHECK_THROWS_WITH_AS(runApp(cli::ptqApp, "mantissa-ptq", args), doctest::Contains(what.c_str()),
                         Error);
  };
  fails({"--checkpoint", dir.file("nope.h5"), "--data", dir.str()},
        "--checkpoint " + dir.file("nope.h5") + ": no such file");
  fails({"--checkpoint", ckpt, "--data", dir.str(), "--format", "e9m9"}, "--format 'e9m9'");
  CHECK_THROWS_AS(runApp(cli::ptqApp, "mantissa-ptq", {"--checkpoint", ckpt, "--format", "ffp9"}),
                  cli::UsageError);
  CHECK_THROWS_AS(runApp(cli::ptqApp, "mantissa-ptq", {"--data", dir.str()}), cli::UsageError);
  fails({"--checkpoint", ckpt, "--data", dir.str(), "--calib-batches", "0"}, "--calib-batches");
  std::string junk = dir.file("junk.h5");
  data::test::writeBytes(junk, {1, 2, 3});
  fails({"--checkpoint", junk, "--data", dir.str()}, junk);
}
