#include <doctest/doctest.h>

#include "core/Rng.h"
#include "core/io/Checkpoint.h"
#include "core/io/Hdf5.h"
#include "core/io/PartialState.h"
#include "layers/Linear.h"
#include "tests/io/IoTestUtil.h"

using namespace mantissa;
using namespace mantissa::io;
using namespace mantissa::io::test;

namespace {

class Net : public nn::Module {
 public:
  explicit Net(uint64_t seed) : nn::Module("Net") {
    Rng rng(seed);
    fc_ = registerModule("fc", std::make_shared<nn::Linear>(3, 2, rng));
    registerBuffer("running_mean", Tensor::full({2}, static_cast<double>(seed)));
  }
  Tensor forward(const Tensor& x) override { return fc_->forward(x); }
  std::shared_ptr<nn::Linear> fc_;
};

}  // namespace

TEST_CASE("PartialState: weights-only checkpoints") {
  TempDir dir;
  const auto path = dir / "weights.h5";
  Net src(1);
  PartialState srcWeights(src, {"model", "buffers"});
  saveCheckpoint(path, {{"", &srcWeights}}, {});

  StateDict raw = readHdf5(path);
  CHECK(raw.tensors.count("model/fc.weight") == 1);
  CHECK(raw.tensors.count("buffers/running_mean") == 1);
  for (const auto& [k, v] : raw.attrs) CHECK_MESSAGE(k.rfind("meta/", 0) == 0, k);  // no quant/

  SUBCASE("load into a model: weights from the file, precision state kept") {
    Net dst(2);
    PartialState dstWeights(dst, {"model", "buffers"});
    loadCheckpoint(path, {{"", &dstWeights}});
    CHECK(dst.fc_->weight().toVector() == src.fc_->weight().toVector());
    CHECK(dst.namedBuffers()[0].second.toVector() == std::vector<float>{1, 1});
  }
  SUBCASE("the whole model cannot load from it: the quantization state is missing") {
    Net dst(2);
    std::string msg = checkpointErrorOf([&] { loadCheckpoint(path, {{"", &dst}}); });
    CHECK(
        contains(msg, "weights.h5: state: missing attribute 'quant/fc.activation/forward/format'"));
  }
  SUBCASE("the chosen groups stay strict") {
    StateDict s = readHdf5(path);
    s.tensors.erase("model/fc.bias");
    s.tensors["model/fc.extra"] = Tensor::zeros({1});
    Net dst(2);
    PartialState w(dst, {"model"});
    CHECK_THROWS_WITH_AS(w.loadState(s, ""), doctest::Contains("missing 'model/fc.bias'"), Error);
  }
}
