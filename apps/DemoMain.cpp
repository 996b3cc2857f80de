// mantissa-demo: a self-check that the engine works on this machine. Fits y = 3x - 1 with
// autograd and plain gradient descent, then prints what it found. The training apps
// (mantissa-resnet, ...) replace this as the quick-start demo once they land.
#include <cstdio>

#include "core/Rng.h"
#include "core/Version.h"
#include "core/autograd/Autograd.h"
#include "core/ops/Elementwise.h"
#include "core/ops/Reduce.h"
#include "core/parallel/ParallelFor.h"

using namespace mantissa;

int main() {
  std::printf("Mantissa %s self-check (%d threads)\n", versionString(), numThreads());
  Rng rng(1);
  Tensor x = Tensor::rand({256, 1}, rng, -1.f, 1.f);
  Tensor y = x * 3.f - 1.f + Tensor::randn({256, 1}, rng, 0.f, 0.01f);
  Tensor w = Tensor::zeros({1}).requiresGrad();
  Tensor b = Tensor::zeros({1}).requiresGrad();
  float loss = 0;
  for (int step = 0; step < 200; ++step) {
    Tensor err = sub(add(mul(x, w), b), y);
    Tensor l = mean(mul(err, err));
    w.zeroGrad();
    b.zeroGrad();
    l.backward();
    autograd::NoGradGuard guard;
    w = sub(w, mul(w.grad(), 0.5f)).requiresGrad();
    b = sub(b, mul(b.grad(), 0.5f)).requiresGrad();
    loss = l.item();
  }
  std::printf("fit y = %.3f x %+.3f (true 3x - 1), mse %.2e\n", w.item(), b.item(), loss);
  bool ok = std::abs(w.item() - 3.f) < 0.01f && std::abs(b.item() + 1.f) < 0.01f;
  std::printf("%s\n", ok ? "self-check passed" : "self-check FAILED");
  return ok ? 0 : 1;
}
