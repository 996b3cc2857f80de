#pragma once

#include "core/Rng.h"
#include "layers/Module.h"

namespace mantissa::nn {

/// Inverted dropout, PyTorch `nn.Dropout`: in training mode each element is zeroed with
/// probability p and the survivors scaled by 1/(1-p); identity in eval mode.
///
/// The layer owns its generator, seeded by the constructor. Its complete state lives in the
/// I64 buffer `rng_state` = {seed, stream, counter, buffered index} (Rng::State), read before and
/// written after every training forward, so a checkpoint saves it with the model and a resumed
/// run draws the same masks as an uninterrupted one. (PyTorch's Dropout has no state_dict entry;
/// this buffer is the only key that differs.)
class Dropout : public Module {
 public:
  explicit Dropout(float p = 0.5f, uint64_t seed = 0);

  Tensor forward(const Tensor& x) override;
  /// "p=0.5".
  std::string extraRepr() const override;

  float p() const { return p_; }
  /// The generator's current state (as saved in `rng_state`).
  Rng::State rngState() const;

 private:
  float p_;
  Tensor state_;
};

}  // namespace mantissa::nn
