#pragma once

#include <atomic>
#include <cstdint>
#include <functional>

#include "apps/common/Progress.h"
#include "core/Error.h"
#include "data/DataLoader.h"
#include "layers/Module.h"
#include "optim/Optimizer.h"

namespace mantissa::train {

/// Thrown when the training loss becomes NaN or Inf; the run stops before the optimizer step,
/// so the parameters and the last checkpoint are still those of the last good step.
class NonFiniteLoss : public Error {
 public:
  using Error::Error;
};

struct EpochResult {
  double loss = 0;       // mean training (or evaluation) loss over the batches run
  double accuracy = 0;   // fraction of correct top-1 predictions
  int64_t images = 0, batches = 0;
  double seconds = 0;
  double imagesPerSec = 0;  // excluding the warm-up batches
  bool stopped = false;     // ended early by a stop request (Ctrl-C / SIGTERM)
};

struct TrainEpochOptions {
  int64_t epoch = 0, numEpochs = 1;
  int64_t startBatch = 0;     // resume inside an epoch
  int64_t limitBatches = 0;   // 0 = the whole epoch
  int64_t warmupBatches = 2;  // excluded from images/s
  /// Checked after every batch; when set the epoch ends early with `stopped`.
  const std::atomic<bool>* stop = nullptr;
  /// Called after every optimizer step with (batch index within the epoch, loss).
  std::function<void(int64_t, double)> afterStep;
};

/// One epoch of supervised classification: forward, cross-entropy, backward, optimizer step.
/// Throws NonFiniteLoss naming the epoch and batch when the loss is not finite.
EpochResult trainClassifierEpoch(nn::Module& model, optim::Optimizer& optimizer,
                                 data::DataLoader& loader, const TrainEpochOptions& opts,
                                 Progress* progress = nullptr);

/// Loss and top-1 accuracy in eval mode without gradients (`limitBatches` 0 = all).
EpochResult evaluateClassifier(nn::Module& model, data::DataLoader& loader, int64_t limitBatches = 0);

}  // namespace mantissa::train
