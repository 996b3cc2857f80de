#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/Rng.h"
#include "core/io/StateDict.h"
#include "formats/Ffp8.h"
#include "tests/formats/FormatTestUtil.h"

using namespace mantissa;
using namespace mantissa::formats;
using namespace mantissa::formats::testutil;

namespace {

const Ffp8Params kConfigs[] = {
    {1, 4, 3, 7},   {0, 4, 4, 10}, {1, 5, 2, 20}, {0, 3, 5, -2}, {1, 2, 5, 1},
    {0, 7, 1, 60},  {1, 0, 7, 5},  {1, 7, 0, 64}, {0, 1, 7, 0},  {1, 3, 4, 100},
};

double ref(const Ffp8Params& p, unsigned code) {
  return refDecode(code, p.s, p.e, p.f, p.b, RefSpecials::None);
}

}  // namespace

TEST_CASE("Ffp8: all 256 codes of several (s, e, f, b) decode to the definition's values") {
  for (const Ffp8Params& p : kConfigs) {
    CAPTURE(p.spec());
    Ffp8 f(p);
    CHECK(f.spec() == p.spec());
    std::vector<float> got = decodeAllCodes(f, p.spec());
    double mx = 0;
    for (unsigned c = 0; c < 256; ++c) {
      CAPTURE(c);
      double v = ref(p, c);
      CHECK(std::isfinite(v));  // no Inf/NaN codes
      CHECK(sameFloat(got[c], static_cast<float>(v)));
      mx = std::max(mx, std::fabs(v));
    }
    CHECK(static_cast<double>(p.maxValue()) == mx);
  }
}

TEST_CASE("Ffp8: every code round-trips, every midpoint rounds to the even code") {
  for (const Ffp8Params& p : kConfigs) {
    CAPTURE(p.spec());
    Ffp8 f(p);
    std::vector<float> values;
    for (unsigned c = 0; c < 256; ++c) values.push_back(static_cast<float>(ref(p, c)));
    std::vector<float> q = quantizeValues(f, values);
    std::vector<uint8_t> codes = encodeValues(f, values);
    for (unsigned c = 0; c < 256; ++c) {
      CAPTURE(c);
      CHECK(bitsOf(q[c]) == bitsOf(values[c]));
      CHECK(codes[c] == c);
    }
    // Non-negative codes in increasing order: 0 .. 2^(e+f) - 1.
    unsigned nPos = 1u << (p.e + p.f);
    std::vector<float> in, expected;
    for (unsigned c = 0; c + 1 < nPos; ++c) {
      double lo = ref(p, c), hi = ref(p, c + 1);
      REQUIRE(lo < hi);
      auto mid = static_cast<float>((lo + hi) / 2);
      REQUIRE(static_cast<double>(mid) == (lo + hi) / 2);
      auto even = static_cast<float>(ref(p, (c & 1u) ? c + 1 : c));
      in.insert(in.end(), {mid, std::nextafter(mid, 0.f), std::nextafter(mid, 1e38f)});
      expected.insert(expected.end(), {even, static_cast<float>(lo), static_cast<float>(hi)});
      if (p.s == 1) {
        in.insert(in.end(), {-mid, -std::nextafter(mid, 1e38f)});
        expected.insert(expected.end(), {-even, -static_cast<float>(hi)});
      }
    }
    std::vector<float> got = quantizeValues(f, in);
    int64_t bad = 0;
    for (size_t i = 0; i < in.size(); ++i) bad += !sameFloat(got[i], expected[i]);
    CHECK(bad == 0);
  }
}

TEST_CASE("Ffp8: saturation, underflow and unsigned clamping") {
  for (const Ffp8Params& p : kConfigs) {
    CAPTURE(p.spec());
    Ffp8 f(p);
    float mx = p.maxValue();
    float minPos = static_cast<float>(ref(p, 1));
    QuantStats st;
    std::vector<float> q = quantizeValues(
        f, {std::nextafter(mx, 3e38f), 3e38f, -3e38f, minPos / 2, std::nextafter(minPos / 2, 1.f),
            -1.f, -0.f},
        &st);
    CHECK(q[0] == mx);
    CHECK(q[1] == mx);
    CHECK(q[2] == (p.s ? -mx : 0.f));
    CHECK(q[3] == 0.f);  // tie between 0 and the smallest code: even (0)
    CHECK(q[4] == minPos);
    if (p.s == 0) {
      CHECK(bitsOf(q[5]) == 0u);  // no sign bit: negative inputs clamp to +0
      CHECK(bitsOf(q[6]) == 0u);
    }
    CHECK(st.flushed == 1 + (p.s == 1 && -1.f > -minPos / 2 ? 1 : 0));
  }
}

TEST_CASE("Ffp8: a non-finite input is an error naming the quantization point") {
  Ffp8 f({1, 4, 3, 7});
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    QuantizeArgs args{.pointName = "layer1.conv.activation"};
    CHECK_THROWS_WITH_AS(f.quantize(Tensor::fromVector({1.f, bad}), args),
                         doctest::Contains("layer1.conv.activation"), Error);
    CHECK_THROWS_WITH_AS(f.encode(Tensor::fromVector({bad}), args),
                         doctest::Contains("no Inf/NaN"), Error);
  }
  Ffp8Auto a;
  auto st = a.makeState();
  QuantizeArgs args{.pointName = "fc.weight"};
  CHECK_THROWS_WITH_AS(a.quantize(Tensor::fromVector({std::numeric_limits<float>::infinity()}),
                                  args, st.get()),
                       doctest::Contains("fc.weight"), Error);
  CHECK_THROWS_WITH_AS(calibrateFfp8({Tensor::fromVector({1.f, std::nanf("")})}),
                       doctest::Contains("sample 0"), Error);
}

TEST_CASE("Ffp8: bias and layout limits are checked") {
  CHECK_THROWS_WITH_AS(Ffp8({1, 4, 4, 7}), doctest::Contains("s + e + f must be 8"), Error);
  CHECK_THROWS_WITH_AS(Ffp8({1, 4, 3, 200}), doctest::Contains("allowed: integer in [-112, 127]"),
                       Error);
  CHECK_THROWS_WITH_AS(Ffp8({2, 3, 3, 7}), doctest::Contains("s=2"), Error);
  CHECK(Ffp8Params::biasRange(7) == std::pair<int, int>{0, 127});
  CHECK(Ffp8Params::biasRange(0) == std::pair<int, int>{-126, 127});
}

TEST_CASE("Ffp8: calibration on data where the answer is known") {
  Rng rng(4);
  SUBCASE("all-positive data drops the sign bit") {
    Tensor x = Tensor::rand({20000}, rng, 0.f, 6.f);
    Ffp8Calibration cal = calibrateFfp8({x});
    CHECK(cal.nonNegative);
    CHECK(cal.best.s == 0);
    CHECK(cal.candidates.size() == 7);
    for (const auto& c : cal.candidates) CHECK(c.params.s == 0);
  }
  SUBCASE("signed data keeps it") {
    Tensor x = Tensor::randn({20000}, rng);
    Ffp8Calibration cal = calibrateFfp8({x});
    CHECK_FALSE(cal.nonNegative);
    CHECK(cal.best.s == 1);
  }
  SUBCASE("each candidate's bias just covers the max; the best has the lowest MSE") {
    Tensor a = Tensor::randn({5000}, rng, 0.f, 0.05f);
    Tensor b = Tensor::randn({3000}, rng, 0.f, 0.02f);
    Ffp8Calibration cal = calibrateFfp8({a, b});
    CHECK(cal.count == 8000);
    double mx = 0;
    for (const Tensor& t : {a, b}) {
      for (float v : t.toVector<float>()) mx = std::max(mx, std::fabs(static_cast<double>(v)));
    }
    CHECK(cal.maxAbs == mx);
    double best = std::numeric_limits<double>::infinity();
    for (const auto& c : cal.candidates) {
      const Ffp8Params& p = c.params;
      CAPTURE(p.spec());
      CHECK(p.s + p.e + p.f == 8);
      // Largest representable value from the definition: top exponent code, all-ones fraction.
      auto maxOf = [&](int bias) {
        return std::ldexp(2.0 - std::ldexp(1.0, -p.f), (1 << p.e) - 1 - bias);
      };
      CHECK(maxOf(p.b) >= mx);
      if (p.b < Ffp8Params::biasRange(p.e).second) CHECK(maxOf(p.b + 1) < mx);
      // MSE recomputed here from the format's quantize.
      Ffp8 f(p);
      double se = 0;
      for (const Tensor& t : {a, b}) {
        std::vector<float> v = t.toVector<float>(), q = quantizeValues(f, v);
        for (size_t i = 0; i < v.size(); ++i) se += std::pow(double(q[i]) - double(v[i]), 2);
      }
      CHECK(c.mse == doctest::Approx(se / 8000).epsilon(1e-9));
      best = std::min(best, c.mse);
    }
    CHECK(cal.mse == best);
  }
  SUBCASE("a heavy-tailed tensor gets more exponent bits than a narrow Gaussian") {
    // Cauchy samples: most values near 1, a few in the thousands. Covering the max with few
    // exponent bits flushes the bulk to zero, so the MSE-best layout spends bits on exponent.
    Tensor narrow = Tensor::randn({20000}, rng, 0.f, 0.01f);
    std::vector<float> heavy(20000);
    for (auto& v : heavy) v = std::tan(3.14159265f * (rng.uniform() - 0.5f));
    Ffp8Calibration n = calibrateFfp8({narrow});
    Ffp8Calibration h = calibrateFfp8({Tensor::fromVector(heavy)});
    CAPTURE(n.best.spec());
    CAPTURE(h.best.spec());
    CHECK(n.best.f >= 4);
    CHECK(h.best.e > n.best.e);
    CHECK(h.best.f < n.best.f);
  }
}

TEST_CASE("Ffp8: ffp8:auto calibrates once, reuses the choice and checkpoints it") {
  FormatPtr f = parse("ffp8:auto");
  CHECK(f->spec() == "ffp8:auto");
  auto state = f->makeState();
  Rng rng(6);
  Tensor relu = Tensor::rand({4096}, rng, 0.f, 3.f);
  QuantizeArgs args{.pointName = "fc.activation"};
  Tensor q1 = f->quantize(relu, args, state.get());
  auto* st = dynamic_cast<Ffp8AutoState*>(state.get());
  REQUIRE(st != nullptr);
  REQUIRE(st->chosen.has_value());
  Ffp8Params chosen = *st->chosen;
  CHECK(chosen == calibrateFfp8({relu}).best);
  CHECK(chosen.s == 0);
  CHECK(q1.toVector<float>() == Ffp8(chosen).quantize(relu, {}).toVector<float>());
  // A later, wider tensor reuses the calibrated choice (it saturates).
  Tensor big = Tensor::rand({100}, rng, 0.f, 1000.f);
  CHECK(f->quantize(big, args, state.get()).toVector<float>() ==
        Ffp8(chosen).quantize(big, {}).toVector<float>());
  CHECK(*st->chosen == chosen);
  // encode records the fixed spec, so the codes decode anywhere.
  Encoded e = f->encode(relu, args, state.get());
  CHECK(e.spec == chosen.spec());
  CHECK(f->decode(e).toVector<float>() == q1.toVector<float>());
  CHECK(parse(e.spec)->decode(e).toVector<float>() == q1.toVector<float>());
  // Checkpoint round trip and clone.
  io::StateDict sd;
  state->saveState(sd, "quant/fc.activation/forward/");
  auto fresh = f->makeState();
  fresh->loadState(sd, "quant/fc.activation/forward/");
  CHECK(*dynamic_cast<Ffp8AutoState*>(fresh.get())->chosen == chosen);
  CHECK(fresh->describe() == state->describe());
  auto copy = state->clone();
  CHECK(*dynamic_cast<Ffp8AutoState*>(copy.get())->chosen == chosen);
  // Uncalibrated state round-trips as uncalibrated.
  io::StateDict sd2;
  f->makeState()->saveState(sd2, "p/");
  auto s2 = f->makeState();
  s2->loadState(sd2, "p/");
  CHECK_FALSE(dynamic_cast<Ffp8AutoState*>(s2.get())->chosen.has_value());
  CHECK_THROWS_WITH_AS(f->quantize(relu, args, nullptr), doctest::Contains("makeState"), Error);
  // An empty tensor neither fails nor fixes the configuration.
  auto s3 = f->makeState();
  CHECK(f->quantize(Tensor::empty({0, 4}), args, s3.get()).shape() == Shape{0, 4});
  CHECK(f->decode(f->encode(Tensor::empty({0}), args, s3.get())).numel() == 0);
  CHECK_FALSE(dynamic_cast<Ffp8AutoState*>(s3.get())->chosen.has_value());
}

TEST_CASE("Ffp8: empty and non-contiguous inputs") {
  Ffp8 f({1, 4, 3, 7});
  CHECK(f.quantize(Tensor::empty({0}), {}).numel() == 0);
  Tensor m = Tensor::fromVector({1.f, 0.1f, 3.f, -0.3f}, {2, 2}).transpose(0, 1);
  CHECK(f.quantize(m, {}).toVector<float>() ==
        std::vector<float>{1.f, 3.f, 0.1015625f, -0.3125f});
}
