// mantissa-ptq: post-training quantization of a trained classifier for inference (FFP8
// calibration of Huang et al. 2021, FORMATS.md A.4, or any fixed format).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>

#include "apps/cli/Apps.h"
#include "apps/cli/CommonOptions.h"
#include "apps/cli/DataSetup.h"
#include "apps/cli/PostTraining.h"
#include "apps/cli/SavedClassifier.h"
#include "apps/common/Metrics.h"
#include "apps/common/TrainLoop.h"
#include "core/parallel/ParallelFor.h"
#include "formats/Policy.h"

namespace mantissa::cli {

namespace {

std::string mseText(double v) {
  if (std::isnan(v)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3e", v);
  return buf;
}

}  // namespace

int ptqApp(int argc, char** argv) {
  cxxopts::Options options("mantissa-ptq",
                           "Post-training quantization of a trained classifier for inference");
  options.add_options()("checkpoint", "a mantissa-resnet or mantissa-alexnet checkpoint",
                        cxxopts::value<std::string>()->default_value(""))(
      "format",
      "ffp8:auto (FFP8 calibrated per layer for weights and inputs separately) or a "
      "format for every layer: e4m3, e5m2, ffp8:e=4,f=3,b=7,s=1, bf16, hbfp8, ...",
      cxxopts::value<std::string>()->default_value("ffp8:auto"))(
      "calib-batches", "ffp8:auto: training batches to calibrate on",
      cxxopts::value<int64_t>()->default_value("4"))(
      "batch-size", "images per calibration / test batch",
      cxxopts::value<int64_t>()->default_value("128"))(
      "data", "dataset directory (default: the installed Fashion-MNIST)",
      cxxopts::value<std::string>()->default_value(""))(
      "limit-test-batches", "evaluate at most N test batches (0 = all)",
      cxxopts::value<int64_t>()->default_value("0"))(
      "seed", "seed of the calibration batches' shuffle",
      cxxopts::value<uint64_t>()->default_value("1"))("threads", "threads (0 = all cores)",
                                                      cxxopts::value<int>()->default_value("0"))(
      "log", "JSON-lines file for the per-layer table and the accuracies",
      cxxopts::value<std::string>()->default_value(""))("h,help", "show this help");
  auto r = options.parse(argc, argv);
  if (r.count("help")) {
    std::cout << options.help() << '\n';
    return 0;
  }
  std::string checkpoint = r["checkpoint"].as<std::string>();
  if (checkpoint.empty()) throw UsageError("--checkpoint FILE is required");
  std::string format = r["format"].as<std::string>();
  int64_t calibBatches = r["calib-batches"].as<int64_t>();
  int64_t batchSize = r["batch-size"].as<int64_t>();
  int64_t limitTest = r["limit-test-batches"].as<int64_t>();
  int threads = r["threads"].as<int>();
  if (calibBatches < 1) throw UsageError("--calib-batches must be at least 1");
  if (batchSize < 1) throw UsageError("--batch-size must be at least 1");
  if (limitTest < 0) throw UsageError("--limit-test-batches must be >= 0");
  if (threads < 0) throw UsageError("--threads must be >= 0");
  if (threads > 0) setNumThreads(threads);

  SavedClassifier clf = loadSavedClassifier(checkpoint, "--checkpoint");
  nn::Model& model = *clf.model;
  PostTrainingQuantizer ptq(model, format);  // validates --format before any work
  DataSplits splits = openDataset(r["data"].as<std::string>());
  data::DataLoader testLoader(
      *splits.test, {.batchSize = batchSize, .transform = testTransform(splits, clf.input)});
  data::DataLoader calibLoader(*splits.train, {.batchSize = batchSize,
                                               .shuffle = true,
                                               .seed = r["seed"].as<uint64_t>(),
                                               .transform = testTransform(splits, clf.input)});
  std::printf("mantissa-ptq: %s (%s, trained with '%s') on %s, %d threads\n",
              clf.meta.model.c_str(), checkpoint.c_str(), clf.meta.precision.c_str(),
              splits.name.c_str(), numThreads());

  model.setPolicy(formats::FormatPolicy::fp32());
  train::EpochResult fp32 = train::evaluateClassifier(model, testLoader, limitTest);
  int64_t calibImages = 0;
  if (ptq.needsCalibration()) calibImages = ptq.calibrate(calibLoader, calibBatches);
  ptq.apply();
  train::EpochResult quant = train::evaluateClassifier(model, testLoader, limitTest);
  std::vector<PtqLayer> layers = ptq.layers();

  size_t nameWidth = 5, fmtWidth = 10;
  for (const PtqLayer& l : layers) {
    nameWidth = std::max(nameWidth, l.layer.size());
    fmtWidth = std::max({fmtWidth, l.weightFormat.size(), l.activationFormat.size()});
  }
  int nw = static_cast<int>(nameWidth), fw = static_cast<int>(fmtWidth);
  if (ptq.needsCalibration()) {
    std::printf("calibrated on %lld training images (%lld batches)\n",
                static_cast<long long>(calibImages), static_cast<long long>(calibBatches));
  }
  std::printf("%-*s  %-*s  %-*s  %10s  %10s\n", nw, "layer", fw, "weight", fw, "activation",
              "weight MSE", "act. MSE");
  for (const PtqLayer& l : layers) {
    std::printf("%-*s  %-*s  %-*s  %10s  %10s\n", nw, l.layer.c_str(), fw, l.weightFormat.c_str(),
                fw, l.activationFormat.c_str(), mseText(l.weightMse).c_str(),
                mseText(l.activationMse).c_str());
  }
  double delta = quant.accuracy - fp32.accuracy;
  std::printf("test accuracy: fp32 %.2f%%, %s %.2f%% (%+.2f points), %lld images\n",
              100 * fp32.accuracy, format.c_str(), 100 * quant.accuracy, 100 * delta,
              static_cast<long long>(quant.images));

  std::string logPath = r["log"].as<std::string>();
  if (!logPath.empty()) {
    train::JsonlLog log(logPath, false);
    for (const PtqLayer& l : layers) {
      train::JsonObject o;
      o.add("event", "ptq_layer")
          .add("layer", l.layer)
          .add("weight_format", l.weightFormat)
          .add("activation_format", l.activationFormat)
          .add("weight_mse", l.weightMse)
          .add("activation_mse", l.activationMse);
      log.write(o);
    }
    train::JsonObject s;
    s.add("event", "ptq")
        .add("checkpoint", checkpoint)
        .add("model", clf.meta.model)
        .add("trained_precision", clf.meta.precision)
        .add("format", format)
        .add("calib_batches", ptq.needsCalibration() ? calibBatches : int64_t{0})
        .add("calib_images", calibImages)
        .add("test_images", quant.images)
        .add("fp32_accuracy", fp32.accuracy)
        .add("quantized_accuracy", quant.accuracy)
        .add("accuracy_delta", delta)
        .add("fp32_loss", fp32.loss)
        .add("quantized_loss", quant.loss);
    log.write(s);
    std::printf("log: %s\n", logPath.c_str());
  }
  return 0;
}

}  // namespace mantissa::cli
