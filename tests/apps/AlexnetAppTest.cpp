#include <doctest/doctest.h>

#include "apps/cli/Apps.h"
#include "apps/cli/CommonOptions.h"
#include "apps/cli/SavedClassifier.h"
#include "tests/apps/AppTestUtil.h"

using namespace mantissa;
using apps::test::events;
using apps::test::readJsonl;
using apps::test::runApp;

TEST_CASE("AlexnetApp: the small variant trains, logs and checkpoints; PTQ and FID read it") {
  apps::test::TempDir dir;
  apps::test::writeImages(dir.str(), 64, 32);
  std::string ckpt = dir.file("a.h5"), log = dir.file("a.jsonl");
  REQUIRE(runApp(cli::alexnetApp, "mantissa-alexnet",
                 {"--data", dir.str(), "--precision", "flexpoint", "--batch-size", "16",
                  "--limit-batches", "2", "--limit-test-batches", "1", "--checkpoint", ckpt,
                  "--log", log, "--quiet"}) == 0);
  io::CheckpointMeta meta = io::readMeta(ckpt);
  CHECK(meta.model == "alexnet-small");
  CHECK(meta.modelConfig ==
        "variant=small, in_channels=1, num_classes=10, input_size=28, groups=1, dropout=0.5");
  CHECK(meta.extra.at("input_size") == "28");
  CHECK(meta.extra.at("input_channels") == "1");
  auto lines = readJsonl(log);
  REQUIRE(events(lines, "epoch").size() == 1);
  // The default rate is 0.01 (the epoch line has the rate the epoch trained with).
  CHECK(events(lines, "epoch")[0].find("lr")->number() == doctest::Approx(0.01));

  cli::SavedClassifier clf = cli::loadSavedClassifier(ckpt, "--checkpoint");
  CHECK(clf.model->name() == "alexnet-small");
  CHECK(clf.input.size == 28);
  CHECK_FALSE(cli::isResNet(*clf.model));

  REQUIRE(runApp(cli::ptqApp, "mantissa-ptq",
                 {"--checkpoint", ckpt, "--data", dir.str(), "--calib-batches", "1", "--batch-size",
                  "16", "--log", log}) == 0);
  CHECK(events(readJsonl(log), "ptq_layer").size() == 8);  // conv1-5, fc6-8

  CHECK_THROWS_WITH_AS(
      runApp(cli::ganApp, "mantissa-gan",
             {"--data", dir.str(), "--fid-classifier", ckpt, "--batch-size", "16", "--quiet",
              "--samples", ""}),
      doctest::Contains(
          ("--fid-classifier " + ckpt + ": a checkpoint of model 'alexnet-small'").c_str()),
      Error);
}

TEST_CASE("AlexnetApp: the original variant takes 227x227 RGB inputs") {
  // 57M parameters: no momentum buffer keeps the test's memory near 700 MiB.
  apps::test::TempDir dir;
  apps::test::writeImages(dir.str(), 4, 2);
  std::string log = dir.file("o.jsonl");
  REQUIRE(runApp(cli::alexnetApp, "mantissa-alexnet",
                 {"--data", dir.str(), "--variant", "original", "--groups", "2", "--batch-size",
                  "2", "--limit-batches", "1", "--momentum", "0", "--log", log, "--quiet"}) == 0);
  auto summary = events(readJsonl(log), "summary");
  REQUIRE(summary.size() == 1);
  CHECK(summary[0].find("model")->string() == "alexnet");
}

TEST_CASE("AlexnetApp: bad options name the option") {
  auto usage = [](std::vector<std::string> args, const std::string& what) {
    CAPTURE(what);
    CHECK_THROWS_WITH_AS(runApp(cli::alexnetApp, "mantissa-alexnet", args),
                         doctest::Contains(what.c_str()), cli::UsageError);
  };
  usage({"--variant", "big"}, "--variant 'big' (allowed: original, small)");
  usage({"--groups", "3"}, "--groups 3");
  usage({"--dropout", "1"}, "--dropout");
  usage({"--epochs", "0"}, "--epochs");
  CHECK(cli::runMain("mantissa-alexnet", cli::alexnetApp, 3,
                     apps::test::Args({"mantissa-alexnet", "--variant", "big"}).argv()) == 2);
}
