#pragma once

#include <functional>
#include <memory>
#include <string>

#include "apps/cli/CommonOptions.h"
#include "apps/cli/DataSetup.h"
#include "core/Rng.h"
#include "layers/models/Model.h"

namespace mantissa::cli {

/// What an image-classification app (mantissa-resnet, mantissa-alexnet) adds to the common run.
struct ClassifierSpec {
  std::string app;  // "mantissa-resnet"
  InputSpec input;
  /// Builds the model for images with `channels` channels and `classes` classes. Its name()
  /// ("resnet20") is recorded in checkpoints and checked on --resume.
  std::function<std::shared_ptr<nn::Model>(int64_t channels, int64_t classes, Rng& rng)> makeModel;
  /// Optional, used instead of makeModel when set: also given the side of the (square) network
  /// input after the InputSpec's resize (AlexNet's fc6 width depends on it).
  std::function<std::shared_ptr<nn::Model>(int64_t channels, int64_t classes, int64_t size,
                                           Rng& rng)>
      makeModelForSize;
};

/// The whole run: data, model, optimizer, precision schedule, resume, the epoch loop with
/// evaluation, JSONL log, checkpoints every epoch and on Ctrl-C/SIGTERM, and the summary.
/// Returns the process exit code (0 done, 3 stopped by a non-finite loss, 130 interrupted).
int runClassifier(const CommonOptions& opts, const ClassifierSpec& spec);

}  // namespace mantissa::cli
