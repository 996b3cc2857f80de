#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <vector>

#include "core/Error.h"
#include "core/Rng.h"
#include "formats/Flexpoint.h"
#include "formats/detail/FlexpointKernels.h"

using namespace mantissa;
using namespace mantissa::formats;
namespace fd = mantissa::formats::detail;

namespace {

/// Reference flexN quantizer from the definition, in double precision.
double refFlex(double x, int dec, int bits) {
  double lo = -std::ldexp(1.0, bits - 1), hi = std::ldexp(1.0, bits - 1) - 1;
  double m = std::clamp(std::nearbyint(std::ldexp(x, dec)), lo, hi);
  return std::ldexp(m, -dec) + 0.0;
}

/// Values spread over many binades, with exact ties and zeros mixed in.
std::vector<float> wideValues(int n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (int i = 0; i < n; ++i) {
    float g = rng.normal() * std::ldexp(1.0f, static_cast<int>(rng.uniformInt(40)) - 25);
    if (i % 17 == 0) g = std::ldexp(static_cast<float>(static_cast<int>(rng.uniformInt(400)) - 200) + 0.5f, -13);
    if (i % 23 == 0) g = 0.0f;
    v[i] = g;
  }
  return v;
}

std::vector<fd::KernelIsa> isas() {
  std::vector<fd::KernelIsa> r{fd::KernelIsa::Generic};
  if (fd::bestKernelIsa() == fd::KernelIsa::Avx512) r.push_back(fd::KernelIsa::Avx512);
  return r;
}

}  // namespace

TEST_CASE("Flexpoint: encode with scale 2^-13 (FORMATS.md §10.6)") {
  Flexpoint flex;
  QuantStats stats;
  Tensor x = Tensor::fromVector({3.0f, 0.1f, 5.0f, -5.0f});
  std::vector<float> q = flex.quantizeWithDec(x, 13, {.stats = &stats}).toVector<float>();
  CHECK(q[0] == 3.0f);                // 24576
  CHECK(q[1] == 0.0999755859375f);    // 819
  CHECK(q[2] == 3.9998779296875f);    // 32767, saturated
  CHECK(q[3] == -4.0f);               // -32768, saturated
  CHECK(stats.saturated == 2);
  CHECK(stats.count == 4);

  // The same through encode with an Autoflex state sitting at dec 13.
  auto state = flex.makeState();
  AutoflexSnapshot s;
  s.dec = 13;
  s.initialized = true;
  static_cast<Autoflex*>(state.get())->restore(s);
  Encoded e = flex.encode(x, {}, state.get());
  CHECK(e.codes.dtype() == DType::I16);
  CHECK(e.codes.toVector<int16_t>() == std::vector<int16_t>{24576, 819, 32767, -32768});
  CHECK(e.exponents.toVector<int16_t>() == std::vector<int16_t>{13});
  CHECK(e.spec == "flex16+5");
  CHECK(static_cast<Autoflex*>(state.get())->snapshot().overflows == 1);
}

TEST_CASE("Flexpoint: kernels match the reference on every ISA") {
  std::vector<float> v = wideValues(5000, 1);
  for (auto isa : isas()) {
    CAPTURE(fd::kernelIsaName(isa));
    for (int bits : {4, 8, 16, 24}) {
      for (int dec : {-3, 0, 8, 13, 32, 100}) {
        std::vector<float> out(v.size());
        fd::FlexPass r = fd::flexQuantize(v.data(), out.data(), static_cast<int64_t>(v.size()), dec, bits, isa);
        int64_t sat = 0, flushed = 0;
        for (size_t i = 0; i < v.size(); ++i) {
          double ref = refFlex(v[i], dec, bits);
          REQUIRE(std::bit_cast<uint32_t>(out[i]) == std::bit_cast<uint32_t>(static_cast<float>(ref)));
          double raw = std::nearbyint(std::ldexp(static_cast<double>(v[i]), dec));
          if (raw > std::ldexp(1.0, bits - 1) - 1 || raw < -std::ldexp(1.0, bits - 1)) ++sat;
          if (ref == 0.0 && v[i] != 0.0f) ++flushed;
        }
        CHECK(r.saturated == sat);
        CHECK(r.flushed == flushed);
        CHECK(r.minValue == *std::min_element(v.begin(), v.end()));
        CHECK(r.maxValue == *std::max_element(v.begin(), v.end()));
        // Integer codes are the mantissas of the same values.
        std::vector<int32_t> codes(v.size());
        fd::flexQuantize(v.data(), codes.data(), static_cast<int64_t>(v.size()), dec, bits, isa);
        for (size_t i = 0; i < v.size(); i += 7) {
          REQUIRE(std::ldexp(static_cast<double>(codes[i]), -dec) == static_cast<double>(out[i]));
        }
      }
    }
  }
}

TEST_CASE("Flexpoint: properties at a fixed exponent") {
  Flexpoint flex;
  Rng rng(5);
  Tensor x = Tensor::randn({4000}, rng, 0.0f, 0.5f);
  std::vector<float> xv = x.toVector<float>();
  SUBCASE("idempotence q(q(x)) = q(x)") {
    Tensor q = flex.quantizeWithDec(x, 14);
    CHECK(flex.quantizeWithDec(q, 14).toVector<float>() == q.toVector<float>());
  }
  SUBCASE("monotone") {
    std::sort(xv.begin(), xv.end());
    std::vector<float> q = flex.quantizeWithDec(Tensor::fromVector(xv), 14).toVector<float>();
    CHECK(std::is_sorted(q.begin(), q.end()));
  }
  SUBCASE("sign symmetry inside the range") {
    std::vector<float> neg(xv.size());
    for (size_t i = 0; i < xv.size(); ++i) neg[i] = -xv[i];
    std::vector<float> q = flex.quantizeWithDec(x, 14).toVector<float>();
    std::vector<float> qn = flex.quantizeWithDec(Tensor::fromVector(neg), 14).toVector<float>();
    for (size_t i = 0; i < xv.size(); ++i) {
      if (std::fabs(xv[i]) < 1.9f) REQUIRE(qn[i] == -q[i]);
    }
  }
  SUBCASE("saturation: -32768 reachable, +32768 not; no negative zero") {
    std::vector<float> q = flex.quantizeWithDec(Tensor::fromVector({1e30f, -1e30f, -1e-9f}), 0)
                               .toVector<float>();
    CHECK(q[0] == 32767.0f);
    CHECK(q[1] == -32768.0f);
    CHECK(q[2] == 0.0f);
    CHECK_FALSE(std::signbit(q[2]));
  }
}

TEST_CASE("Flexpoint: decode(encode(x)) equals quantize(x) bit for bit") {
  for (const char* spec : {"flex16+5", "flex8+4", "flex20+5"}) {
    CAPTURE(spec);
    FormatPtr f = parse(spec);
    auto s1 = f->makeState(), s2 = f->makeState();
    Rng rng(9);
    for (int t = 0; t < 6; ++t) {
      Tensor x = Tensor::randn({3, 50}, rng, 0.0f, std::ldexp(1.0f, 2 * t - 4));
      QuantizeArgs args{.step = static_cast<uint64_t>(t)};
      Tensor q = f->quantize(x, args, s1.get());
      Encoded e = f->encode(x, args, s2.get());
      CHECK(e.codes.dtype() == (spec[4] == '8' ? DType::I8 : spec[5] == '6' ? DType::I16 : DType::I32));
      CHECK(f->decode(e).toVector<float>() == q.toVector<float>());
      CHECK(e.shape == x.shape());
    }
  }
}

TEST_CASE("Flexpoint: non-finite input is an error naming the point") {
  Flexpoint flex;
  for (float bad : {NAN, INFINITY, -INFINITY}) {
    auto state = flex.makeState();
    CHECK_THROWS_WITH_AS(flex.quantize(Tensor::fromVector({1.0f, bad}),
                                       {.pointName = "layer1.conv.error"}, state.get()),
                         doctest::Contains("layer1.conv.error"), Error);
    CHECK_THROWS_AS(flex.encode(Tensor::fromVector({bad}), {}, state.get()), Error);
    CHECK_THROWS_AS(flex.quantizeWithDec(Tensor::fromVector({bad}), 3), Error);
  }
}

TEST_CASE("Flexpoint: spec grammar and storage figure") {
  CHECK(parse("flex16+5")->spec() == "flex16+5");
  CHECK(parse("flex16+5:history=16,sigmas=3,margin=100")->spec() == "flex16+5");
  std::string custom = "flex16+5:history=8,sigmas=6,margin=16384,rare_margin=1024,init_dec=4,"
                       "init_tries=3,dec_min=-2,dec_max=40";
  CHECK(parse(custom)->spec() == custom);
  CHECK(parse(parse(custom)->spec())->spec() == custom);
  CHECK(parse("flex8+4")->spec() == "flex8+4");
  CHECK(parse("flex8+4:dec_max=16")->spec() == "flex8+4");  // 2^M is the default
  CHECK(parse("flex16+5:sigmas=2.5")->spec() == "flex16+5:sigmas=2.5");
  CHECK(parse("flex16+5")->bitsPerValue({100}) == doctest::Approx(16.05));
  // Packed: 100 16-bit mantissas and one 5-bit exponent (a whole byte).
  CHECK(parse("flex16+5")->encode(Tensor::ones({100}), {}).packedBytes() == 201);
  CHECK(parse("flex12+4")->encode(Tensor::ones({10}), {}).packedBytes() == 15 + 1);
  CHECK_THROWS_WITH_AS(parse("flex16+5:histroy=3"), doctest::Contains("histroy"), Error);
  CHECK_THROWS_AS(parse("flex16"), Error);
  CHECK_THROWS_AS(parse("flex30+5"), Error);
  CHECK_THROWS_AS(parse("flex16+5:history=0"), Error);
  CHECK_THROWS_AS(parse("flex16+5:dec_min=5,dec_max=4"), Error);
  // A state of another format is rejected.
  auto hbfpState = parse("s2fp8")->makeState();
  CHECK_THROWS_AS(parse("flex16+5")->quantize(Tensor::fromVector({1.0f}), {}, hbfpState.get()), Error);
}

TEST_CASE("Flexpoint: a null state is a fresh one, thrown away") {
  Flexpoint flex;
  Tensor x = Tensor::fromVector({1000.0f, 3.0f});
  // Initialisation alone (§10.6): scale 2^-5.
  CHECK(flex.quantize(x, {}).toVector<float>() == std::vector<float>{1000.0f, 3.0f});
  Encoded e = flex.encode(x, {});
  CHECK(e.exponents.toVector<int16_t>() == std::vector<int16_t>{5});
}
