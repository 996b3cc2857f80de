#include "apps/cli/ClassifierRun.h"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "apps/cli/RunSupport.h"
#include "apps/common/Metrics.h"
#include "apps/common/Precision.h"
#include "apps/common/Progress.h"
#include "apps/common/TrainLoop.h"
#include "core/io/Checkpoint.h"
#include "core/parallel/ParallelFor.h"
#include "data/DataLoader.h"
#include "formats/PrecisionSchedule.h"
#include "optim/Sgd.h"

namespace mantissa::cli {

namespace {

using Clock = std::chrono::steady_clock;

train::JsonObject epochLine(const char* event, int64_t epoch, const train::EpochResult& tr,
                            const train::EpochResult& te, double lr) {
  train::JsonObject o;
  o.add("event", event)
      .add("epoch", epoch)
      .add("train_loss", tr.loss)
      .add("train_accuracy", tr.accuracy)
      .add("test_loss", te.loss)
      .add("test_accuracy", te.accuracy)
      .add("images_per_sec", tr.imagesPerSec)
      .add("epoch_seconds", tr.seconds)
      .add("lr", lr);
  return o;
}

}  // namespace

int runClassifier(const CommonOptions& opts, const ClassifierSpec& spec) {
  auto wallStart = Clock::now();
  StopFlag stop;  // Ctrl-C / SIGTERM: finish the batch, checkpoint, exit 130

  DataSplits splits = openDataset(opts.data);
  Shape shape = splits.train->exampleShape();
  int64_t channels = spec.input.channels > 0 ? spec.input.channels : shape[0];
  int64_t classes = splits.train->numClasses();

  Rng initRng(opts.seed);
  int64_t size = spec.input.size > 0 ? spec.input.size : shape.back();
  std::shared_ptr<nn::Model> model = spec.makeModelForSize
                                         ? spec.makeModelForSize(channels, classes, size, initRng)
                                         : spec.makeModel(channels, classes, initRng);
  optim::Sgd sgd(model->namedParameters(),
                 {.lr = opts.lr, .momentum = opts.momentum, .weightDecay = opts.weightDecay});
  formats::PrecisionSchedule schedule = formats::PrecisionSchedule::parse(opts.precision);

  data::DataLoader trainLoader(*splits.train, {.batchSize = opts.batchSize, .shuffle = true,
                                               .seed = opts.seed, .dropLast = true,
                                               .transform = trainTransform(splits, spec.input)});
  data::DataLoader testLoader(*splits.test, {.batchSize = std::max<int64_t>(opts.batchSize, 256),
                                             .transform = testTransform(splits, spec.input)});

  // The learning rate changes every optimizer step (cosine, warm-up).
  const int64_t stepsPerEpoch = opts.limitBatches > 0
                                    ? std::min(opts.limitBatches, trainLoader.numBatches())
                                    : trainLoader.numBatches();
  optim::LrSchedulePtr lrSchedule = makeLrSchedule(opts, std::max<int64_t>(stepsPerEpoch, 1));

  RunIdentity id{.app = spec.app, .model = model->name(), .modelConfig = model->extraRepr(),
                 .dataset = splits.name, .inputSize = size, .inputChannels = channels};
  RunProgress state;
  RunCheckpointer checkpointer(opts, id);
  if (!opts.resume.empty()) {
    state = opts.evalOnly ? resumeRun(opts, id, *model, nullptr, nullptr)
                          : resumeRun(opts, id, *model, &sgd, &trainLoader);
    // --eval-only with another --precision (and --change-precision) evaluates in that
    // precision, as of the last trained epoch; training runs switch in the loop below.
    if (opts.evalOnly && io::readMeta(opts.resume).precision != opts.precision) {
      train::applyPrecision(*model, nullptr, schedule, std::max<int64_t>(state.epoch - 1, 0),
                            opts.epochs, opts.seed);
    }
    std::printf("resumed %s: epoch %lld, batch %lld, step %lld\n", opts.resume.c_str(),
                static_cast<long long>(state.epoch + 1), static_cast<long long>(state.batch),
                static_cast<long long>(state.step));
  } else {
    train::applyPrecision(*model, &sgd, schedule, 0, opts.epochs, opts.seed);
  }

  train::JsonlLog log;
  if (!opts.log.empty()) log = train::JsonlLog(opts.log, !opts.resume.empty());
  std::printf("%s: %s (%lld parameters) on %s, precision '%s', %d threads\n", spec.app.c_str(),
              id.model.c_str(), static_cast<long long>(model->numParameters()),
              splits.name.c_str(), opts.precision.c_str(), numThreads());

  if (opts.evalOnly) {
    train::EpochResult te = train::evaluateClassifier(*model, testLoader, opts.limitTestBatches);
    std::printf("test accuracy %.2f%%, loss %.4f (%lld images)\n", 100 * te.accuracy, te.loss,
                static_cast<long long>(te.images));
    train::JsonObject o;
    o.add("event", "eval").add("test_loss", te.loss).add("test_accuracy", te.accuracy);
    log.write(o);
    return 0;
  }

  train::Progress progress(std::cout, opts.quiet ? 0 : -1, opts.quiet ? 1e9 : 15.0);
  train::EpochResult lastTrain, lastTest;
  double imagesPerSecSum = 0, epochLr = sgd.lr();
  int64_t epochsRun = 0;
  for (int64_t epoch = state.epoch; epoch < opts.epochs; ++epoch) {
    train::applyPrecision(*model, &sgd, schedule, epoch, opts.epochs, opts.seed);
    const int64_t startBatch = epoch == state.epoch ? state.batch : 0;
    sgd.setLr(lrSchedule->lr(epoch * stepsPerEpoch + startBatch));
    epochLr = sgd.lr();
    train::TrainEpochOptions eo{.epoch = epoch, .numEpochs = opts.epochs,
                                .startBatch = startBatch,
                                .limitBatches = opts.limitBatches, .stop = &stop.flag()};
    eo.afterStep = [&](int64_t batch, double loss) {
      ++state.step;
      if (opts.metricsEvery > 0 && state.step % opts.metricsEvery == 0) {
        log.write(stepLine(*model, epoch, state.step, loss, sgd.lr()));
      }
      sgd.setLr(lrSchedule->lr(epoch * stepsPerEpoch + batch + 1));
    };
    try {
      lastTrain = train::trainClassifierEpoch(*model, sgd, trainLoader, eo, &progress);
    } catch (const train::NonFiniteLoss& e) {
      progress.finish();
      return reportNonFiniteLoss(spec.app, opts, e, epoch, log);
    }
    if (lastTrain.stopped) {
      state.epoch = epoch;
      state.batch = trainLoader.position().batch;
      if (checkpointer.enabled()) {
        checkpointer.save(state, epoch, *model, &sgd, trainLoader, -1);
        std::printf("interrupted: checkpoint %s (epoch %lld, batch %lld)\n", opts.checkpoint.c_str(),
                    static_cast<long long>(epoch + 1), static_cast<long long>(state.batch));
      }
      return 130;
    }
    lastTest = train::evaluateClassifier(*model, testLoader, opts.limitTestBatches);
    imagesPerSecSum += lastTrain.imagesPerSec;
    ++epochsRun;
    std::printf("epoch %lld/%lld: train loss %.4f acc %.2f%% | test loss %.4f acc %.2f%% | "
                "%.0f img/s | %.1f s\n",
                static_cast<long long>(epoch + 1), static_cast<long long>(opts.epochs),
                lastTrain.loss, 100 * lastTrain.accuracy, lastTest.loss, 100 * lastTest.accuracy,
                lastTrain.imagesPerSec, lastTrain.seconds);
    log.write(epochLine("epoch", epoch, lastTrain, lastTest, epochLr));
    state.epoch = epoch + 1;
    state.batch = 0;
    // With --limit-batches the loader stopped early; the next epoch still starts at batch 0.
    trainLoader.setPosition({epoch + 1, 0});
    checkpointer.save(state, epoch, *model, &sgd, trainLoader, lastTest.accuracy);
    if (stop.flag().load()) return 130;
  }

  double wall = std::chrono::duration<double>(Clock::now() - wallStart).count();
  double ips = epochsRun ? imagesPerSecSum / epochsRun : 0;
  std::printf("done: test accuracy %.2f%%, %.1f s, %.0f img/s, peak memory %.0f MiB\n",
              100 * lastTest.accuracy, wall, ips, train::peakRssMiB());
  if (!opts.checkpoint.empty()) std::printf("checkpoint: %s\n", opts.checkpoint.c_str());
  if (!opts.log.empty()) std::printf("log: %s\n", opts.log.c_str());
  train::JsonObject summary = epochLine("summary", state.epoch - 1, lastTrain, lastTest, epochLr);
  summary.add("images_per_sec", ips)
      .add("wall_seconds", wall)
      .add("peak_rss_mib", train::peakRssMiB())
      .add("precision", opts.precision)
      .add("model", id.model);
  log.write(summary);
  return 0;
}

}  // namespace mantissa::cli
