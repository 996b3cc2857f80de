#pragma once

#include "layers/Module.h"

namespace mantissa::nn {

/// Merges axes [startDim, endDim] into one, PyTorch `nn.Flatten` (default: everything but the
/// batch axis, [N, C, H, W] -> [N, C*H*W]).
class Flatten : public Module {
 public:
  explicit Flatten(int64_t startDim = 1, int64_t endDim = -1);

  Tensor forward(const Tensor& x) override;
  /// "start_dim=1, end_dim=-1".
  std::string extraRepr() const override;

 private:
  int64_t start_, end_;
};

}  // namespace mantissa::nn
