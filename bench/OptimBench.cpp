// Optimizer step and loss throughput. Prints CSV:
//   what,threads,elements,ms_per_call,gb_per_s
// gb_per_s counts the bytes each element must move (reads + writes of parameter, gradient and
// state), so it can be compared with the machine's memory bandwidth.
//   build-*/bench/mantissa-bench-optim [elements=11689512] [repeats=10]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>

#include "core/Rng.h"
#include "core/ops/Loss.h"
#include "core/parallel/ParallelFor.h"
#include "optim/Adam.h"
#include "optim/RmsProp.h"
#include "optim/Sgd.h"

using namespace mantissa;

namespace {

double msPerCall(const std::function<void()>& fn, int repeats) {
  fn();  // warm-up: first touch of the state buffers
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < repeats; ++i) fn();
  auto t1 = std::chrono::steady_clock::now();
  return std::chrono::duration<double, std::milli>(t1 - t0).count() / repeats;
}

void row(const char* what, int threads, int64_t n, double ms, double bytesPerElement) {
  std::printf("%s,%d,%lld,%.3f,%.2f\n", what, threads, static_cast<long long>(n), ms,
              bytesPerElement * static_cast<double>(n) / (ms * 1e6));
}

}  // namespace

int main(int argc, char** argv) {
  // Default: the parameter count of ResNet-18 (11,689,512).
  const int64_t n = argc > 1 ? std::atoll(argv[1]) : 11689512;
  const int repeats = argc > 2 ? std::atoi(argv[2]) : 10;
  std::printf("what,threads,elements,ms_per_call,gb_per_s\n");
  Rng rng(1);
  for (int threads : {1, 2}) {
    setNumThreads(threads);
    auto bench = [&](const char* name, double bytes, auto make) {
      Tensor w = Tensor::randn({n}, rng, 0.f, 0.1f).requiresGrad();
      w.setGrad(Tensor::randn({n}, rng, 0.f, 0.01f));
      auto opt = make(optim::NamedParameters{{"w", w}});
      row(name, threads, n, msPerCall([&] { opt->step(); }, repeats), bytes);
    };
    // Bytes per element: SGD+momentum reads p, g, buf and writes p, buf (5 x 4 B); Adam reads
    // p, g, m, v and writes p, m, v (7 x 4 B); RMSprop like SGD+momentum plus square_avg (7 x 4 B).
    bench("sgd", 12, [](optim::NamedParameters p) {
      return std::make_unique<optim::Sgd>(p, optim::SgdOptions{.lr = 0.01});
    });
    bench("sgd_momentum", 20, [](optim::NamedParameters p) {
      return std::make_unique<optim::Sgd>(p, optim::SgdOptions{.lr = 0.01, .momentum = 0.9, .weightDecay = 5e-4});
    });
    bench("adam", 28, [](optim::NamedParameters p) {
      return std::make_unique<optim::Adam>(p, optim::AdamOptions{});
    });
    bench("rmsprop_momentum", 28, [](optim::NamedParameters p) {
      return std::make_unique<optim::RmsProp>(p, optim::RmsPropOptions{.momentum = 0.9});
    });

    // Cross-entropy forward + backward on ImageNet-sized logits [256, 1000].
    Tensor logits = Tensor::randn({256, 1000}, rng).requiresGrad();
    std::vector<int64_t> y(256);
    for (auto& v : y) v = static_cast<int64_t>(rng.uniformInt(1000));
    Tensor labels = Tensor::fromInts(y);
    // Reads logits twice (forward, backward) and writes the gradient once.
    row("cross_entropy_fwd_bwd", threads, logits.numel(),
        msPerCall([&] { crossEntropy(logits, labels).backward(); }, repeats * 10), 12);
  }
  return 0;
}
