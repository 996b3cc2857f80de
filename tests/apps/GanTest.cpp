#include <doctest/doctest.h>

#include <stb/stb_image.h>

#include <cmath>
#include <csignal>
#include <filesystem>

#include "apps/cli/Apps.h"
#include "apps/cli/DataSetup.h"
#include "apps/cli/FidScorer.h"
#include "apps/cli/GanRun.h"
#include "tests/apps/AppTestUtil.h"

using namespace mantissa;
using apps::test::events;
using apps::test::readJsonl;
using apps::test::runApp;
namespace fs = std::filesystem;

namespace {

struct GanRunArgs {
  std::string data, precision = "fp32", checkpoint, resume, samples, log, fid;
  cli::GanType type = cli::GanType::Wgan;
  int64_t epochs = 2;
  double lr = 0;  // 0: the app's default for the GAN type
  bool changePrecision = false;
  std::function<void(int64_t, int64_t)> afterBatch;
};

/// 64 training images in batches of 8: 8 batches per epoch; with n_critic = 3 the generator
/// steps after batches 2 and 5 of every epoch.
int gan(const GanRunArgs& a) {
  cli::CommonOptions o;
  o.precision = a.precision;
  o.changePrecision = a.changePrecision;
  o.data = a.data;
  o.epochs = a.epochs;
  o.batchSize = 8;
  o.lr = a.lr > 0 ? a.lr : a.type == cli::GanType::Wgan ? 5e-5 : 2e-4;
  o.lrSchedule = "constant";
  o.seed = 3;
  o.checkpoint = a.checkpoint;
  o.resume = a.resume;
  o.log = a.log;
  o.quiet = true;
  cli::GanOptions g;
  g.type = a.type;
  g.latent = 16;
  g.width = 8;
  g.nCritic = 3;
  g.samplesDir = a.samples;
  g.fidClassifier = a.fid;
  g.fidSamples = 24;
  g.afterBatch = a.afterBatch;
  return cli::runGan(o, g);
}

/// Raises SIGTERM after batch `batch` of epoch `epoch`, like Ctrl-C in the middle of a run.
std::function<void(int64_t, int64_t)> interruptAt(int64_t epoch, int64_t batch) {
  return [=](int64_t e, int64_t b) {
    if (e == epoch && b == batch) std::raise(SIGTERM);
  };
}

}  // namespace

TEST_CASE("Gan: interrupted and resumed runs end bit-identical to uninterrupted ones") {
  apps::test::TempDir dir;
  apps::test::writeImages(dir.str(), 64, 32);
  struct Case {
    cli::GanType type;
    const char* precision;
  };
  for (Case c : {Case{cli::GanType::Wgan, "fp32"}, Case{cli::GanType::Wgan, "flexpoint"},
                 Case{cli::GanType::Wgan, "hbfp8; */*=hbfp8:round=stochastic"},
                 Case{cli::GanType::Dcgan, "fp32"}, Case{cli::GanType::Dcgan, "s2fp8"}}) {
    CAPTURE(c.precision);
    CAPTURE(static_cast<int>(c.type));
    std::string a = dir.file("a.h5"), b = dir.file("b.h5"), cc = dir.file("c.h5");
    REQUIRE(gan({.data = dir.str(), .precision = c.precision, .checkpoint = a, .type = c.type}) ==
            0);
    // Ctrl-C after batch 3 of epoch 2: between two generator steps of a critic cycle.
    REQUIRE(gan({.data = dir.str(),
                 .precision = c.precision,
                 .checkpoint = b,
                 .type = c.type,
                 .afterBatch = interruptAt(1, 3)}) == 130);
    CHECK(io::readMeta(b).epoch == 1);
    CHECK(io::readMeta(b).extra.at("batch_in_epoch") == "4");
    REQUIRE(gan({.data = dir.str(),
                 .precision = c.precision,
                 .checkpoint = b,
                 .resume = b,
                 .type = c.type}) == 0);
    apps::test::checkSameState(a, b);
    // An epoch-boundary stop, then the run extended with --epochs 2.
    REQUIRE(gan({.data = dir.str(),
                 .precision = c.precision,
                 .checkpoint = cc,
                 .type = c.type,
                 .epochs = 1}) == 0);
    REQUIRE(gan({.data = dir.str(),
                 .precision = c.precision,
                 .checkpoint = cc,
                 .resume = cc,
                 .type = c.type}) == 0);
    apps::test::checkSameState(a, cc);
  }
}

TEST_CASE("Gan: checkpoint layout, log lines and sample grids") {
  apps::test::TempDir dir;
  apps::test::writeImages(dir.str(), 64, 32);
  std::string ckpt = dir.file("w.h5"), log = dir.file("w.jsonl"), samples = dir.file("samples");
  REQUIRE(gan({.data = dir.str(), .checkpoint = ckpt, .samples = samples, .log = log}) == 0);

  io::StateDict sd = io::readHdf5(ckpt);
  for (const char* key : {"generator/model/main.0.weight", "generator/buffers/main.1.running_mean",
                          "critic/model/main.0.weight", "optim_g/main.0.weight/square_avg",
                          "optim_c/main.0.weight/square_avg", "noise/state"}) {
    CAPTURE(key);
    CHECK(sd.tensors.count(key) == 1);
  }
  CHECK(sd.attrs.at("optim_g/type") == "rmsprop");
  io::CheckpointMeta meta = io::readMeta(ckpt);
  CHECK(meta.model == "wgan28");
  CHECK(meta.app == "mantissa-gan");
  CHECK(meta.step == 4);  // 2 epochs x generator steps after batches 2 and 5
  // Weight clipping: every critic parameter lies in [-0.01, 0.01].
  for (const auto& [key, t] : sd.tensors) {
    if (key.rfind("critic/model/", 0) != 0) continue;
    CAPTURE(key);
    for (float v : t.toVector<float>()) REQUIRE(std::fabs(v) <= 0.01f);
  }

  auto lines = readJsonl(log);
  auto epochs = events(lines, "epoch");
  REQUIRE(epochs.size() == 2);
  for (const auto& e : epochs) {
    for (const char* k : {"generator_loss", "critic_loss", "wasserstein", "images_per_sec"}) {
      CAPTURE(k);
      REQUIRE(e.find(k));
      CHECK(std::isfinite(e.find(k)->number()));
    }
    CHECK(e.find("generator_steps")->number() == 2);
  }
  auto summary = events(lines, "summary");
  REQUIRE(summary.size() == 1);
  CHECK(summary[0].find("wall_seconds")->number() > 0);
  CHECK(summary[0].find("peak_rss_mib")->number() > 0);
  CHECK(summary[0].find("precision")->string() == "fp32");

  for (const char* f : {"epoch-001.png", "epoch-002.png"}) {
    int w = 0, h = 0, ch = 0;
    unsigned char* px = stbi_load((fs::path(samples) / f).string().c_str(), &w, &h, &ch, 0);
    REQUIRE(px != nullptr);
    CHECK(w == 8 * 30 + 2);  // 8 x 8 samples of 28x28 with 2-pixel padding
    CHECK(h == 8 * 30 + 2);
    CHECK(ch == 1);
    stbi_image_free(px);
  }

  SUBCASE("DCGAN logs the discriminator's mean outputs and uses Adam") {
    std::string d = dir.file("d.h5"), dlog = dir.file("d.jsonl");
    REQUIRE(gan({.data = dir.str(),
                 .checkpoint = d,
                 .log = dlog,
                 .type = cli::GanType::Dcgan,
                 .epochs = 1}) == 0);
    auto e = events(readJsonl(dlog), "epoch");
    REQUIRE(e.size() == 1);
    CHECK(e[0].find("wasserstein") == nullptr);
    double real = e[0].find("d_real")->number();
    CHECK((real > 0 && real < 1));
    CHECK(e[0].find("generator_steps")->number() == 8);
    CHECK(io::readHdf5(d).attrs.at("optim_c/type") == "adam");
    CHECK(io::readMeta(d).model == "dcgan28");
  }
}

TEST_CASE("Gan: Frechet distance on a mantissa-resnet classifier") {
  apps::test::TempDir dir;
  apps::test::writeImages(dir.str(), 64, 32);
  std::string clf = dir.file("r8.h5");
  apps::test::trainResnet8(dir.str(), clf, 2);

  SUBCASE("real images scored against themselves give 0, altered ones more") {
    cli::DataSplits splits = cli::openDataset(dir.str());
    cli::FidScorer scorer(clf, splits, 28, 20);
    CHECK(scorer.featureDim() == 64);
    // A "generator" returning the test images themselves, scaled to [-1, 1] like Tanh output.
    class Replay : public nn::Module {
     public:
      Replay(const data::Dataset& d, float shift) : nn::Module("Replay"), d_(d), shift_(shift) {}
      Tensor forward(const Tensor& z) override {
        std::vector<Tensor> images;
        for (int64_t i = 0; i < z.size(0); ++i) images.push_back(d_.get(i).image);
        Tensor x = Tensor::zeros({z.size(0), 1, 28, 28});
        float* p = x.data<float>();
        for (int64_t i = 0; i < z.size(0); ++i) {
          Tensor img = images[i].contiguous();
          for (int64_t k = 0; k < 784; ++k) p[i * 784 + k] = 2 * img.data<float>()[k] - 1 + shift_;
        }
        return x;
      }

     private:
      const data::Dataset& d_;
      float shift_;
    };
    Replay same(*splits.test, 0.f), brighter(*splits.test, 0.6f);
    double d0 = scorer.score(same, 16, 1, 2);
    double d1 = scorer.score(brighter, 16, 1, 2);
    CHECK(d0 < 1e-6 * std::max(1.0, d1));
    CHECK(d1 > 1e-3);
  }
  SUBCASE("logged per epoch, and by --eval-only") {
    std::string log = dir.file("g.jsonl"), ckpt = dir.file("g.h5");
    REQUIRE(gan({.data = dir.str(), .checkpoint = ckpt, .log = log, .fid = clf, .epochs = 1}) == 0);
    auto e = events(readJsonl(log), "epoch");
    REQUIRE(e.size() == 1);
    REQUIRE(e[0].find("fid"));
    CHECK(e[0].find("fid")->number() > 0);
    CHECK(io::readMeta(ckpt).metricName == "fid");
    std::string samples = dir.file("eval-samples");
    REQUIRE(runApp(cli::ganApp, "mantissa-gan", {"--data",      dir.str(),
                                                 "--resume",    ckpt,
                                                 "--eval-only", "--batch-size",
                                                 "8",           "--seed",
                                                 "3",           "--latent",
                                                 "16",          "--width",
                                                 "8",           "--fid-classifier",
                                                 clf,           "--fid-samples",
                                                 "24",          "--samples",
                                                 samples,       "--quiet",
                                                 "--log",       log}) == 0);
    CHECK(fs::exists(fs::path(samples) / "eval.png"));
    auto ev = events(readJsonl(log), "eval");
    REQUIRE(ev.size() == 1);
    // The same generator, noise and classifier as the epoch's score.
    CHECK(ev[0].find("fid")->number() == doctest::Approx(e[0].find("fid")->number()));
  }
  SUBCASE("a checkpoint that is not a ResNet classifier is refused, naming the option and file") {
    std::string g = dir.file("g2.h5");
    REQUIRE(gan({.data = dir.str(), .checkpoint = g, .epochs = 1}) == 0);
    CHECK_THROWS_WITH_AS(
        gan({.data = dir.str(), .fid = g, .epochs = 1}),
        doctest::Contains(("--fid-classifier " + g + ": a checkpoint of model 'wgan28'").c_str()),
        Error);
    CHECK_THROWS_WITH_AS(gan({.data = dir.str(), .fid = dir.file("none.h5"), .epochs = 1}),
                         doctest::Contains("none.h5: no such file"), Error);
  }
}

TEST_CASE("Gan: a non-finite loss stops the run with exit code 3 and keeps the last checkpoint") {
  apps::test::TempDir dir;
  apps::test::writeImages(dir.str(), 64, 32);
  std::string ckpt = dir.file("d.h5"), log = dir.file("d.jsonl");
  REQUIRE(gan({.data = dir.str(), .checkpoint = ckpt, .type = cli::GanType::Dcgan, .epochs = 1}) ==
          0);
  std::string before = apps::test::readFile(ckpt);
  // A learning rate of 1e30 makes the first step's weights overflow the next forward pass.
  CHECK(gan({.data = dir.str(),
             .checkpoint = ckpt,
             .resume = ckpt,
             .log = log,
             .type = cli::GanType::Dcgan,
             .lr = 1e30}) == 3);
  CHECK(apps::test::readFile(ckpt) == before);
  auto errors = events(readJsonl(log), "error");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].find("message")->string().find("non-finite") != std::string::npos);
  CHECK(errors[0].find("epoch")->number() == 1);
}

TEST_CASE("Gan: command-line errors name the option") {
  apps::test::TempDir dir;
  apps::test::writeImages(dir.str(), 64, 32);
  auto usage = [&](std::vector<std::string> args, const std::string& what) {
    CAPTURE(what);
    args.insert(args.begin(), {"--data", dir.str(), "--quiet", "--samples", ""});
    CHECK_THROWS_WITH_AS(runApp(cli::ganApp, "mantissa-gan", args), doctest::Contains(what.c_str()),
                         cli::UsageError);
  };
  usage({"--gan", "began"}, "--gan 'began' (allowed: wgan, dcgan)");
  usage({"--image-size", "32"}, "--image-size 32");
  usage({"--clip", "0"}, "--clip");
  usage({"--n-critic", "0"}, "--n-critic 0");
  usage({"--precision", "fp7"}, "fp7");
  apps::test::TempDir small;
  apps::test::writeImages(small.str(), 16, 8, 8);
  CHECK_THROWS_WITH_AS(runApp(cli::ganApp, "mantissa-gan", {"--data", small.str(), "--quiet"}),
                       doctest::Contains("8x8 images"), cli::UsageError);
  // --image-size 28 resizes them instead.
  CHECK(runApp(cli::ganApp, "mantissa-gan",
               {"--data", small.str(), "--quiet", "--image-size", "28", "--width", "4", "--latent",
                "8", "--batch-size", "8", "--samples", ""}) == 0);

  std::string d = dir.file("d.h5");
  REQUIRE(gan({.data = dir.str(), .checkpoint = d, .type = cli::GanType::Dcgan, .epochs = 1}) == 0);
  CHECK_THROWS_WITH_AS(
      gan({.data = dir.str(), .resume = d, .epochs = 2}),
      doctest::Contains("a checkpoint of model 'dcgan28', but this run builds 'wgan28'"), Error);
  CHECK_THROWS_WITH_AS(
      gan({.data = dir.str(), .precision = "flexpoint", .resume = d, .type = cli::GanType::Dcgan}),
      doctest::Contains("--change-precision"), Error);
}
