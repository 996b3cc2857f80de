// Checkpoint save and load throughput. Prints CSV:
//   what,tensors,state_mb,file_mb,seconds,mb_per_s
// `save` is saveCheckpoint end to end (state collection, CRC-32, HDF5 image in memory, write,
// fsync, rename, directory fsync); `load` is loadCheckpoint end to end (read, CRC-32, shape and
// key checks, copy into the part). The state mimics ResNet-18 trained with SGD+momentum: 62
// float32 parameters of the model's sizes plus one momentum buffer each.
//   build-*/bench/mantissa-bench-checkpoint [dir=/tmp] [repeats=3]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <string>

#include "core/Rng.h"
#include "core/io/Checkpoint.h"

using namespace mantissa;

namespace {

/// Named tensors saved as they are and loaded by copying (like a module's parameters).
class Weights : public io::Stateful {
 public:
  std::map<std::string, Tensor> tensors;
  void saveState(io::StateDict& out, const std::string& prefix) const override {
    for (const auto& [k, t] : tensors) out.tensors[prefix + k] = t;
  }
  void loadState(const io::StateDict& in, const std::string& prefix) override {
    for (auto& [k, t] : tensors) {
      const Tensor& src = in.tensor(prefix + k);
      std::copy(src.data<float>(), src.data<float>() + src.numel(), t.data<float>());
    }
  }
};

double seconds(const std::function<void()>& fn, int repeats) {
  fn();  // warm-up (page cache, allocator)
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < repeats; ++i) fn();
  auto t1 = std::chrono::steady_clock::now();
  return std::chrono::duration<double>(t1 - t0).count() / repeats;
}

}  // namespace

int main(int argc, char** argv) {
  const std::filesystem::path dir = argc > 1 ? argv[1] : "/tmp";
  const int repeats = argc > 2 ? std::atoi(argv[2]) : 3;
  // ResNet-18 (ImageNet) parameter shapes: stem, 4 stages of 2 basic blocks, fc; 11,689,512.
  Rng rng(1);
  Weights model, momentum;
  int idx = 0;
  auto add = [&](Shape s) {
    const std::string name = "p" + std::to_string(idx++);
    model.tensors[name] = Tensor::randn(s, rng);
    momentum.tensors[name + "/momentum_buffer"] = Tensor::randn(s, rng);
  };
  auto bn = [&](int64_t c) {
    add({c});
    add({c});
  };
  add({64, 3, 7, 7});
  bn(64);
  int64_t in = 64;
  for (int64_t c : {64, 128, 256, 512}) {
    for (int block = 0; block < 2; ++block) {
      add({c, in, 3, 3});
      bn(c);
      add({c, c, 3, 3});
      bn(c);
      if (in != c) {
        add({c, in, 1, 1});
        bn(c);
      }
      in = c;
    }
  }
  add({1000, 512});
  add({1000});

  double stateMb = 0;
  for (const auto& [k, t] : model.tensors) stateMb += 2.0 * static_cast<double>(t.nbytes()) / 1e6;
  const auto path = dir / "mantissa-bench-checkpoint.h5";
  io::CheckpointMeta meta{.app = "bench", .model = "resnet18_like"};
  const io::SaveParts saveParts = {{"model", &model}, {"optim", &momentum}};
  const io::LoadParts loadParts = {{"model", &model}, {"optim", &momentum}};

  std::printf("what,tensors,state_mb,file_mb,seconds,mb_per_s\n");
  const double save = seconds([&] { io::saveCheckpoint(path, saveParts, meta); }, repeats);
  const double fileMb = static_cast<double>(std::filesystem::file_size(path)) / 1e6;
  const size_t tensors = 2 * model.tensors.size();
  std::printf("save,%zu,%.1f,%.1f,%.3f,%.0f\n", tensors, stateMb, fileMb, save, stateMb / save);
  const double load = seconds([&] { io::loadCheckpoint(path, loadParts); }, repeats);
  std::printf("load,%zu,%.1f,%.1f,%.3f,%.0f\n", tensors, stateMb, fileMb, load, stateMb / load);
  std::filesystem::remove(path);
  return 0;
}
