#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/Tensor.h"

namespace mantissa::autograd {

struct GradCheckOptions {
  /// Central-difference step.
  double eps = 1e-3;
  double atol = 1e-3;
  double rtol = 1e-2;
  /// Check at most this many elements per input (chosen evenly); 0 = all.
  int64_t maxElements = 0;
};

/// Result of a gradient check; converts to bool. `message` names the first failing element.
struct GradCheckResult {
  bool ok = true;
  std::string message;
  explicit operator bool() const { return ok; }
};

/// Compares the analytic gradient of sum(fn(inputs) * R) (R a fixed random projection, so every
/// output element matters) with central differences, for every input that needs a gradient.
/// Function values are accumulated in double; inputs stay F32, so pick eps against F32 noise.
GradCheckResult gradCheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                          const std::vector<Tensor>& inputs, GradCheckOptions opts = {});

}  // namespace mantissa::autograd
