#include "apps/cli/GanRun.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>

#include "apps/cli/DataSetup.h"
#include "apps/cli/FidScorer.h"
#include "apps/cli/ImageGrid.h"
#include "apps/cli/RunSupport.h"
#include "apps/common/Metrics.h"
#include "apps/common/Precision.h"
#include "apps/common/Progress.h"
#include "apps/common/TrainLoop.h"
#include "core/autograd/Autograd.h"
#include "core/io/Checkpoint.h"
#include "core/io/CheckpointManager.h"
#include "core/ops/Elementwise.h"
#include "core/ops/Loss.h"
#include "core/ops/Reduce.h"
#include "core/parallel/ParallelFor.h"
#include "formats/PrecisionSchedule.h"
#include "layers/models/Dcgan.h"
#include "optim/Adam.h"
#include "optim/Clip.h"
#include "optim/RmsProp.h"

namespace mantissa::cli {

namespace {

using Clock = std::chrono::steady_clock;

// Streams of the run's generators, all derived from --seed: the training noise (checkpointed),
// the fixed batch behind the sample grids, and the noise of the Fréchet-distance samples.
constexpr uint64_t kNoiseStream = 0x6e6f697365ull;
constexpr uint64_t kSampleStream = 0x73616d706c65ull;
constexpr uint64_t kFidStream = 0x666964ull;
// The critic's stochastic-rounding seed differs from the generator's, so that points with the
// same dotted name in both networks (main.0.activation, ...) draw independent random streams.
constexpr uint64_t kCriticSeedMix = 0x9e3779b97f4a7c15ull;
constexpr int64_t kSampleCount = 64;

/// A generator's complete state as a checkpoint part: the I64 tensor `state` = {seed, stream,
/// counter, buffered index} (Rng::State).
class RngState : public io::Stateful {
 public:
  explicit RngState(Rng& rng) : rng_(rng) {}
  void saveState(io::StateDict& out, const std::string& prefix) const override {
    Rng::State s = rng_.state();
    out.tensors[prefix + "state"] =
        Tensor::fromInts({static_cast<int64_t>(s.seed), static_cast<int64_t>(s.stream),
                          static_cast<int64_t>(s.counter), static_cast<int64_t>(s.index)},
                         {4});
  }
  void loadState(const io::StateDict& in, const std::string& prefix) override {
    const Tensor& t = in.tensor(prefix + "state");
    MANTISSA_CHECK(t.dtype() == DType::I64 && t.numel() == 4, "'", prefix,
                   "state': expected 4 I64 values {seed, stream, counter, index}");
    std::vector<int64_t> v = t.toVector<int64_t>();
    MANTISSA_CHECK(v[3] >= 0 && v[3] <= 4, "'", prefix, "state': buffered index ", v[3],
                   " outside [0, 4]");
    rng_.setState({.seed = static_cast<uint64_t>(v[0]),
                   .stream = static_cast<uint64_t>(v[1]),
                   .counter = static_cast<uint64_t>(v[2]),
                   .index = static_cast<uint32_t>(v[3])});
  }

 private:
  Rng& rng_;
};

/// What one epoch of adversarial training did.
struct GanEpoch {
  double criticLoss = 0, generatorLoss = 0, wasserstein = 0, dReal = 0, dFake = 0;
  int64_t criticSteps = 0, generatorSteps = 0, images = 0;
  double seconds = 0, imagesPerSec = 0;
  bool stopped = false;
};

/// Everything a run holds; the pieces that go into a checkpoint are the generator, the critic,
/// both optimizers, the loader position and the noise generator.
struct GanState {
  const CommonOptions& opts;
  const GanOptions& gan;
  DataSplits splits;
  int64_t side = 0, channels = 0;
  std::string modelName, modelConfig;
  std::shared_ptr<nn::DcganGenerator> gen;
  std::shared_ptr<nn::DcganDiscriminator> critic;
  std::unique_ptr<optim::Optimizer> optG, optC;
  std::unique_ptr<data::DataLoader> loader;
  Rng noise;
  RngState noiseState{noise};

  GanState(const CommonOptions& o, const GanOptions& g) : opts(o), gan(g) {}

  io::SaveParts saveParts() const {
    return {{"generator", gen.get()}, {"critic", critic.get()}, {"optim_g", optG.get()},
            {"optim_c", optC.get()},  {"data", loader.get()},   {"noise", &noiseState}};
  }
  io::LoadParts loadParts() {
    return {{"generator", gen.get()}, {"critic", critic.get()}, {"optim_g", optG.get()},
            {"optim_c", optC.get()},  {"data", loader.get()},   {"noise", &noiseState}};
  }
  void applyPrecision(const formats::PrecisionSchedule& schedule, int64_t epoch, int64_t numEpochs,
                      uint64_t seed) {
    train::applyPrecision(*gen, optG.get(), schedule, epoch, numEpochs, seed);
    train::applyPrecision(*critic, optC.get(), schedule, epoch, numEpochs, seed ^ kCriticSeedMix);
  }
};

const char* typeName(GanType t) { return t == GanType::Wgan ? "wgan" : "dcgan"; }

void build(GanState& s) {
  const CommonOptions& opts = s.opts;
  const GanOptions& gan = s.gan;
  s.splits = openDataset(opts.data);
  Shape shape = s.splits.train->exampleShape();
  s.channels = shape[0];
  MANTISSA_CHECK(s.channels == 1 || s.channels == 3, "--data: ", s.channels,
                 "-channel images (mantissa-gan takes 1 or 3 channels)");
  s.side = gan.imageSize > 0 ? gan.imageSize : shape[2];
  if (gan.imageSize == 0 && (shape[1] != shape[2] || (s.side != 28 && s.side != 64))) {
    throw UsageError("--data holds " + std::to_string(shape[1]) + "x" + std::to_string(shape[2]) +
                     " images; the generator makes 28x28 or 64x64: pass --image-size 64 (or 28) "
                     "to resize them");
  }
  s.modelName = std::string(typeName(gan.type)) + std::to_string(s.side);
  s.modelConfig = "gan=" + std::string(typeName(gan.type)) +
                  ", image_size=" + std::to_string(s.side) +
                  ", channels=" + std::to_string(s.channels) +
                  ", latent=" + std::to_string(gan.latent) + ", width=" + std::to_string(gan.width);

  Rng initRng(opts.seed);
  s.gen = std::make_shared<nn::DcganGenerator>(
      nn::DcganGeneratorOptions{
          .imageSize = s.side, .channels = s.channels, .latent = gan.latent, .width = gan.width},
      initRng);
  // Both games use the DCGAN discriminator with batch norm, as Arjovsky et al.'s code did for
  // the WGAN critic; the raw score goes to the Wasserstein estimate or to BCE-with-logits.
  s.critic =
      std::make_shared<nn::DcganDiscriminator>(nn::DcganDiscriminatorOptions{.imageSize = s.side,
                                                                             .channels = s.channels,
                                                                             .width = gan.width,
                                                                             .batchNorm = true,
                                                                             .sigmoid = false},
                                               initRng);
  if (gan.type == GanType::Wgan) {
    s.optG = std::make_unique<optim::RmsProp>(s.gen->namedParameters(),
                                              optim::RmsPropOptions{.lr = opts.lr});
    s.optC = std::make_unique<optim::RmsProp>(s.critic->namedParameters(),
                                              optim::RmsPropOptions{.lr = opts.lr});
  } else {
    optim::AdamOptions adam{.lr = opts.lr, .betas = {0.5, 0.999}};
    s.optG = std::make_unique<optim::Adam>(s.gen->namedParameters(), adam);
    s.optC = std::make_unique<optim::Adam>(s.critic->namedParameters(), adam);
  }
  // Pixels in [0, 1] -> [-1, 1], the range of the generator's Tanh.
  std::vector<data::Transform> t;
  if (shape[1] != s.side || shape[2] != s.side) t.push_back(data::Resize(s.side));
  t.push_back(data::Normalize({0.5f}, {0.5f}));
  s.loader = std::make_unique<data::DataLoader>(
      *s.splits.train, data::DataLoaderOptions{.batchSize = opts.batchSize,
                                               .shuffle = true,
                                               .seed = opts.seed,
                                               .dropLast = true,
                                               .transform = data::Compose(std::move(t))});
  MANTISSA_CHECK(s.loader->numBatches() > 0, "--batch-size ", opts.batchSize, " exceeds the ",
                 s.splits.train->size(), " training images of --data");
  s.noise = Rng(opts.seed, kNoiseStream);
}

/// --resume: the model name and precision are checked like the classifier run's (a different
/// --precision needs --change-precision and is recorded), the checkpoint's own schedule is
/// applied for the epoch it was saved in, then everything is loaded.
RunProgress resume(GanState& s) {
  return resumeChecked(
      s.opts, s.modelName,
      [&](const formats::PrecisionSchedule& saved, int64_t precisionEpoch, int64_t savedEpochs,
          uint64_t seed) -> std::pair<int64_t, int64_t> {
        s.applyPrecision(saved, precisionEpoch, savedEpochs, seed);
        io::loadCheckpoint(s.opts.resume, s.loadParts(), {.expectModel = s.modelName});
        return {s.loader->position().epoch, s.loader->position().batch};
      });
}

void save(GanState& s, io::CheckpointManager& manager, const RunProgress& p, int64_t precisionEpoch,
          std::optional<double> fid) {
  io::CheckpointMeta meta;
  meta.app = "mantissa-gan";
  meta.model = s.modelName;
  meta.modelConfig = s.modelConfig;
  meta.precision = s.opts.precision;
  meta.epoch = p.epoch;
  meta.step = p.step;
  meta.seed = s.opts.seed;
  meta.commandLine = s.opts.commandLine;
  if (fid) {
    meta.metricName = "fid";
    meta.metric = *fid;
  }
  meta.extra["dataset"] = s.splits.name;
  meta.extra["gan"] = typeName(s.gan.type);
  meta.extra["generator"] = s.gen->name();
  meta.extra["critic"] = s.critic->name();
  meta.extra["precision_epoch"] = std::to_string(precisionEpoch);
  meta.extra["epochs"] = std::to_string(s.opts.epochs);
  meta.extra["batch_in_epoch"] = std::to_string(p.batch);
  if (!p.precisionHistory.empty()) meta.extra["precision_history"] = p.precisionHistory;
  manager.save(s.saveParts(), meta);
}

double checkedLoss(const Tensor& loss, const char* what, int64_t epoch, int64_t batch) {
  double l = loss.item<double>();
  if (!std::isfinite(l)) {
    throw train::NonFiniteLoss(detail::concat("non-finite ", what, " loss (", l, ") at epoch ",
                                              epoch + 1, ", batch ", batch,
                                              ": stopping before the optimizer step"));
  }
  return l;
}

/// A "step" log line with the quantization metrics of both networks, keyed
/// "generator.<point>" and "critic.<point>".
train::JsonObject stepLine(GanState& s, int64_t epoch, int64_t step, double generatorLoss,
                           double criticLoss) {
  train::JsonObject o;
  o.add("event", "step")
      .add("epoch", epoch)
      .add("step", step)
      .add("generator_loss", generatorLoss)
      .add("critic_loss", criticLoss)
      .add("lr", s.optG->lr());
  train::JsonObject formats;
  for (auto [prefix, net] : {std::pair<const char*, nn::Module*>{"generator.", s.gen.get()},
                             std::pair<const char*, nn::Module*>{"critic.", s.critic.get()}}) {
    for (auto& [name, point] : net->namedQuantPoints()) {
      auto metrics = point->metrics();
      if (metrics.empty()) continue;
      train::JsonObject m;
      for (auto& [k, v] : metrics) m.add(k, v);
      formats.add(prefix + name, m);
      point->resetStats();
    }
  }
  o.add("formats", formats);
  return o;
}

GanEpoch trainEpoch(GanState& s, int64_t epoch, int64_t startBatch, RunProgress& state,
                    const std::atomic<bool>& stop, train::Progress& progress,
                    train::JsonlLog& log) {
  const CommonOptions& opts = s.opts;
  const GanOptions& gan = s.gan;
  const bool wgan = gan.type == GanType::Wgan;
  s.gen->train();
  s.critic->train();
  GanEpoch r;
  int64_t total = s.loader->numBatches();
  if (opts.limitBatches > 0) total = std::min(total, opts.limitBatches);
  const int64_t warmup = 2;
  int64_t timedImages = 0, batches = 0;
  double lastCritic = 0, lastGen = 0;
  auto start = Clock::now(), timedStart = start;
  for (const data::Batch& b : s.loader->epoch(epoch, startBatch)) {
    if (b.index >= total) break;
    const Tensor& real = b.data;
    const int64_t n = real.size(0);
    bool generatorStep = false;
    if (wgan) {
      // Critic step (Arjovsky et al. 2017, Algorithm 1): maximise E[D(real)] - E[D(fake)],
      // i.e. minimise its negative, then clip every critic weight to [-c, c].
      Tensor fake;
      {
        autograd::NoGradGuard noGrad;
        fake = s.gen->forward(Tensor::randn({n, gan.latent}, s.noise));
      }
      s.optC->zeroGrad();
      Tensor dReal = mean(s.critic->forward(real));
      Tensor dFake = mean(s.critic->forward(fake));
      Tensor lossC = sub(dFake, dReal);
      lastCritic = checkedLoss(lossC, "critic", epoch, b.index);
      lossC.backward();
      s.optC->step();
      optim::clipWeights(s.critic->namedParameters(), gan.clip);
      r.criticLoss += lastCritic;
      r.wasserstein += -lastCritic;
      r.dReal += dReal.item<double>();
      r.dFake += dFake.item<double>();
      ++r.criticSteps;
      // One generator step after every n_critic critic steps (counted within the epoch, so a
      // resumed run takes them at the same batches).
      if ((b.index + 1) % gan.nCritic == 0) {
        s.optG->zeroGrad();
        Tensor lossG =
            neg(mean(s.critic->forward(s.gen->forward(Tensor::randn({n, gan.latent}, s.noise)))));
        lastGen = checkedLoss(lossG, "generator", epoch, b.index);
        lossG.backward();
        s.optG->step();
        generatorStep = true;
      }
    } else {
      // DCGAN (the PyTorch example): D on real (target 1) and detached fakes (target 0), then
      // G with the non-saturating loss on the same fakes (target 1).
      Tensor fake = s.gen->forward(Tensor::randn({n, gan.latent}, s.noise));
      Tensor ones = Tensor::ones({n}), zeros = Tensor::zeros({n});
      s.optC->zeroGrad();
      Tensor outReal = s.critic->forward(real);
      Tensor outFake = s.critic->forward(fake.detach());
      Tensor lossD = add(binaryCrossEntropyWithLogits(outReal, ones),
                         binaryCrossEntropyWithLogits(outFake, zeros));
      lastCritic = checkedLoss(lossD, "discriminator", epoch, b.index);
      lossD.backward();
      s.optC->step();
      r.criticLoss += lastCritic;
      r.dReal += mean(sigmoid(outReal.detach())).item<double>();
      r.dFake += mean(sigmoid(outFake.detach())).item<double>();
      ++r.criticSteps;
      s.optG->zeroGrad();
      Tensor lossG = binaryCrossEntropyWithLogits(s.critic->forward(fake), ones);
      lastGen = checkedLoss(lossG, "generator", epoch, b.index);
      lossG.backward();
      s.optG->step();
      generatorStep = true;
    }
    if (generatorStep) {
      r.generatorLoss += lastGen;
      ++r.generatorSteps;
      ++state.step;
      if (opts.metricsEvery > 0 && state.step % opts.metricsEvery == 0) {
        log.write(stepLine(s, epoch, state.step, lastGen, lastCritic));
      }
    }
    ++batches;
    r.images += n;
    if (batches == warmup) timedStart = Clock::now();
    if (batches > warmup) timedImages += n;
    double timed = std::chrono::duration<double>(Clock::now() - timedStart).count();
    r.imagesPerSec = timedImages > 0 && timed > 0
                         ? timedImages / timed
                         : r.images / std::chrono::duration<double>(Clock::now() - start).count();
    char extra[64];
    std::snprintf(extra, sizeof extra, wgan ? "W=%.4f" : "G=%.3f",
                  wgan ? r.wasserstein / r.criticSteps
                       : r.generatorLoss / std::max<int64_t>(r.generatorSteps, 1));
    progress.update({.epoch = epoch,
                     .numEpochs = opts.epochs,
                     .batch = b.index + 1,
                     .numBatches = total,
                     .loss = r.criticLoss / r.criticSteps,
                     .imagesPerSec = r.imagesPerSec,
                     .extra = extra});
    if (gan.afterBatch) gan.afterBatch(epoch, b.index);
    if (stop.load()) {
      r.stopped = b.index + 1 < total;
      break;
    }
  }
  progress.finish();
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (r.criticSteps > 0) {
    r.criticLoss /= r.criticSteps;
    r.wasserstein /= r.criticSteps;
    r.dReal /= r.criticSteps;
    r.dFake /= r.criticSteps;
  }
  if (r.generatorSteps > 0) r.generatorLoss /= r.generatorSteps;
  return r;
}

train::JsonObject epochLine(const char* event, int64_t epoch, const GanEpoch& e, bool wgan,
                            std::optional<double> fid, double lr) {
  train::JsonObject o;
  o.add("event", event)
      .add("epoch", epoch)
      .add("generator_loss", e.generatorLoss)
      .add("critic_loss", e.criticLoss);
  if (wgan) {
    o.add("wasserstein", e.wasserstein).add("critic_real", e.dReal).add("critic_fake", e.dFake);
  } else {
    o.add("d_real", e.dReal).add("d_fake", e.dFake);
  }
  if (fid) o.add("fid", *fid);
  o.add("generator_steps", e.generatorSteps)
      .add("images_per_sec", e.imagesPerSec)
      .add("epoch_seconds", e.seconds)
      .add("lr", lr);
  return o;
}

/// The 64-sample grid of the fixed noise batch, in eval mode.
std::string writeSamples(GanState& s, const Tensor& fixedNoise, const std::string& file) {
  if (s.gan.samplesDir.empty()) return {};
  autograd::NoGradGuard noGrad;
  s.gen->eval();
  Tensor images = s.gen->forward(fixedNoise);
  s.gen->train();
  std::string path = (std::filesystem::path(s.gan.samplesDir) / file).string();
  writeImageGrid(images, path);
  return path;
}

}  // namespace

int runGan(const CommonOptions& opts, const GanOptions& gan) {
  auto wallStart = Clock::now();
  MANTISSA_CHECK(
      gan.latent >= 1 && gan.width >= 1 && gan.nCritic >= 1 && gan.clip > 0 && gan.fidSamples >= 2,
      "mantissa-gan: --latent, --width and --n-critic must be >= 1, --clip > 0, "
      "--fid-samples >= 2");
  StopFlag stop;
  GanState s(opts, gan);
  build(s);
  formats::PrecisionSchedule schedule = formats::PrecisionSchedule::parse(opts.precision);
  optim::LrSchedulePtr lrSchedule = makeLrSchedule(opts);
  std::unique_ptr<FidScorer> fid;
  if (!gan.fidClassifier.empty()) {
    fid = std::make_unique<FidScorer>(gan.fidClassifier, s.splits, s.side, gan.fidSamples);
  }
  Rng sampleRng(opts.seed, kSampleStream);
  Tensor fixedNoise = Tensor::randn({kSampleCount, gan.latent}, sampleRng);

  RunProgress state;
  std::unique_ptr<io::CheckpointManager> manager;
  if (!opts.checkpoint.empty()) {
    manager = std::make_unique<io::CheckpointManager>(
        io::CheckpointManagerOptions{.path = opts.checkpoint,
                                     .keep = opts.keep,
                                     .keepBest = true,
                                     .goal = io::MetricGoal::Minimize,
                                     .resume = !opts.resume.empty()});
  }
  if (!opts.resume.empty()) {
    state = resume(s);
    std::printf("resumed %s: epoch %lld, batch %lld, step %lld\n", opts.resume.c_str(),
                static_cast<long long>(state.epoch + 1), static_cast<long long>(state.batch),
                static_cast<long long>(state.step));
  } else {
    s.applyPrecision(schedule, 0, opts.epochs, opts.seed);
  }
  train::JsonlLog log;
  if (!opts.log.empty()) log = train::JsonlLog(opts.log, !opts.resume.empty());
  const bool wgan = gan.type == GanType::Wgan;
  std::printf(
      "mantissa-gan: %s on %s (%s %lld + %s %lld parameters), precision '%s', "
      "%d threads\n",
      typeName(gan.type), s.splits.name.c_str(), s.gen->name().c_str(),
      static_cast<long long>(s.gen->numParameters()), s.critic->name().c_str(),
      static_cast<long long>(s.critic->numParameters()), opts.precision.c_str(), numThreads());

  if (opts.evalOnly) {
    std::string grid = writeSamples(s, fixedNoise, "eval.png");
    train::JsonObject o;
    o.add("event", "eval");
    if (!grid.empty()) std::printf("samples: %s\n", grid.c_str());
    if (fid) {
      double f = fid->score(*s.gen, gan.latent, opts.seed, kFidStream);
      std::printf("fid %.4f (%lld samples, classifier %s)\n", f,
                  static_cast<long long>(gan.fidSamples), fid->classifierModel().c_str());
      o.add("fid", f);
    }
    log.write(o);
    return 0;
  }

  train::Progress progress(std::cout, opts.quiet ? 0 : -1, opts.quiet ? 1e9 : 15.0);
  GanEpoch last;
  std::optional<double> lastFid;
  double imagesPerSecSum = 0;
  int64_t epochsRun = 0;
  for (int64_t epoch = state.epoch; epoch < opts.epochs; ++epoch) {
    s.applyPrecision(schedule, epoch, opts.epochs, opts.seed);
    double lr = lrSchedule->lr(epoch);
    s.optG->setLr(lr);
    s.optC->setLr(lr);
    try {
      last = trainEpoch(s, epoch, epoch == state.epoch ? state.batch : 0, state, stop.flag(),
                        progress, log);
    } catch (const train::NonFiniteLoss& e) {
      progress.finish();
      return reportNonFiniteLoss("mantissa-gan", opts, e, epoch, log);
    }
    if (last.stopped) {
      state.epoch = epoch;
      state.batch = s.loader->position().batch;
      if (manager) {
        save(s, *manager, state, epoch, std::nullopt);
        std::printf("interrupted: checkpoint %s (epoch %lld, batch %lld)\n",
                    opts.checkpoint.c_str(), static_cast<long long>(epoch + 1),
                    static_cast<long long>(state.batch));
      }
      return 130;
    }
    char file[32];
    std::snprintf(file, sizeof file, "epoch-%03lld.png", static_cast<long long>(epoch + 1));
    std::string grid = writeSamples(s, fixedNoise, file);
    lastFid.reset();
    if (fid) lastFid = fid->score(*s.gen, gan.latent, opts.seed, kFidStream);
    imagesPerSecSum += last.imagesPerSec;
    ++epochsRun;
    std::printf("epoch %lld/%lld: critic loss %.4f | generator loss %.4f",
                static_cast<long long>(epoch + 1), static_cast<long long>(opts.epochs),
                last.criticLoss, last.generatorLoss);
    if (wgan) std::printf(" | W estimate %.4f", last.wasserstein);
    if (lastFid) std::printf(" | fid %.3f", *lastFid);
    std::printf(" | %.0f img/s | %.1f s%s%s\n", last.imagesPerSec, last.seconds,
                grid.empty() ? "" : " | ", grid.c_str());
    log.write(epochLine("epoch", epoch, last, wgan, lastFid, lr));
    state.epoch = epoch + 1;
    state.batch = 0;
    s.loader->setPosition({epoch + 1, 0});
    if (manager) save(s, *manager, state, epoch, lastFid);
    if (stop.flag().load()) return 130;
  }

  double wall = std::chrono::duration<double>(Clock::now() - wallStart).count();
  double ips = epochsRun ? imagesPerSecSum / epochsRun : 0;
  std::printf("done: %s%.1f s, %.0f img/s, peak memory %.0f MiB\n",
              lastFid ? ("fid " + std::to_string(*lastFid) + ", ").c_str() : "", wall, ips,
              train::peakRssMiB());
  if (!opts.checkpoint.empty()) std::printf("checkpoint: %s\n", opts.checkpoint.c_str());
  if (!opts.log.empty()) std::printf("log: %s\n", opts.log.c_str());
  if (!gan.samplesDir.empty()) std::printf("samples: %s/\n", gan.samplesDir.c_str());
  train::JsonObject summary =
      epochLine("summary", state.epoch - 1, last, wgan, lastFid, s.optG->lr());
  summary.add("images_per_sec", ips)
      .add("wall_seconds", wall)
      .add("peak_rss_mib", train::peakRssMiB())
      .add("precision", opts.precision)
      .add("gan", typeName(gan.type))
      .add("model", s.modelName);
  log.write(summary);
  return 0;
}

}  // namespace mantissa::cli
