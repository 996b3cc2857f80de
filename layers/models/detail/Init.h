#pragma once

#include <string_view>

#include "core/Rng.h"
#include "layers/Module.h"

namespace mantissa::nn::detail {

/// Replaces parameter `name` of `m` with samples of N(mean, std²) (same shape).
void normalInit(Module& m, std::string_view name, float mean, float std, Rng& rng);

/// PyTorch `kaiming_normal_(w, mode, nonlinearity='relu')`: N(0, 2/fan) with fan = fan_in
/// (size(1) * receptive field) or fan_out (size(0) * receptive field) of parameter `name`.
void kaimingNormalInit(Module& m, std::string_view name, bool fanOut, Rng& rng);

/// A 64-bit seed drawn from `rng` (for layers that own a generator, e.g. Dropout).
uint64_t drawSeed(Rng& rng);

}  // namespace mantissa::nn::detail
