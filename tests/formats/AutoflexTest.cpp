#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "core/Error.h"
#include "core/Rng.h"
#include "core/io/StateDict.h"
#include "formats/Autoflex.h"
#include "formats/Flexpoint.h"

using namespace mantissa;
using namespace mantissa::formats;

namespace {

/// A steady-state snapshot with the §10.6 FIFO [2.0, 2.5, 3.0, 2.5] at dec 13.
AutoflexSnapshot fifoSnapshot(int64_t adjustCount, int64_t age) {
  AutoflexSnapshot s;
  s.dec = 13;
  s.fifo = {2.0, 2.5, 3.0, 2.5};
  s.initialized = true;
  s.dirty = true;
  s.adjustCount = adjustCount;
  s.age = age;
  return s;
}

Tensor tensorOf(std::vector<float> v) { return Tensor::fromVector(v); }

}  // namespace

TEST_CASE("Autoflex: steady-state prediction (FORMATS.md §10.6)") {
  Autoflex af(AutoflexConfig{});
  // mean 2.5, population sigma 0.3535534, maxval = 3.0 + 3 * 0.3535534 + 100 * 2^-13 = 4.0728672
  // -> scale 2^(2 - 14) = 2^-12.
  af.restore(fifoSnapshot(/*adjustCount=*/10, /*age=*/10));
  CHECK(af.nextDec() == 12);
  CHECK(af.decForMax(4.0728672) == 12);
  // nextDec() does not change the state.
  CHECK(af.snapshot().dec == 13);
  CHECK(af.snapshot().adjustCount == 10);
}

TEST_CASE("Autoflex: rarely-updated branch (FORMATS.md §10.6)") {
  Autoflex af(AutoflexConfig{});
  // adjust_count + 1 = 1 <= age >> 4 = 10: last two entries [3.0, 2.5] -> maxval = 3.0 +
  // 4096 * 2^-13 = 3.5 -> scale 2^(1 - 14) = 2^-13 (unchanged).
  af.restore(fifoSnapshot(/*adjustCount=*/0, /*age=*/160));
  CHECK(af.nextDec() == 13);
  SUBCASE("the boundary: adjust_count > age >> 4 takes the normal branch") {
    af.restore(fifoSnapshot(/*adjustCount=*/10, /*age=*/160));  // 11 > 10
    CHECK(af.nextDec() == 12);
    af.restore(fifoSnapshot(/*adjustCount=*/9, /*age=*/160));  // 10 > 10 is false
    CHECK(af.nextDec() == 13);
  }
}

TEST_CASE("Autoflex: overflow clears the history and doubles the recorded max (§10.6)") {
  Flexpoint flex;
  auto state = flex.makeState();
  auto* af = static_cast<Autoflex*>(state.get());
  AutoflexSnapshot s;
  s.dec = 13;
  s.initialized = true;
  s.fifo = {2.0, 2.5, 3.0, 2.5};
  s.adjustCount = 4;
  s.age = 4;
  af->restore(s);

  SUBCASE("positive saturation: maxabs 32767") {
    Tensor q = flex.quantize(tensorOf({5.0f, 1.0f}), {.step = 4}, state.get());
    // The saturated write is kept (no recompute).
    CHECK(q.toVector<float>()[0] == 3.9998779296875f);
    AutoflexSnapshot after = af->snapshot();
    CHECK(after.overflows == 1);
    REQUIRE(after.fifo.size() == 1);
    CHECK(after.fifo[0] == 7.999755859375);  // 65534 * 2^-13
    CHECK(after.lastMaxabs == 65534);
    // maxval = 7.99976 + 0 + 100 * 2^-13 = 8.0119629 -> scale 2^(3 - 14) = 2^-11.
    CHECK(af->nextDec() == 11);
  }
  SUBCASE("negative saturation: maxabs 32768") {
    flex.quantize(tensorOf({-5.0f, 1.0f}), {.step = 4}, state.get());
    AutoflexSnapshot after = af->snapshot();
    CHECK(after.overflows == 1);
    REQUIRE(after.fifo.size() == 1);
    CHECK(after.fifo[0] == 8.0);  // 65536 * 2^-13
    CHECK(af->nextDec() == 11);
  }
  SUBCASE("no overflow at maxabs 32766") {
    flex.quantize(tensorOf({32766.0f / 8192.0f}), {.step = 4}, state.get());
    CHECK(af->snapshot().overflows == 0);
    CHECK(af->snapshot().fifo.size() == 5);
  }
}

TEST_CASE("Autoflex: initialisation search (FORMATS.md §10.6)") {
  Flexpoint flex;
  SUBCASE("true max 0.05 from dec 8: two attempts, scale 2^-19") {
    auto state = flex.makeState();
    auto* af = static_cast<Autoflex*>(state.get());
    CHECK(af->snapshot().dec == 8);
    CHECK_FALSE(af->initialized());
    Tensor q = flex.quantize(tensorOf({0.05f, -0.01f}), {}, state.get());
    // dec 8: int 13, +1 = 14 < 16384 -> scale *= 2^(4 - 15) -> 2^-19, 14 < 32 so rerun;
    // dec 19: int 26214, +1 = 26215 in [16384, 32767) -> initialized.
    CHECK(af->initialized());
    CHECK(af->snapshot().dec == 19);
    CHECK(af->snapshot().initCount == 2);
    CHECK(q.toVector<float>()[0] == std::ldexp(26214.0f, -19));
    CHECK(q.toVector<float>()[1] == std::ldexp(-5243.0f, -19));  // -0.01 * 2^19 = -5242.88
    REQUIRE(af->snapshot().fifo.size() == 1);
    CHECK(af->snapshot().fifo[0] == std::ldexp(26214.0, -19));
  }
  SUBCASE("true max 1000: saturated, then under-used, scale 2^-5") {
    auto state = flex.makeState();
    auto* af = static_cast<Autoflex*>(state.get());
    Encoded e = flex.encode(tensorOf({1000.0f, 3.0f}), {}, state.get());
    // dec 8 saturates (32767 + 1 >= 32767) -> scale *= 2^7 = 0.5 (dec 1); 2000 + 1 = 2001 <
    // 16384 -> scale *= 2^(11 - 15) -> 2^-5 (dec 5), initialized since 2001 >= 32.
    CHECK(af->snapshot().dec == 5);
    CHECK(e.codes.toVector<int16_t>() == std::vector<int16_t>{32000, 96});
    CHECK(e.exponents.toVector<int16_t>() == std::vector<int16_t>{5});
    CHECK(af->snapshot().overflows == 0);
  }
  SUBCASE("all-zero tensor: gives up after 10 attempts with scale 1") {
    auto state = flex.makeState();
    auto* af = static_cast<Autoflex*>(state.get());
    flex.quantize(Tensor::zeros({8}), {}, state.get());
    CHECK(af->initialized());
    CHECK(af->snapshot().dec == 0);
    // Next prediction: maxval = 0 + 0 + 100 * 1 -> scale 2^(6 - 14) -> dec 8.
    CHECK(af->nextDec() == 8);
  }
}

TEST_CASE("Autoflex: rarely-updated tensors seen through the caller's step") {
  // Max 3.8: init at dec 13 (3.8 * 256 = 973 -> +1 = 974, bitlen 10), first write stores
  // 31130 * 2^-13. Second write (normal branch): 3.80005 + 100 * 2^-13 = 3.8123 -> dec 13.
  // Third write: adjust_count + 1 = 2 vs age >> 4.
  Flexpoint flex;
  auto run = [&](uint64_t s0, uint64_t s1, uint64_t s2) {
    auto state = flex.makeState();
    Tensor x = tensorOf({3.8f, -1.0f});
    flex.quantize(x, {.step = s0}, state.get());
    flex.quantize(x, {.step = s1}, state.get());
    return static_cast<Autoflex*>(state.get())->nextDec();
  };
  // Written every step: normal branch, dec stays 13.
  CHECK(run(0, 1, 2) == 13);
  // Written at steps 0 and 100 (age 101, 101 >> 4 = 6 >= 2): rarely updated, maxval = 3.80005 +
  // 4096 * 2^-13 = 4.30005 -> dec 12.
  CHECK(run(0, 100, 200) == 12);
}

TEST_CASE("Autoflex: growing magnitudes raise the exponent and count overflows") {
  Flexpoint flex;
  auto state = flex.makeState();
  auto* af = static_cast<Autoflex*>(state.get());
  Rng rng(3);
  Tensor base = Tensor::randn({256}, rng);
  std::vector<int> decs;  // exponent used by each write
  std::vector<int64_t> overflowsAfter;
  for (int t = 0; t < 24; ++t) {
    // Magnitude grows 2.5x per write: more than the 1-bit headroom of the prediction.
    std::vector<float> v = base.toVector<float>();
    for (float& f : v) f *= std::pow(2.5f, static_cast<float>(t)) * 1e-3f;
    flex.quantize(tensorOf(v), {.step = static_cast<uint64_t>(t)}, state.get());
    decs.push_back(af->snapshot().dec);
    overflowsAfter.push_back(af->snapshot().overflows);
  }
  CHECK(af->snapshot().overflows > 0);
  // The exponent (-dec) rose, up to the top of the range (dec 0 = scale 1).
  CHECK(decs.back() < decs.front());
  CHECK(decs.back() == 0);
  // After every overflowing write the next exponent is at least one bit larger.
  int checked = 0;
  for (size_t t = 1; t + 1 < decs.size(); ++t) {
    if (overflowsAfter[t] > overflowsAfter[t - 1] && decs[t] > 0) {
      CHECK(decs[t + 1] <= decs[t] - 1);
      ++checked;
    }
  }
  CHECK(checked > 0);
}

TEST_CASE("Autoflex: save and load mid-sequence continues bit-identically") {
  Flexpoint flex;
  Rng rng(11);
  std::vector<Tensor> inputs;
  for (int t = 0; t < 30; ++t) {
    Tensor x = Tensor::randn({100}, rng);
    std::vector<float> v = x.toVector<float>();
    float g = std::exp(0.3f * static_cast<float>(t % 13)) * (t == 17 ? 40.0f : 1.0f);
    for (float& f : v) f *= g;
    inputs.push_back(tensorOf(v));
  }
  auto a = flex.makeState();
  for (int t = 0; t < 15; ++t) flex.quantize(inputs[t], {.step = static_cast<uint64_t>(t)}, a.get());
  io::StateDict sd;
  a->saveState(sd, "quant/x/forward/state/");
  auto b = flex.makeState();
  b->loadState(sd, "quant/x/forward/state/");
  for (int t = 15; t < 30; ++t) {
    QuantizeArgs args{.step = static_cast<uint64_t>(t)};
    std::vector<float> qa = flex.quantize(inputs[t], args, a.get()).toVector<float>();
    std::vector<float> qb = flex.quantize(inputs[t], args, b.get()).toVector<float>();
    REQUIRE(qa == qb);
  }
  AutoflexSnapshot sa = static_cast<Autoflex*>(a.get())->snapshot();
  AutoflexSnapshot sb = static_cast<Autoflex*>(b.get())->snapshot();
  CHECK(sa.dec == sb.dec);
  CHECK(sa.fifo == sb.fifo);
  CHECK(sa.adjustCount == sb.adjustCount);
  CHECK(sa.overflows == sb.overflows);
  CHECK(sa.overflows > 0);  // the x40 spike at t = 17 overflowed
  CHECK(a->describe() == b->describe());

  SUBCASE("strict load: a missing key names itself") {
    io::StateDict partial = sd;
    partial.tensors.erase("quant/x/forward/state/history");
    auto c = flex.makeState();
    CHECK_THROWS_WITH_AS(c->loadState(partial, "quant/x/forward/state/"),
                         doctest::Contains("quant/x/forward/state/history"), Error);
  }
  SUBCASE("a history longer than the configured depth is rejected") {
    Flexpoint shallow(FlexpointOptions{.autoflex = {.history = 2}});
    auto c = shallow.makeState();
    CHECK_THROWS_AS(c->loadState(sd, "quant/x/forward/state/"), Error);
  }
}

TEST_CASE("Autoflex: an empty tensor is no write") {
  Flexpoint flex;
  auto state = flex.makeState();
  CHECK(flex.quantize(Tensor::zeros({0, 3}), {}, state.get()).numel() == 0);
  CHECK_FALSE(static_cast<Autoflex*>(state.get())->initialized());
  CHECK(static_cast<Autoflex*>(state.get())->snapshot().writes == 0);
}

TEST_CASE("Autoflex: metrics and a failed write leave the state unchanged") {
  Flexpoint flex;
  auto state = flex.makeState();
  flex.quantize(tensorOf({0.5f, 0.25f}), {}, state.get());
  AutoflexSnapshot before = static_cast<Autoflex*>(state.get())->snapshot();
  CHECK_THROWS_AS(flex.quantize(tensorOf({0.5f, NAN}), {.pointName = "fc.activation"}, state.get()),
                  Error);
  AutoflexSnapshot after = static_cast<Autoflex*>(state.get())->snapshot();
  CHECK(after.dec == before.dec);
  CHECK(after.fifo == before.fifo);
  CHECK(after.writes == before.writes);
  CHECK(after.dirty == before.dirty);
  bool sawExponent = false;
  for (const auto& [k, v] : state->metrics()) {
    if (k == "exponent") {
      sawExponent = true;
      CHECK(v == -before.dec);
    }
  }
  CHECK(sawExponent);
}
