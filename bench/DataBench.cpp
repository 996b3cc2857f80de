// Loader throughput: Fashion-MNIST through the DataLoader with the standard augmentation, one
// loading thread. Prints CSV (one row per configuration) on stdout.
//
//   mantissa-bench-data [--dir /usr/share/datasets/fashion-mnist] [--epochs 3] [--batch-size 128]
//
// Configurations: no transform; pad 4 + random 28x28 crop + horizontal flip + normalise (the
// CIFAR-style augmentation used for Fashion-MNIST training), both with the background thread
// (prefetch 2) and on the calling thread (prefetch 0); and the AlexNet input pipeline
// (bilinear 227x227, normalise, grey to RGB) on a few batches.

#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>

#include <cxxopts.hpp>

#include "core/parallel/ParallelFor.h"
#include "data/DataLoader.h"
#include "data/IdxDataset.h"
#include "data/Transforms.h"

using namespace mantissa;
using Clock = std::chrono::steady_clock;

namespace {
struct Result {
  int64_t images = 0;
  double seconds = 0;     // wall clock, as the consumer sees it
  double cpuSeconds = 0;  // CPU time of the whole process (loader thread + consumer)
  double checksum = 0;
};

/// CPU time of the process: on a shared machine the wall clock also counts other jobs; the CPU
/// time shows what loading costs by itself.
double processCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

/// Runs `epochs` epochs (or `maxBatches` batches per epoch when > 0) and times them end to end
/// as the consumer sees them.
Result run(data::DataLoader& loader, int64_t epochs, int64_t maxBatches) {
  Result r;
  const double cpuStart = processCpuSeconds();
  auto start = Clock::now();
  for (int64_t e = 0; e < epochs; ++e) {
    for (const data::Batch& b : loader.epoch(e)) {
      r.images += b.data.size(0);
      r.checksum += b.data.data<float>()[0];  // touch the batch as a consumer would
      if (maxBatches > 0 && b.index + 1 >= maxBatches) break;
    }
  }
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  r.cpuSeconds = processCpuSeconds() - cpuStart;
  return r;
}
}  // namespace

int main(int argc, char** argv) {
  cxxopts::Options cli("mantissa-bench-data", "DataLoader throughput on Fashion-MNIST (CSV)");
  cli.add_options()("dir", "Fashion-MNIST directory",
                    cxxopts::value<std::string>()->default_value(data::kFashionMnistDir))(
      "epochs", "epochs per configuration", cxxopts::value<int64_t>()->default_value("3"))(
      "batch-size", "batch size", cxxopts::value<int64_t>()->default_value("128"))(
      "alexnet-batches", "batches for the 227x227 configuration",
      cxxopts::value<int64_t>()->default_value("40"))("h,help", "usage");
  auto args = cli.parse(argc, argv);
  if (args.count("help")) {
    std::printf("%s\n", cli.help().c_str());
    return 0;
  }
  const int64_t epochs = args["epochs"].as<int64_t>();
  const int64_t batchSize = args["batch-size"].as<int64_t>();
  setNumThreads(1);  // nothing in the loader uses OpenMP; keep it that way for the figure

  auto t0 = Clock::now();
  data::FashionMnist train(args["dir"].as<std::string>(), data::Split::Train);
  double loadSeconds = std::chrono::duration<double>(Clock::now() - t0).count();
  std::fprintf(stderr, "read %s in %.2f s\n", train.name().c_str(), loadSeconds);

  // Fashion-MNIST training-set statistics.
  const data::Normalize normalise({0.2860f}, {0.3530f});
  const data::Transform augment =
      data::Compose({data::RandomCrop(28, 4), data::RandomHorizontalFlip(), normalise});
  // Cheapest order for AlexNet inputs: resize and normalise the one grey channel, then copy it
  // to three (bilinear weights sum to one, so normalising before or after resizing agrees).
  const data::Transform alexnet = data::Compose({data::Resize(227), normalise, data::GreyToRgb()});

  struct Config {
    const char* name;
    data::Transform transform;
    int64_t prefetch;
    int64_t epochs, maxBatches;
  };
  const Config configs[] = {
      {"none", {}, 2, epochs, 0},
      {"crop+flip+normalise", augment, 2, epochs, 0},
      {"crop+flip+normalise (no prefetch thread)", augment, 0, epochs, 0},
      {"resize227+normalise+grey->rgb", alexnet, 2, 1, args["alexnet-batches"].as<int64_t>()},
  };
  std::printf(
      "config,batch_size,prefetch,images,seconds,images_per_s,cpu_seconds,images_per_cpu_s\n");
  for (const Config& c : configs) {
    data::DataLoader loader(train, {.batchSize = batchSize,
                                    .shuffle = true,
                                    .seed = 7,
                                    .prefetch = c.prefetch,
                                    .transform = c.transform});
    Result r = run(loader, c.epochs, c.maxBatches);
    std::printf("\"%s\",%lld,%lld,%lld,%.3f,%.0f,%.3f,%.0f\n", c.name,
                static_cast<long long>(batchSize), static_cast<long long>(c.prefetch),
                static_cast<long long>(r.images), r.seconds,
                static_cast<double>(r.images) / r.seconds, r.cpuSeconds,
                static_cast<double>(r.images) / r.cpuSeconds);
    std::fflush(stdout);
  }
  return 0;
}
