#include <doctest/doctest.h>

#include <bit>
#include <cfloat>
#include <cmath>
#include <vector>

#include "core/Error.h"
#include "core/Rng.h"
#include "core/io/StateDict.h"
#include "core/parallel/ParallelFor.h"
#include "formats/S2fp8.h"
#include "formats/detail/Grid.h"
#include "formats/detail/S2fp8Kernels.h"

using namespace mantissa;
using namespace mantissa::formats;
namespace fd = mantissa::formats::detail;

namespace {

/// E5M2 magnitudes from the layout (bias 15, 2 mantissa bits, subnormals), codes 0..123.
std::vector<double> e5m2Magnitudes() {
  std::vector<double> v;
  for (int code = 0; code < 124; ++code) {
    int e = code >> 2, m = code & 3;
    v.push_back(e == 0 ? std::ldexp(m, -16) : std::ldexp(4 + m, e - 17));
  }
  return v;
}

/// RNE of a non-negative y onto the E5M2 magnitudes (ties to the even code); -1 when y lies
/// within `tol` (relative) of a midpoint, where a reference computed in double is not reliable.
int refCode(double y, double tol) {
  static const std::vector<double> mags = e5m2Magnitudes();
  int best = 0;
  for (int k = 1; k < 124; ++k) {
    double mid = 0.5 * (mags[k - 1] + mags[k]);
    if (std::fabs(y - mid) <= tol * mid) return -1;
    if (y > mid) best = k;
  }
  return best;
}

std::vector<float> quantizeS2(const std::vector<float>& v, S2fp8Params* params = nullptr) {
  S2fp8 f;
  auto state = f.makeState();
  std::vector<float> q = f.quantize(Tensor::fromVector(v), {}, state.get()).toVector<float>();
  if (params) *params = static_cast<S2fp8State*>(state.get())->last();
  return q;
}

std::vector<fd::KernelIsa> isas() {
  std::vector<fd::KernelIsa> r{fd::KernelIsa::Generic};
  if (fd::bestKernelIsa() == fd::KernelIsa::Avx512) r.push_back(fd::KernelIsa::Avx512);
  return r;
}

bool sameFloat(float a, float b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b) && std::signbit(a) == std::signbit(b);
  return std::bit_cast<uint32_t>(a) == std::bit_cast<uint32_t>(b);
}

}  // namespace

TEST_CASE("S2FP8: table of FORMATS.md §10.5") {
  S2fp8 f;
  SUBCASE("[1, 2, 4, 8]: alpha 10, beta -15, exact") {
    auto state = f.makeState();
    Encoded e = f.encode(Tensor::fromVector({1, 2, 4, 8}), {}, state.get());
    CHECK(e.scalars == std::vector<double>{10.0, -15.0});
    CHECK(e.codes.toVector<uint8_t>() == std::vector<uint8_t>{0x02, 0x28, 0x50, 0x78});
    CHECK(f.decode(e).toVector<float>() == std::vector<float>{1, 2, 4, 8});
    S2fp8Params p = static_cast<S2fp8State*>(state.get())->last();
    CHECK(p.meanLog2 == doctest::Approx(1.5).epsilon(1e-9));
    CHECK(p.maxLog2 == 3.0);
  }
  SUBCASE("[3, 1, -0.5, 0.25]") {
    S2fp8Params p;
    std::vector<float> q = quantizeS2({3, 1, -0.5f, 0.25f}, &p);
    CHECK(p.meanLog2 == doctest::Approx(-0.3537594).epsilon(1e-6));
    CHECK(p.maxLog2 == doctest::Approx(1.5849625).epsilon(1e-7));
    CHECK(p.alpha == doctest::Approx(7.737056).epsilon(1e-6));
    CHECK(p.beta == doctest::Approx(2.737056).epsilon(1e-6));
    // Mapped [32768, 6.66709, 0.03125, 1.46475e-4] -> E5M2 [32768, 7, 0.03125, 1.52587890625e-4].
    Encoded e = f.encode(Tensor::fromVector({3, 1, -0.5f, 0.25f}), {});
    CHECK(e.codes.toVector<uint8_t>() == std::vector<uint8_t>{0x78, 0x47, 0xa8, 0x09});
    std::vector<float> expected{3.0f, 1.006318f, -0.5f, 0.251325f};
    for (int i = 0; i < 4; ++i) CHECK(q[i] == doctest::Approx(expected[i]).epsilon(1e-6));
  }
  SUBCASE("[0.001, 0.01, 0.1, -1, 0]: zeros are left out and stay zero") {
    S2fp8Params p;
    std::vector<float> q = quantizeS2({0.001f, 0.01f, 0.1f, -1.0f, 0.0f}, &p);
    CHECK(p.count == 4);
    CHECK(p.meanLog2 == doctest::Approx(-4.982892).epsilon(1e-6));
    CHECK(p.alpha == doctest::Approx(3.010300).epsilon(1e-6));
    CHECK(p.beta == doctest::Approx(15.0).epsilon(1e-6));
    std::vector<float> expected{0.001f, 0.01f, 0.1f, -1.0f, 0.0f};
    for (int i = 0; i < 5; ++i) CHECK(q[i] == doctest::Approx(expected[i]).epsilon(1e-6));
    CHECK(q[4] == 0.0f);
  }
}

TEST_CASE("S2FP8: guards for all-zero and constant-magnitude tensors") {
  SUBCASE("all zero: alpha 1, beta 0, zeros keep their sign") {
    S2fp8Params p;
    std::vector<float> q = quantizeS2({0.0f, -0.0f, 0.0f}, &p);
    CHECK(p.alpha == 1.0f);
    CHECK(p.beta == 0.0f);
    CHECK(p.count == 0);
    CHECK(q == std::vector<float>{0, 0, 0});
    CHECK(std::signbit(q[1]));
  }
  SUBCASE("constant magnitude: alpha 1, beta = -m, the magnitude maps to 1") {
    S2fp8Params p;
    std::vector<float> q = quantizeS2({-2.5f, 2.5f, 0.0f, 2.5f}, &p);
    CHECK(p.alpha == 1.0f);
    CHECK(p.beta == static_cast<float>(-std::log2(2.5)));
    Encoded e = S2fp8().encode(Tensor::fromVector({-2.5f, 2.5f, 0.0f, 2.5f}), {});
    CHECK(e.codes.toVector<uint8_t>() == std::vector<uint8_t>{0xbc, 0x3c, 0x00, 0x3c});  // +-1.0
    for (float v : {q[0], q[1], q[3]}) CHECK(std::fabs(v) == doctest::Approx(2.5).epsilon(1e-6));
    CHECK(q[0] < 0);
  }
  SUBCASE("a single non-zero element") {
    S2fp8Params p;
    std::vector<float> q = quantizeS2({0.0f, 1e-20f}, &p);
    CHECK(p.alpha == 1.0f);
    CHECK(q[1] == doctest::Approx(1e-20).epsilon(1e-6));
  }
}

TEST_CASE("S2FP8: NaN stays NaN, Inf stays Inf, both left out of the statistics") {
  S2fp8Params clean, dirty;
  std::vector<float> qc = quantizeS2({3, 1, -0.5f, 0.25f}, &clean);
  QuantStats stats;
  S2fp8 f;
  auto state = f.makeState();
  std::vector<float> q = f.quantize(Tensor::fromVector({3, NAN, 1, -INFINITY, -0.5f, INFINITY, 0.25f, -NAN}),
                                    {.stats = &stats}, state.get())
                             .toVector<float>();
  dirty = static_cast<S2fp8State*>(state.get())->last();
  CHECK(dirty.alpha == clean.alpha);
  CHECK(dirty.beta == clean.beta);
  CHECK(stats.nonFinite == 4);
  CHECK(std::isnan(q[1]));
  CHECK_FALSE(std::signbit(q[1]));
  CHECK(std::isnan(q[7]));
  CHECK(std::signbit(q[7]));
  CHECK(q[3] == -INFINITY);
  CHECK(q[5] == INFINITY);
  CHECK(q[0] == qc[0]);
  CHECK(q[6] == qc[3]);
  Encoded e = f.encode(Tensor::fromVector({NAN, -INFINITY, INFINITY, -NAN}), {});
  CHECK(e.codes.toVector<uint8_t>() == std::vector<uint8_t>{0x7f, 0xfc, 0x7c, 0xff});
}

TEST_CASE("S2FP8: payload is the RNE of the exact map; decode inverts it") {
  Rng rng(21);
  for (int trial = 0; trial < 6; ++trial) {
    std::vector<float> v(3000);
    float spread = std::ldexp(1.0f, trial - 2);  // log2 spread 0.25 .. 8
    for (size_t i = 0; i < v.size(); ++i) {
      v[i] = std::exp2(spread * rng.normal()) * (rng.uniform() < 0.5f ? -1.0f : 1.0f);
      if (i % 101 == 0) v[i] = 0.0f;
    }
    S2fp8 f;
    auto state = f.makeState();
    Encoded e = f.encode(Tensor::fromVector(v), {}, state.get());
    S2fp8Params p = static_cast<S2fp8State*>(state.get())->last();
    // Independent check of the statistics in double precision.
    double sum = 0, mx = -1e300;
    int64_t n = 0;
    for (float x : v) {
      if (x == 0) continue;
      double l = std::log2(std::fabs(static_cast<double>(x)));
      sum += l;
      mx = std::max(mx, l);
      ++n;
    }
    double mu = sum / n;
    CHECK(std::fabs(p.meanLog2 - mu) < 1e-6);
    CHECK(p.alpha == doctest::Approx(15.0 / (mx - mu)).epsilon(2e-6));
    std::vector<uint8_t> codes = e.codes.toVector<uint8_t>();
    std::vector<float> dec = f.decode(e).toVector<float>();
    int checked = 0;
    for (size_t i = 0; i < v.size(); ++i) {
      double y = std::exp2(static_cast<double>(p.beta)) *
                 std::pow(std::fabs(static_cast<double>(v[i])), static_cast<double>(p.alpha));
      int c = refCode(y, 1e-12);
      if (c < 0) continue;
      ++checked;
      // Away from code boundaries this is also what the shared grid quantizer gives for the
      // map computed in float.
      if (refCode(y, 1e-6) >= 0) {
        float yf = static_cast<float>(y), q = 0;
        fd::quantizeGrid(&yf, &q, 1, fd::kE5M2.grid(true), Rounding::NearestEven, 0, 0, 0, nullptr);
        REQUIRE(static_cast<double>(q) == e5m2Magnitudes()[c]);
      }
      REQUIRE((codes[i] & 0x7f) == c);
      REQUIRE(((codes[i] & 0x80) != 0) == std::signbit(v[i]));
      double mag = e5m2Magnitudes()[c];
      double ref = c == 0 ? 0.0 : std::pow(mag * std::exp2(-static_cast<double>(p.beta)), 1.0 / p.alpha);
      REQUIRE(std::fabs(dec[i]) == doctest::Approx(ref).epsilon(1e-7));
    }
    CHECK(checked > 2900);
  }
}

TEST_CASE("S2FP8: with alpha 1 and beta 0 the map is plain E5M2 RNE, ties to the even code") {
  // Every midpoint between neighbouring E5M2 magnitudes, and the floats just around it.
  std::vector<double> mags = e5m2Magnitudes();
  std::vector<float> v;
  std::vector<int> expected;
  for (int k = 1; k < 124; ++k) {
    float mid = static_cast<float>(0.5 * (mags[k - 1] + mags[k]));  // exact in float
    v.push_back(mid);
    expected.push_back((k - 1) % 2 == 0 ? k - 1 : k);
    v.push_back(std::nextafter(mid, 0.0f));
    expected.push_back(k - 1);
    v.push_back(std::nextafter(mid, INFINITY));
    expected.push_back(k);
  }
  fd::S2fp8Tables t = fd::s2fp8Tables(1.0f, 0.0f);
  for (auto isa : isas()) {
    CAPTURE(fd::kernelIsaName(isa));
    std::vector<uint8_t> codes(v.size());
    std::vector<float> out(v.size());
    fd::s2fp8Map(v.data(), out.data(), codes.data(), static_cast<int64_t>(v.size()), t, isa);
    for (size_t i = 0; i < v.size(); ++i) {
      CAPTURE(v[i]);
      REQUIRE(codes[i] == expected[i]);
      REQUIRE(out[i] == static_cast<float>(mags[expected[i]]));
    }
  }
}

TEST_CASE("S2FP8: scalar and AVX-512 kernels agree bit for bit") {
  Rng rng(4);
  std::vector<float> v(20000);
  for (size_t i = 0; i < v.size(); ++i) {
    v[i] = rng.normal() * std::ldexp(1.0f, static_cast<int>(rng.uniformInt(300)) - 160);
    if (i % 97 == 0) v[i] = 0.0f;
    if (i % 211 == 0) v[i] = NAN;
    if (i % 307 == 0) v[i] = -INFINITY;
    if (i % 401 == 0) v[i] = std::ldexp(3.0f, -148);  // subnormal
  }
  fd::S2fp8Scan ref = fd::s2fp8Scan(v.data(), static_cast<int64_t>(v.size()), fd::KernelIsa::Generic);
  fd::S2fp8Tables t = fd::s2fp8Tables(0.37f, 3.25f);
  std::vector<float> outRef(v.size());
  std::vector<uint8_t> codesRef(v.size());
  const int64_t n = static_cast<int64_t>(v.size());
  int64_t nonZeroRef =
      fd::s2fp8Map(v.data(), outRef.data(), codesRef.data(), n, t, fd::KernelIsa::Generic);
  // Flushed elements counted from the definition: non-zero finite inputs with code 0.
  int64_t flushedByHand = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    flushedByHand += std::isfinite(v[i]) && v[i] != 0.0f && (codesRef[i] & 0x7f) == 0;
  }
  CHECK(flushedByHand > 0);
  CHECK(fd::s2fp8Flushed(ref, nonZeroRef) == flushedByHand);
  CHECK(fd::s2fp8WordSearchApplies(t));
  // Every AVX-512 form: with and without VBMI2, 16-bit and 32-bit search.
  struct Variant {
    fd::KernelIsa isa;
    bool vbmi2, words;
  };
  for (Variant var :
       {Variant{fd::KernelIsa::Generic, false, false}, Variant{fd::KernelIsa::Avx512, false, false},
        Variant{fd::KernelIsa::Avx512, true, false}, Variant{fd::KernelIsa::Avx512, false, true},
        Variant{fd::KernelIsa::Avx512, true, true}}) {
    const fd::KernelIsa isa = var.isa;
    if (isa == fd::KernelIsa::Avx512 && fd::bestKernelIsa() != isa) continue;
    CAPTURE(fd::kernelIsaName(isa));
    CAPTURE(var.vbmi2);
    CAPTURE(var.words);
    const bool wordsBefore = fd::s2fp8UseWordSearch(var.words);
    const bool vbmi2 = var.vbmi2;
    const bool before = fd::s2fp8UseVbmi2(vbmi2);
    fd::S2fp8Scan s = fd::s2fp8Scan(v.data(), n, isa);
    CHECK(s.count == ref.count);
    CHECK(s.nonFinite == ref.nonFinite);
    CHECK(s.sumExponent == ref.sumExponent);
    CHECK(std::bit_cast<uint64_t>(s.sumLog2Mantissa) ==
          std::bit_cast<uint64_t>(ref.sumLog2Mantissa));
    CHECK(s.minAbs == ref.minAbs);
    CHECK(s.maxAbs == ref.maxAbs);
    // Every choice of outputs, on a length that leaves a vector tail.
    for (int64_t len : {n, n - 7, n - 20}) {  // tails of 25 and 12 (32-element steps)
      for (int which = 0; which < 4; ++which) {
        CAPTURE(len);
        CAPTURE(which);
        std::vector<float> out(v.size(), 1.5f);
        std::vector<uint8_t> codes(v.size(), 0x55);
        float* o = (which & 1) ? out.data() : nullptr;
        uint8_t* c = (which & 2) ? codes.data() : nullptr;
        int64_t nonZero = fd::s2fp8Map(v.data(), o, c, len, t, isa);
        int64_t nonZeroLen = 0;
        for (int64_t i = 0; i < len; ++i) nonZeroLen += (codesRef[i] & 0x7f) != 0;
        CHECK(nonZero == nonZeroLen);
        for (int64_t i = 0; i < n; ++i) {
          if (o) REQUIRE(sameFloat(out[i], i < len ? outRef[i] : 1.5f));
          if (c) REQUIRE(codes[i] == (i < len ? codesRef[i] : 0x55));
        }
      }
    }
    fd::s2fp8UseVbmi2(before);
    fd::s2fp8UseWordSearch(wordsBefore);
  }
  // The thresholds are sorted and the search is max{k : |x| >= T[k]}.
  for (int k = 1; k < 128; ++k) CHECK(t.thresholds[k - 1] <= t.thresholds[k]);
}

TEST_CASE("S2FP8: the 16-bit search at every threshold, and where it does not apply") {
  // Inputs on, just below and just above every threshold, and sharing each threshold's top 16
  // bits with low halves on both sides: where the 16-bit search needs its correction.
  auto inputsAround = [](const fd::S2fp8Tables& t) {
    std::vector<float> v;
    for (int k = 1; k < fd::kE5M2FiniteCodes; ++k) {
      const float th = t.thresholds[k];
      if (!(th <= FLT_MAX)) continue;
      const uint32_t b = std::bit_cast<uint32_t>(th);
      for (float x : {th, std::nextafter(th, 0.0f), std::nextafter(th, INFINITY),
                      std::bit_cast<float>(b & 0xffff0000u), std::bit_cast<float>(b | 0x0000ffffu),
                      std::bit_cast<float>((b & 0xffff0000u) | 0x8000u)}) {
        v.push_back(x);
        v.push_back(-x);
      }
    }
    v.push_back(0.0f);
    v.push_back(INFINITY);
    v.push_back(NAN);
    v.push_back(std::bit_cast<float>(0x7f800001u));  // NaN whose top half is Inf's
    return v;
  };
  struct Case {
    float alpha, beta;
    bool applies;
  };
  // alpha 1 / beta 0: plain E5M2 midpoints; 0.37 / 3.25 and 4.2 / 9.0: typical spreads; 2^15:
  // a spread of 2^-11 binades puts many thresholds in one bf16 interval (the 32-bit search runs).
  for (Case cs : {Case{1.0f, 0.0f, true}, Case{0.37f, 3.25f, true}, Case{4.2f, 9.0f, true},
                  Case{32768.0f, 100.0f, false}}) {
    CAPTURE(cs.alpha);
    const fd::S2fp8Tables t = fd::s2fp8Tables(cs.alpha, cs.beta);
    CHECK(fd::s2fp8WordSearchApplies(t) == cs.applies);
    const std::vector<float> v = inputsAround(t);
    const int64_t n = static_cast<int64_t>(v.size());
    std::vector<float> outRef(v.size()), out(v.size());
    std::vector<uint8_t> codesRef(v.size()), codes(v.size());
    const int64_t nzRef =
        fd::s2fp8Map(v.data(), outRef.data(), codesRef.data(), n, t, fd::KernelIsa::Generic);
    // The reference itself: the code is the number of thresholds at or below |x|.
    for (size_t i = 0; i < v.size(); ++i) {
      if (!std::isfinite(v[i])) continue;
      int c = 0;
      for (int k = 1; k < fd::kE5M2FiniteCodes; ++k) c += std::fabs(v[i]) >= t.thresholds[k];
      REQUIRE((codesRef[i] & 0x7f) == c);
    }
    if (fd::bestKernelIsa() != fd::KernelIsa::Avx512) continue;
    for (bool words : {false, true}) {
      CAPTURE(words);
      const bool before = fd::s2fp8UseWordSearch(words);
      const int64_t nz =
          fd::s2fp8Map(v.data(), out.data(), codes.data(), n, t, fd::KernelIsa::Avx512);
      fd::s2fp8UseWordSearch(before);
      CHECK(nz == nzRef);
      CHECK(codes == codesRef);
      for (size_t i = 0; i < v.size(); ++i) REQUIRE(sameFloat(out[i], outRef[i]));
    }
  }
}

TEST_CASE("S2FP8: statistics against a long-double reference, every binade and thread count") {
  // Every binade (subnormals included) with random mantissas, the ends of the mantissa
  // interval, FLT_MAX and the smallest subnormal, in one tensor longer than a kernel chunk.
  Rng rng(8);
  std::vector<float> v;
  for (int rep = 0; rep < 3; ++rep) {
    for (int e = -149; e < 128; ++e) {
      for (int j = 0; j < 200; ++j)
        v.push_back(std::ldexp(1.0f + rng.uniform(), e) * (j % 2 ? -1.0f : 1.0f));
    }
  }
  for (uint32_t b = 0x3f7ffff0u; b < 0x3f800010u; ++b) v.push_back(std::bit_cast<float>(b));
  v.push_back(FLT_MAX);
  v.push_back(std::ldexp(1.0f, -149));
  long double sum = 0;
  for (float x : v) sum += std::log2(static_cast<long double>(std::fabs(x)));
  const double mu = static_cast<double>(sum / v.size());
  const int64_t n = static_cast<int64_t>(v.size());
  fd::S2fp8Scan ref = fd::s2fp8Scan(v.data(), n, fd::KernelIsa::Generic);
  CHECK(ref.count == n);
  CHECK(std::fabs(ref.meanLog2() - mu) < 1e-12);
  MESSAGE("mean log2 error against long double: " << std::fabs(ref.meanLog2() - mu));
  const int threadsBefore = numThreads();
  for (int threads : {1, 2}) {
    setNumThreads(threads);
    for (auto isa : isas()) {
      fd::S2fp8Scan s = fd::s2fp8Scan(v.data(), n, isa);
      CHECK(s.sumExponent == ref.sumExponent);
      CHECK(std::bit_cast<uint64_t>(s.sumLog2Mantissa) ==
            std::bit_cast<uint64_t>(ref.sumLog2Mantissa));
    }
  }
  setNumThreads(threadsBefore);
  // Exact cases: powers of two have m = 1.
  std::vector<float> pow2{1.0f, 8.0f, 0.25f, std::ldexp(1.0f, -149)};
  fd::S2fp8Scan p = fd::s2fp8Scan(pow2.data(), 4, fd::bestKernelIsa());
  CHECK(p.sumLog2Mantissa == 0.0);
  CHECK(p.meanLog2() == (0.0 + 3 - 2 - 149) / 4);
}

TEST_CASE("S2FP8: encode/decode round trip, state, storage figure") {
  S2fp8 f;
  Rng rng(30);
  Tensor x = Tensor::randn({7, 9}, rng);
  auto s1 = f.makeState(), s2 = f.makeState();
  Tensor q = f.quantize(x, {}, s1.get());
  Encoded e = f.encode(x, {}, s2.get());
  CHECK(e.codes.dtype() == DType::U8);
  CHECK(e.spec == "s2fp8");
  CHECK(f.decode(e).toVector<float>() == q.toVector<float>());
  CHECK(f.bitsPerValue({7, 9}) == doctest::Approx(8.0 + 64.0 / 63));
  CHECK(e.packedBytes() == 63 + 8);  // payload bytes + FP32 alpha and beta
  CHECK(parse("s2fp8")->spec() == "s2fp8");
  CHECK_THROWS_AS(parse("s2fp8:alpha=2"), Error);

  io::StateDict sd;
  s1->saveState(sd, "quant/p/forward/state/");
  auto s3 = f.makeState();
  s3->loadState(sd, "quant/p/forward/state/");
  CHECK(s3->describe() == s1->describe());
  auto metrics = s3->metrics();
  REQUIRE(metrics.size() >= 2);
  CHECK(metrics[0].first == "alpha");
  CHECK(metrics[0].second == static_cast<S2fp8State*>(s1.get())->last().alpha);
  CHECK(static_cast<S2fp8State*>(s3.get())->conversions() == 1);

  // Elements far below the mean flush to zero and are counted.
  QuantStats stats;
  std::vector<float> v(64, 1.0f);
  v[0] = 1e-30f;
  v[1] = 2.0f;
  f.quantize(Tensor::fromVector(v), {.stats = &stats});
  CHECK(stats.flushed == 1);
  CHECK(stats.saturated == 0);
}
