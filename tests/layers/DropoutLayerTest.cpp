#include <doctest/doctest.h>

#include "core/Rng.h"
#include "layers/Dropout.h"
#include "tests/layers/LayerTestUtil.h"

using namespace mantissa;
namespace nn = mantissa::nn;
using mantissa::testing::checkModuleGrads;

TEST_CASE("Dropout layer: eval is the identity, training masks and rescales") {
  Rng rng(1);
  Tensor x = Tensor::rand({400}, rng, 1.f, 2.f);
  nn::Dropout d(0.25f, 7);
  CHECK(d.extraRepr() == "p=0.25");
  d.eval();
  CHECK(d.forward(x).isSameAs(x));
  d.train();
  Tensor y = d.forward(x);
  std::vector<float> vx = x.toVector(), vy = y.toVector();
  int64_t kept = 0;
  bool ok = true;
  for (size_t i = 0; i < vx.size(); ++i) {
    if (vy[i] == 0.f) continue;
    ++kept;
    ok = ok && vy[i] == vx[i] * (1.f / 0.75f);
  }
  CHECK(ok);
  // Binomial(400, 0.75): mean 300, sd 8.7; 5 sd either side.
  CHECK(kept > 300 - 44);
  CHECK(kept < 300 + 44);
  CHECK_THROWS_WITH_AS(nn::Dropout(1.f), doctest::Contains("p = 1 outside [0, 1)"), Error);
}

TEST_CASE("Dropout layer: the generator state is a buffer, so resumed runs see the same masks") {
  Rng rng(2);
  Tensor x = Tensor::rand({64}, rng, 1.f, 2.f);
  nn::Dropout a(0.5f, 11), same(0.5f, 11), other(0.5f, 12);
  CHECK(a.namedBuffers().at(0).first == "rng_state");
  Tensor first = a.forward(x);
  CHECK(same.forward(x).toVector() == first.toVector());  // seed decides the mask
  CHECK(other.forward(x).toVector() != first.toVector());
  CHECK(a.rngState().counter != Rng(11).state().counter);  // the buffer advanced

  io::StateDict sd;
  a.saveState(sd, "");
  Tensor second = a.forward(x);
  CHECK(second.toVector() != first.toVector());  // a fresh mask every step
  other.loadState(sd, "");                       // "resume" into another instance
  CHECK(other.forward(x).toVector() == second.toVector());
}

TEST_CASE("Dropout layer: gradients match central differences under a fixed mask") {
  Rng rng(3);
  nn::Dropout d(0.4f, 5);
  const Tensor saved = d.namedBuffers().at(0).second.clone();
  // Replaying the same generator state makes every forward use the same mask.
  auto fwd = [&](const Tensor& x) {
    d.setTensor("rng_state", saved);
    return d.forward(x);
  };
  auto r = checkModuleGrads(d, Tensor::randn({3, 7}, rng), {}, fwd);
  CHECK_MESSAGE(r.ok, r.message);
  d.eval();
  r = checkModuleGrads(d, Tensor::randn({3, 7}, rng));
  CHECK_MESSAGE(r.ok, r.message);
}
