#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/Tensor.h"

namespace mantissa::autograd {

/// One gradient per input of an op, in input order; undefined for inputs that need none.
using GradList = std::vector<Tensor>;
/// Maps the gradient of an op's output to the gradients of its inputs.
using BackwardFn = std::function<GradList(const Tensor& gradOutput)>;

/// Per-tensor autograd state. A leaf has no `node`; a recorded result points at its node.
struct AutogradMeta {
  bool requiresGrad = false;
  Tensor grad;
  std::shared_ptr<Node> node;
};

/// A recorded op: its backward closure and, for each input, the input's autograd state
/// (null when that input needs no gradient). Closures capture detach()ed tensors only, so the
/// graph has no cycles and is freed with its last output.
struct Node {
  std::string name;
  BackwardFn backward;
  std::vector<std::shared_ptr<AutogradMeta>> inputs;
  std::vector<Shape> inputShapes;
  Shape outputShape;
  uint64_t sequence = 0;  // creation order (ties broken deterministically)
};

/// Whether ops record themselves (thread-local; default on).
bool isGradEnabled();
void setGradEnabled(bool enabled);

/// Disables recording for its scope (inference, optimizer updates, backward closures).
class NoGradGuard {
 public:
  NoGradGuard() : prev_(isGradEnabled()) { setGradEnabled(false); }
  ~NoGradGuard() { setGradEnabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

/// True when grad mode is on and any input needs a gradient.
bool needsGrad(const std::vector<Tensor>& inputs);

/// Attaches `out` to the graph as the result of op `name` applied to `inputs`. `fn` receives
/// the gradient of `out` and returns one gradient per input (shapes are checked by the engine).
void record(Tensor& out, std::string name, const std::vector<Tensor>& inputs, BackwardFn fn);

/// Runs reverse-mode differentiation from `root` with seed gradient `grad`; gradients
/// accumulate into leaves that require them. Iterative (no recursion): chains of any length.
void runBackward(const Tensor& root, const Tensor& grad, bool retainGraph);

}  // namespace mantissa::autograd
