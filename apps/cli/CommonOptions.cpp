#include "apps/cli/CommonOptions.h"

#include <cmath>
#include <iostream>

#include "core/Error.h"
#include "core/parallel/ParallelFor.h"
#include "formats/PrecisionSchedule.h"

namespace mantissa::cli {

namespace {
CommonOptions parseCommonUnchecked(const cxxopts::ParseResult& r, int argc, char** argv);
}  // namespace

void addCommonOptions(cxxopts::Options& o) {
  o.add_options("Training")
      ("precision", "precision recipe and overrides (docs/precision.md), e.g. fp32, flexpoint, "
       "hbfp8, boosters, s2fp8, fp8, bf16, 'fp8; first|last=fp32'",
       cxxopts::value<std::string>()->default_value("fp32"))
      ("change-precision", "allow --resume with a different --precision (recorded in the checkpoint)")
      ("data", "dataset directory: IDX files (MNIST/Fashion-MNIST) or CIFAR-10 binary batches "
       "(default: the installed Fashion-MNIST)", cxxopts::value<std::string>()->default_value(""))
      ("epochs", "total epochs of the run, including those already in a resumed checkpoint",
       cxxopts::value<int64_t>()->default_value("1"))
      ("batch-size", "images per batch", cxxopts::value<int64_t>()->default_value("128"))
      ("lr", "base learning rate", cxxopts::value<double>())
      ("lr-schedule", "constant | step | multistep | cosine",
       cxxopts::value<std::string>()->default_value("cosine"))
      ("lr-milestones", "step: step size in epochs; multistep: epochs where the rate drops (e.g. 30,60)",
       cxxopts::value<std::vector<int64_t>>())
      ("lr-gamma", "factor of each step/multistep drop", cxxopts::value<double>()->default_value("0.1"))
      ("warmup-epochs", "linear learning-rate warm-up epochs", cxxopts::value<int64_t>()->default_value("0"))
      ("momentum", "SGD momentum", cxxopts::value<double>()->default_value("0.9"))
      ("weight-decay", "L2 weight decay", cxxopts::value<double>()->default_value("5e-4"))
      ("seed", "seed of initialisation, shuffling, augmentation and stochastic rounding",
       cxxopts::value<uint64_t>()->default_value("1"))
      ("threads", "threads for Mantissa and oneDNN (0 = all cores)", cxxopts::value<int>()->default_value("0"));
  o.add_options("Run")
      ("checkpoint", "checkpoint file, written every epoch and on Ctrl-C/SIGTERM",
       cxxopts::value<std::string>()->default_value(""))
      ("keep", "also keep the last K per-epoch checkpoints next to --checkpoint",
       cxxopts::value<int64_t>()->default_value("1"))
      ("resume", "resume from this checkpoint", cxxopts::value<std::string>()->default_value(""))
      ("log", "JSON-lines metrics log", cxxopts::value<std::string>()->default_value(""))
      ("limit-batches", "train at most N batches per epoch (quick runs)",
       cxxopts::value<int64_t>()->default_value("0"))
      ("limit-test-batches", "evaluate at most N test batches", cxxopts::value<int64_t>()->default_value("0"))
      ("metrics-every", "write per-step metrics (loss, per-tensor format statistics) every N steps",
       cxxopts::value<int64_t>()->default_value("0"))
      ("eval-only", "only evaluate (with --resume)")
      ("quiet", "no progress display")
      ("h,help", "show this help");
}

CommonOptions parseCommon(const cxxopts::ParseResult& r, int argc, char** argv) {
  try {
    return parseCommonUnchecked(r, argc, argv);
  } catch (const UsageError&) {
    throw;
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
}

namespace {
CommonOptions parseCommonUnchecked(const cxxopts::ParseResult& r, int argc, char** argv) {
  CommonOptions c;
  c.precision = r["precision"].as<std::string>();
  formats::PrecisionSchedule::parse(c.precision);  // validate early; errors name the rule
  c.changePrecision = r.count("change-precision") > 0;
  c.data = r["data"].as<std::string>();
  c.epochs = r["epochs"].as<int64_t>();
  MANTISSA_CHECK(c.epochs >= 1, "--epochs must be at least 1, got ", c.epochs);
  c.batchSize = r["batch-size"].as<int64_t>();
  MANTISSA_CHECK(c.batchSize >= 1, "--batch-size must be at least 1, got ", c.batchSize);
  if (r.count("lr")) c.lr = r["lr"].as<double>();
  MANTISSA_CHECK(std::isfinite(c.lr) && c.lr >= 0, "--lr must be a finite non-negative number");
  c.lrSchedule = r["lr-schedule"].as<std::string>();
  MANTISSA_CHECK(c.lrSchedule == "constant" || c.lrSchedule == "step" ||
                     c.lrSchedule == "multistep" || c.lrSchedule == "cosine",
                 "--lr-schedule '", c.lrSchedule, "' (allowed: constant, step, multistep, cosine)");
  if (r.count("lr-milestones")) c.lrMilestones = r["lr-milestones"].as<std::vector<int64_t>>();
  MANTISSA_CHECK(c.lrSchedule != "step" || c.lrMilestones.size() == 1,
                 "--lr-schedule step needs --lr-milestones N (the step size in epochs)");
  MANTISSA_CHECK(c.lrSchedule != "multistep" || !c.lrMilestones.empty(),
                 "--lr-schedule multistep needs --lr-milestones E1,E2,...");
  c.lrGamma = r["lr-gamma"].as<double>();
  c.warmupEpochs = r["warmup-epochs"].as<int64_t>();
  MANTISSA_CHECK(c.warmupEpochs >= 0, "--warmup-epochs must be >= 0");
  c.momentum = r["momentum"].as<double>();
  c.weightDecay = r["weight-decay"].as<double>();
  c.seed = r["seed"].as<uint64_t>();
  c.threads = r["threads"].as<int>();
  MANTISSA_CHECK(c.threads >= 0, "--threads must be >= 0, got ", c.threads);
  if (c.threads > 0) setNumThreads(c.threads);
  c.checkpoint = r["checkpoint"].as<std::string>();
  c.keep = r["keep"].as<int64_t>();
  MANTISSA_CHECK(c.keep >= 1, "--keep must be at least 1");
  c.resume = r["resume"].as<std::string>();
  c.log = r["log"].as<std::string>();
  c.limitBatches = r["limit-batches"].as<int64_t>();
  c.limitTestBatches = r["limit-test-batches"].as<int64_t>();
  MANTISSA_CHECK(c.limitBatches >= 0 && c.limitTestBatches >= 0, "--limit-batches must be >= 0");
  c.metricsEvery = r["metrics-every"].as<int64_t>();
  c.evalOnly = r.count("eval-only") > 0;
  MANTISSA_CHECK(!c.evalOnly || !c.resume.empty(), "--eval-only needs --resume CHECKPOINT");
  c.quiet = r.count("quiet") > 0;
  for (int i = 0; i < argc; ++i) c.commandLine += (i ? " " : "") + std::string(argv[i]);
  return c;
}
}  // namespace

int runMain(const char* app, int (*body)(int, char**), int argc, char** argv) {
  try {
    return body(argc, argv);
  } catch (const cxxopts::exceptions::exception& e) {
    std::cerr << app << ": error: " << e.what() << " (see --help)\n";
    return 2;
  } catch (const UsageError& e) {
    // The source location appended by MANTISSA_CHECK means nothing to a user typing options.
    std::string msg = e.what();
    if (size_t at = msg.rfind(" ["); at != std::string::npos && msg.back() == ']') msg.resize(at);
    std::cerr << app << ": error: " << msg << " (see --help)\n";
    return 2;
  } catch (const Error& e) {
    std::cerr << app << ": error: " << e.what() << '\n';
    return 1;
  } catch (const std::exception& e) {
    std::cerr << app << ": error: " << e.what() << '\n';
    return 1;
  }
}

}  // namespace mantissa::cli
