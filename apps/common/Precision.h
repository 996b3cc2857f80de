#pragma once

#include <cstdint>

#include "formats/PrecisionSchedule.h"
#include "layers/Module.h"
#include "optim/Optimizer.h"

namespace mantissa::train {

/// Applies `schedule` for `epoch` of `numEpochs`: every dot-product layer's quantization points
/// get their formats, and the optimizer (if any) gets each weight's master format (parameters
/// without one go back to FP32). Adaptive state survives when a format does not change, so
/// this is called at the start of every epoch. `seed` seeds stochastic rounding.
void applyPrecision(nn::Module& model, optim::Optimizer* optimizer,
                    const formats::PrecisionSchedule& schedule, int64_t epoch, int64_t numEpochs,
                    uint64_t seed);

}  // namespace mantissa::train
