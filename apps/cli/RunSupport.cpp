#include "apps/cli/RunSupport.h"

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <filesystem>

#include "apps/common/Precision.h"
#include "core/io/Checkpoint.h"

namespace mantissa::cli {

namespace {

// Signal handlers can only touch lock-free atomics; this is the one piece of process-wide state
// of the apps, owned by StopFlag's lifetime.
std::atomic<bool> gStop{false};
struct sigaction gOldInt, gOldTerm;

void onSignal(int) {
  if (gStop.exchange(true)) _exit(130);  // second signal: give up at once
  static const char msg[] = "\nstopping after this batch (checkpointing); signal again to quit now\n";
  (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
}

}  // namespace

StopFlag::StopFlag() {
  gStop = false;
  struct sigaction sa {};
  sa.sa_handler = onSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &gOldInt);
  sigaction(SIGTERM, &sa, &gOldTerm);
}

StopFlag::~StopFlag() {
  sigaction(SIGINT, &gOldInt, nullptr);
  sigaction(SIGTERM, &gOldTerm, nullptr);
}

const std::atomic<bool>& StopFlag::flag() const { return gStop; }

optim::LrSchedulePtr makeLrSchedule(const CommonOptions& o, int64_t stepsPerEpoch) {
  MANTISSA_CHECK(stepsPerEpoch >= 1, "makeLrSchedule: stepsPerEpoch must be >= 1");
  const int64_t spe = stepsPerEpoch;
  optim::LrSchedulePtr s;
  if (o.lrSchedule == "constant") {
    s = std::make_shared<optim::ConstantLr>(o.lr);
  } else if (o.lrSchedule == "step") {
    s = std::make_shared<optim::StepLr>(
        o.lr, optim::StepLrOptions{.stepSize = o.lrMilestones.at(0) * spe, .gamma = o.lrGamma});
  } else if (o.lrSchedule == "multistep") {
    std::vector<int64_t> milestones = o.lrMilestones;
    for (int64_t& m : milestones) m *= spe;
    s = std::make_shared<optim::MultiStepLr>(
        o.lr, optim::MultiStepLrOptions{.milestones = milestones, .gamma = o.lrGamma});
  } else {
    // Cosine over the whole run, reaching 0 after the last step.
    s = std::make_shared<optim::CosineAnnealingLr>(
        o.lr, optim::CosineAnnealingLrOptions{.tMax = o.epochs * spe, .etaMin = 0});
  }
  if (o.warmupEpochs > 0) {
    s = std::make_shared<optim::LinearWarmup>(
        s, optim::LinearWarmupOptions{.warmup = o.warmupEpochs * spe, .startFactor = 0.1});
  }
  return s;
}

RunProgress resumeChecked(const CommonOptions& opts, const std::string& model,
                          const RestoreFn& restore) {
  io::CheckpointMeta meta = io::readMeta(opts.resume);
  MANTISSA_CHECK(meta.model == model, opts.resume, ": a checkpoint of model '", meta.model,
                 "', but this run builds '", model, "'");
  RunProgress p;
  if (auto it = meta.extra.find("precision_history"); it != meta.extra.end()) {
    p.precisionHistory = it->second;
  }
  if (meta.precision != opts.precision) {
    MANTISSA_CHECK(opts.changePrecision, opts.resume, ": saved with --precision '",
                   meta.precision, "', resumed with '", opts.precision,
                   "'; pass --change-precision to switch precision on resume");
  }
  // Rebuild the formats in force when the file was written, so every point and master format
  // matches its saved spec and adaptive state, then load.
  auto extraInt = [&](const char* key, int64_t def) {
    auto it = meta.extra.find(key);
    return it == meta.extra.end() ? def : std::stoll(it->second);
  };
  std::tie(p.epoch, p.batch) =
      restore(formats::PrecisionSchedule::parse(meta.precision),
              extraInt("precision_epoch", meta.epoch), extraInt("epochs", opts.epochs), meta.seed);
  p.step = meta.step;
  if (meta.precision != opts.precision) {
    p.precisionHistory += (p.precisionHistory.empty() ? "" : "; ") + std::string("epoch ") +
                          std::to_string(p.epoch) + ": '" + meta.precision + "' -> '" +
                          opts.precision + "'";
  }
  return p;
}

RunProgress resumeRun(const CommonOptions& opts, const RunIdentity& id, nn::Module& model,
                      optim::Optimizer* optimizer, data::DataLoader* loader) {
  return resumeChecked(
      opts, id.model,
      [&](const formats::PrecisionSchedule& saved, int64_t precisionEpoch, int64_t savedEpochs,
          uint64_t seed) -> std::pair<int64_t, int64_t> {
        train::applyPrecision(model, optimizer, saved, precisionEpoch, savedEpochs, seed);
        io::LoadParts parts{{"", &model}};
        if (loader) parts.emplace_back("data", loader);
        if (optimizer) parts.emplace_back("optim", optimizer);
        io::loadCheckpoint(opts.resume, parts, {.expectModel = id.model});
        if (!loader) return {io::readMeta(opts.resume).epoch, 0};
        return {loader->position().epoch, loader->position().batch};
      });
}

RunCheckpointer::RunCheckpointer(const CommonOptions& opts, RunIdentity id)
    : opts_(opts), id_(std::move(id)) {
  if (!enabled()) return;
  manager_ = std::make_unique<io::CheckpointManager>(io::CheckpointManagerOptions{
      .path = opts.checkpoint, .keep = opts.keep, .keepBest = true,
      .goal = io::MetricGoal::Maximize, .resume = !opts.resume.empty()});
}

void RunCheckpointer::save(const RunProgress& progress, int64_t precisionEpoch,
                           const nn::Module& model, const optim::Optimizer* optimizer,
                           const data::DataLoader& loader, double testAccuracy) {
  if (!enabled()) return;
  io::CheckpointMeta meta;
  meta.app = id_.app;
  meta.model = id_.model;
  meta.modelConfig = id_.modelConfig;
  meta.precision = opts_.precision;
  meta.epoch = progress.epoch;
  meta.step = progress.step;
  meta.seed = opts_.seed;
  meta.commandLine = opts_.commandLine;
  if (testAccuracy >= 0) {
    meta.metricName = "test_accuracy";
    meta.metric = testAccuracy;
  }
  meta.extra["dataset"] = id_.dataset;
  meta.extra["precision_epoch"] = std::to_string(precisionEpoch);
  meta.extra["epochs"] = std::to_string(opts_.epochs);
  meta.extra["batch_in_epoch"] = std::to_string(progress.batch);
  if (id_.inputSize > 0) meta.extra["input_size"] = std::to_string(id_.inputSize);
  if (id_.inputChannels > 0) meta.extra["input_channels"] = std::to_string(id_.inputChannels);
  if (!progress.precisionHistory.empty()) meta.extra["precision_history"] = progress.precisionHistory;
  io::SaveParts parts{{"", &model}, {"data", &loader}};
  if (optimizer) parts.emplace_back("optim", optimizer);
  manager_->save(parts, meta);
}

train::JsonObject stepLine(const nn::Module& model, int64_t epoch, int64_t step, double loss,
                           double lr) {
  train::JsonObject o;
  o.add("event", "step").add("epoch", epoch).add("step", step).add("loss", loss).add("lr", lr);
  train::JsonObject formats;
  for (auto& [name, point] : model.namedQuantPoints()) {
    auto metrics = point->metrics();
    if (metrics.empty()) continue;
    train::JsonObject m;
    for (auto& [k, v] : metrics) m.add(k, v);
    formats.add(name, m);
    point->resetStats();  // saturation fractions per logging interval
  }
  o.add("formats", formats);
  return o;
}

int reportNonFiniteLoss(const std::string& app, const CommonOptions& opts, const std::exception& e,
                        int64_t epoch, train::JsonlLog& log) {
  std::fprintf(stderr, "%s: %s\n", app.c_str(), e.what());
  if (!opts.checkpoint.empty() && std::filesystem::exists(opts.checkpoint)) {
    std::fprintf(stderr,
                 "the last good checkpoint is %s; resume with --resume %s "
                 "(optionally with another --precision and --change-precision)\n",
                 opts.checkpoint.c_str(), opts.checkpoint.c_str());
  }
  train::JsonObject o;
  o.add("event", "error").add("epoch", epoch).add("message", e.what());
  log.write(o);
  return 3;
}

}  // namespace mantissa::cli
