#pragma once

// Helpers for the app tests: a tiny IDX dataset written on the spot, an argv built from
// strings, and reading back JSONL logs.

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include <cstring>

#include "apps/cli/ClassifierRun.h"
#include "apps/cli/JsonValue.h"
#include "core/Rng.h"
#include "core/io/Checkpoint.h"
#include "core/io/Hdf5.h"
#include "layers/models/CifarResNet.h"
#include "tests/data/DataTestUtil.h"

namespace mantissa::apps::test {

using data::test::TempDir;

/// `side` x `side` grey images of 10 classes as IDX files in `dir`: class k is a bright
/// horizontal band at a class-dependent height plus uniform noise, so a small network learns
/// it within a few steps.
inline void writeImages(const std::string& dir, uint32_t train, uint32_t test, uint32_t side = 28) {
  Rng rng(11);
  for (auto [name, count] : {std::pair{"train", train}, std::pair{"t10k", test}}) {
    std::vector<uint8_t> pixels, labels;
    for (uint32_t i = 0; i < count; ++i) {
      uint8_t label = static_cast<uint8_t>(i % 10);
      labels.push_back(label);
      for (uint32_t y = 0; y < side; ++y) {
        for (uint32_t x = 0; x < side; ++x) {
          bool on = y * 10 / side == label;
          pixels.push_back(static_cast<uint8_t>((on ? 170 : 10) + rng.uniformInt(70)));
        }
      }
    }
    data::test::writeBytes(dir + "/" + name + "-images-idx3-ubyte",
                           data::test::idxBytes({count, side, side}, pixels));
    data::test::writeBytes(dir + "/" + name + "-labels-idx1-ubyte",
                           data::test::idxBytes({count}, labels));
  }
}

/// argv for an app's main function, from strings (argv[0] is the app name).
class Args {
 public:
  Args(std::vector<std::string> args) : args_(std::move(args)) {
    for (std::string& a : args_) ptrs_.push_back(a.data());
    ptrs_.push_back(nullptr);
  }
  int argc() const { return static_cast<int>(args_.size()); }
  char** argv() { return ptrs_.data(); }

 private:
  std::vector<std::string> args_;
  std::vector<char*> ptrs_;
};

/// Runs `app` on `args` (argv[0] added).
inline int runApp(int (*app)(int, char**), const std::string& name, std::vector<std::string> args) {
  args.insert(args.begin(), name);
  Args a(std::move(args));
  return app(a.argc(), a.argv());
}

/// Every line of a JSONL file, parsed.
inline std::vector<cli::JsonValue> readJsonl(const std::string& path) {
  std::ifstream f(path);
  std::vector<cli::JsonValue> out;
  std::string line;
  while (std::getline(f, line)) {
    if (!line.empty()) out.push_back(cli::JsonValue::parse(line));
  }
  return out;
}

/// The lines whose "event" is `event`.
inline std::vector<cli::JsonValue> events(const std::vector<cli::JsonValue>& lines,
                                          const std::string& event) {
  std::vector<cli::JsonValue> out;
  for (const auto& l : lines) {
    const cli::JsonValue* e = l.find("event");
    if (e && e->isString() && e->string() == event) out.push_back(l);
  }
  return out;
}

inline std::string readFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

/// A ResNet-8 checkpoint trained for `batches` batches of 16 on the dataset in `dataDir`
/// through the same run as mantissa-resnet (model "resnet8").
inline void trainResnet8(const std::string& dataDir, const std::string& checkpoint, int64_t batches,
                         const std::string& precision = "fp32") {
  cli::CommonOptions o;
  o.precision = precision;
  o.data = dataDir;
  o.batchSize = 16;
  o.lr = 0.05;
  o.limitBatches = batches;
  o.limitTestBatches = 1;
  o.checkpoint = checkpoint;
  o.quiet = true;
  cli::ClassifierSpec spec;
  spec.app = "mantissa-resnet";
  spec.input = {.augment = false};
  spec.makeModel = [](int64_t channels, int64_t classes, Rng& rng) {
    return std::make_shared<nn::CifarResNet>(
        nn::CifarResNetOptions{.depth = 8, .inChannels = channels, .numClasses = classes}, rng);
  };
  REQUIRE(cli::runClassifier(o, spec) == 0);
}

/// Two checkpoints hold the same state bit for bit: every tensor and attribute outside /meta
/// (which holds times and command lines), and the same step count.
inline void checkSameState(const std::string& a, const std::string& b) {
  io::StateDict sa = io::readHdf5(a), sb = io::readHdf5(b);
  int64_t compared = 0;
  for (const auto& [key, t] : sa.tensors) {
    if (key.rfind("meta/", 0) == 0) continue;
    CAPTURE(key);
    REQUIRE(sb.tensors.count(key));
    const Tensor& u = sb.tensors.at(key);
    REQUIRE(u.shape() == t.shape());
    REQUIRE(u.dtype() == t.dtype());
    CHECK(std::memcmp(u.contiguous().storage()->data(), t.contiguous().storage()->data(),
                      t.nbytes()) == 0);
    ++compared;
  }
  CHECK(compared > 10);
  CHECK(sa.tensors.size() == sb.tensors.size());
  for (const auto& [key, v] : sa.attrs) {
    if (key.rfind("meta/", 0) == 0) continue;
    CAPTURE(key);
    REQUIRE(sb.attrs.count(key));
    CHECK(sb.attrs.at(key) == v);
  }
  CHECK(io::readMeta(a).step == io::readMeta(b).step);
}

}  // namespace mantissa::apps::test
