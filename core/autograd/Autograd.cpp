#include "core/autograd/Autograd.h"

#include <atomic>
#include <queue>
#include <unordered_map>

#include "core/ops/Elementwise.h"

namespace mantissa::autograd {

namespace {
thread_local bool tGradEnabled = true;
std::atomic<uint64_t> gSequence{0};
}  // namespace

bool isGradEnabled() { return tGradEnabled; }
void setGradEnabled(bool enabled) { tGradEnabled = enabled; }

bool needsGrad(const std::vector<Tensor>& inputs) {
  if (!tGradEnabled) return false;
  for (const Tensor& t : inputs) {
    if (t.defined() && t.needsGrad()) return true;
  }
  return false;
}

void record(Tensor& out, std::string name, const std::vector<Tensor>& inputs, BackwardFn fn) {
  auto node = std::make_shared<Node>();
  node->name = std::move(name);
  node->backward = std::move(fn);
  node->outputShape = out.shape();
  node->sequence = gSequence.fetch_add(1);
  node->inputs.reserve(inputs.size());
  for (const Tensor& in : inputs) {
    node->inputs.push_back(in.defined() && in.needsGrad() ? in.autogradMeta() : nullptr);
    node->inputShapes.push_back(in.defined() ? in.shape() : Shape{});
  }
  auto meta = std::make_shared<AutogradMeta>();
  meta->node = std::move(node);
  out.mutableAutogradMeta() = std::move(meta);
}

namespace {

Tensor accumulate(const Tensor& acc, const Tensor& g) { return acc.defined() ? add(acc, g) : g; }

void accumulateLeaf(AutogradMeta& leaf, const Tensor& g) {
  // A fresh buffer per leaf: the same gradient tensor may reach several leaves (e.g. add), and
  // optimizers and clipping may later scale leaf gradients in place.
  leaf.grad = leaf.grad.defined() ? add(leaf.grad, g) : g.clone();
}

}  // namespace

void runBackward(const Tensor& root, const Tensor& seed, bool retainGraph) {
  MANTISSA_CHECK(root.needsGrad(), "backward(): the tensor does not require a gradient "
                 "(no input was marked with requiresGrad(), or it was computed under NoGradGuard)");
  MANTISSA_CHECK(seed.shape() == root.shape(), "backward(): seed gradient of shape ",
                 toString(seed.shape()), " for an output of shape ", toString(root.shape()));
  NoGradGuard noGrad;
  const auto& rootMeta = root.autogradMeta();
  if (!rootMeta->node) {
    accumulateLeaf(*rootMeta, seed);
    return;
  }

  // Pass 1: count, for every reachable node, how many reachable nodes feed gradient into it.
  // Explicit stack instead of recursion so a 10,000-op chain cannot overflow the call stack.
  std::unordered_map<Node*, int> pending;
  std::vector<Node*> stack{rootMeta->node.get()};
  pending[rootMeta->node.get()] = 0;
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const auto& in : n->inputs) {
      if (!in || !in->node) continue;
      auto [it, inserted] = pending.try_emplace(in->node.get(), 0);
      ++it->second;
      if (inserted) stack.push_back(in->node.get());
    }
  }

  // Pass 2: Kahn's algorithm; among ready nodes the most recently created runs first, which
  // keeps the order deterministic and releases large activations early.
  auto later = [](Node* a, Node* b) { return a->sequence < b->sequence; };
  std::priority_queue<Node*, std::vector<Node*>, decltype(later)> ready(later);
  std::unordered_map<Node*, Tensor> grads;
  ready.push(rootMeta->node.get());
  grads[rootMeta->node.get()] = seed;
  while (!ready.empty()) {
    Node* n = ready.top();
    ready.pop();
    Tensor g = std::move(grads[n]);
    grads.erase(n);
    // A node that received no gradient (every consumer returned none) still releases its
    // inputs' pending counts, so nodes reachable along other paths run.
    GradList inGrads(n->inputs.size());
    if (g.defined()) {
      MANTISSA_CHECK(n->backward != nullptr, "backward through '", n->name,
                     "' a second time: its graph was freed by the first backward() "
                     "(pass retainGraph = true to keep it)");
      inGrads = n->backward(g);
      MANTISSA_CHECK(inGrads.size() == n->inputs.size(), "backward of '", n->name, "' returned ",
                     inGrads.size(), " gradients for ", n->inputs.size(), " inputs");
    }
    if (!retainGraph) n->backward = nullptr;  // frees the tensors captured by the closure
    for (size_t i = 0; i < n->inputs.size(); ++i) {
      const auto& in = n->inputs[i];
      if (!in) continue;
      const Tensor& gi = inGrads[i];
      if (gi.defined()) {
        MANTISSA_CHECK(gi.shape() == n->inputShapes[i], "backward of '", n->name,
                       "': gradient for input ", i, " has shape ", toString(gi.shape()),
                       " but the input has shape ", toString(n->inputShapes[i]));
      }
      if (in->node) {
        Node* child = in->node.get();
        if (gi.defined()) grads[child] = accumulate(grads[child], gi);
        if (--pending[child] == 0) ready.push(child);
      } else if (gi.defined() && in->requiresGrad) {
        accumulateLeaf(*in, gi);
      }
    }
  }
}

}  // namespace mantissa::autograd
