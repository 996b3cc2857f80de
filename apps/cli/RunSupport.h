#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "apps/cli/CommonOptions.h"
#include "apps/common/Metrics.h"
#include "core/io/CheckpointManager.h"
#include "data/DataLoader.h"
#include "formats/PrecisionSchedule.h"
#include "layers/Module.h"
#include "optim/LrSchedule.h"
#include "optim/Optimizer.h"

namespace mantissa::cli {

/// Sets a flag on the first SIGINT/SIGTERM (the run finishes its batch, checkpoints and exits
/// 130); a second signal ends the process at once. Restores the previous handlers on exit.
class StopFlag {
 public:
  StopFlag();
  ~StopFlag();
  StopFlag(const StopFlag&) = delete;
  StopFlag& operator=(const StopFlag&) = delete;
  const std::atomic<bool>& flag() const;
};

/// The learning rate from --lr, --lr-schedule, --lr-milestones, --lr-gamma and --warmup-epochs
/// as a function of the optimizer step t = epoch * stepsPerEpoch + batch (a pure function, so
/// resumed runs get the same rates). The options count epochs; with stepsPerEpoch > 1 the
/// cosine and the warm-up change the rate every step (the cosine reaches 0 after the last step)
/// while step/multistep change it at their epoch boundaries, as per-epoch schedules would.
optim::LrSchedulePtr makeLrSchedule(const CommonOptions& opts, int64_t stepsPerEpoch = 1);

/// What identifies a run in its checkpoint's metadata.
struct RunIdentity {
  std::string app, model, modelConfig, dataset;
  /// Side and channels of the network input (after resizing / grey-to-RGB); recorded so that
  /// tools like mantissa-ptq can rebuild the input pipeline (0 = not recorded).
  int64_t inputSize = 0, inputChannels = 0;
};

/// Where a run stands: the next batch to train is `batch` of `epoch`; `step` optimizer steps
/// were taken so far.
struct RunProgress {
  int64_t epoch = 0, batch = 0, step = 0;
  /// Precision changes made on resume ("epoch 3: fp8 -> s2fp8"), carried in the checkpoint.
  std::string precisionHistory;
};

/// How a run's state is put back from its checkpoint: given the saved precision schedule, the
/// epoch it was applied for, the run's saved epoch count and seed, rebuild those formats and
/// load the state; return where the loader stands (epoch, batch).
using RestoreFn = std::function<std::pair<int64_t, int64_t>(
    const formats::PrecisionSchedule& saved, int64_t precisionEpoch, int64_t savedEpochs,
    uint64_t seed)>;

/// What every app's --resume shares: the checkpoint must be one of `model`; a different
/// --precision needs --change-precision and is then appended to the precision history; the
/// restoring itself is `restore`'s. Errors name the file.
RunProgress resumeChecked(const CommonOptions& opts, const std::string& model,
                          const RestoreFn& restore);

/// Loads --resume into the model, optimizer and loader (either may be null: not loaded, e.g. for
/// --eval-only, which needs only the model): checks the model name and
/// the precision (a different --precision needs --change-precision and is then recorded),
/// applies the checkpoint's own schedule for the epoch it was saved in so every quantization
/// point and master format holds the saved formats, loads, and returns where the run stands.
/// Errors name the file and the key.
RunProgress resumeRun(const CommonOptions& opts, const RunIdentity& id, nn::Module& model,
                      optim::Optimizer* optimizer, data::DataLoader* loader);

/// Writes --checkpoint (atomically; --keep history files and a `-best` copy by test accuracy)
/// with everything needed to resume exactly.
class RunCheckpointer {
 public:
  RunCheckpointer(const CommonOptions& opts, RunIdentity id);
  bool enabled() const { return !opts_.checkpoint.empty(); }
  /// `precisionEpoch`: the epoch whose schedule set the current formats. `testAccuracy` < 0
  /// for a mid-epoch save (never becomes best).
  void save(const RunProgress& progress, int64_t precisionEpoch, const nn::Module& model,
            const optim::Optimizer* optimizer, const data::DataLoader& loader, double testAccuracy);

 private:
  const CommonOptions& opts_;
  RunIdentity id_;
  std::unique_ptr<io::CheckpointManager> manager_;
};

/// A "step" log line: loss, lr and every quantization point's metrics (Autoflex exponent and
/// overflows, S2FP8 alpha/beta, saturation fractions).
train::JsonObject stepLine(const nn::Module& model, int64_t epoch, int64_t step, double loss,
                           double lr);

/// What a run does when training stops on a non-finite loss (train::NonFiniteLoss): prints
/// `app: message` and where the last good checkpoint is (if one was written), logs an "error"
/// line and returns the exit code 3. The checkpoint on disk is never touched.
int reportNonFiniteLoss(const std::string& app, const CommonOptions& opts, const std::exception& e,
                        int64_t epoch, train::JsonlLog& log);

}  // namespace mantissa::cli
