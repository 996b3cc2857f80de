#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <limits>

#include "core/CpuFeatures.h"
#include "core/Rng.h"
#include "formats/Bfloat16.h"
#include "formats/Ffp8.h"
#include "formats/Fp16.h"
#include "formats/detail/Grid.h"
#include "tests/formats/FormatTestUtil.h"

using namespace mantissa;
using namespace mantissa::formats;
using namespace mantissa::formats::detail;
using namespace mantissa::formats::testutil;

namespace {

struct NamedGrid {
  const char* name;
  FloatGrid grid;
};

std::vector<NamedGrid> testGrids() {
  auto ffp8 = [](int s, int e, int f, int b) { return Ffp8Params{s, e, f, b}.layout().grid(true); };
  return {
      {"bf16", Bfloat16::bf16Grid()},
      {"fp16", Fp16::fp16Grid()},
      {"e4m3", kE4M3.grid(true)},
      {"e4m3:sat=0", kE4M3.grid(false)},
      {"e5m2", kE5M2.grid(true)},
      {"e5m2:sat=0", kE5M2.grid(false)},
      {"ffp8 s0 e4 f4 b10", ffp8(0, 4, 4, 10)},
      {"ffp8 s1 e3 f4 b100", ffp8(1, 3, 4, 100)},
      {"ffp8 s1 e5 f2 b-20", ffp8(1, 5, 2, -20)},
      {"ffp8 s1 e0 f7 b5", ffp8(1, 0, 7, 5)},
      {"ffp8 s0 e7 f1 b0", ffp8(0, 7, 1, 0)},
      {"ffp8 s1 e1 f6 b-126", ffp8(1, 1, 6, -126)},
      {"ffp8 s1 e2 f5 b127", ffp8(1, 2, 5, 127)},
      {"ffp8 s1 e7 f0 b64", ffp8(1, 7, 0, 64)},
  };
}

// Random bit patterns (all exponents equally likely) plus every exponent field with a few
// mantissas, and the special values.
std::vector<float> mixedInputs(int64_t nRandom) {
  Rng rng(11);
  std::vector<float> v;
  for (int64_t i = 0; i < nRandom; ++i) v.push_back(floatOf(rng.nextU32()));
  for (uint32_t sign : {0u, 1u}) {
    for (uint32_t ex = 0; ex < 256; ++ex) {
      for (uint32_t mant : {0u, 1u, 0x400000u, 0x400001u, 0x3FFFFFu, 0x7FFFFFu, 0x0C0000u,
                            0x100000u, 0x080000u, 0x180000u, 0x008000u, 0x018000u}) {
        v.push_back(floatOf((sign << 31) | (ex << 23) | mant));
      }
    }
  }
  v.push_back(std::numeric_limits<float>::quiet_NaN());
  v.push_back(floatOf(0x7F800001u));  // signalling NaN
  v.push_back(floatOf(0xFFFFFFFFu));
  return v;
}

// Log-uniform magnitudes over [2^lo, 2^hi] with random signs.
std::vector<float> logUniform(int64_t n, float lo, float hi, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) {
    float m = std::exp2(lo + (hi - lo) * rng.uniform());
    x = (rng.nextU32() & 1u) ? -m : m;
  }
  return v;
}

bool sameStats(const QuantStats& a, const QuantStats& b) {
  return a.count == b.count && a.saturated == b.saturated && a.flushed == b.flushed &&
         a.nonFinite == b.nonFinite;
}

}  // namespace

TEST_CASE("Grid: the AVX-512 kernel equals the scalar reference bit for bit") {
  if (!cpuFeatures().avx512) MESSAGE("no AVX-512 on this CPU: quantizeGrid runs the scalar reference");
  std::vector<float> in = mixedInputs(300000);
  const auto n = static_cast<int64_t>(in.size());
  std::vector<float> fast(in.size()), ref(in.size());
  for (const NamedGrid& g : testGrids()) {
    for (Rounding r : {Rounding::NearestEven, Rounding::Stochastic}) {
      CAPTURE(std::string(g.name));
      CAPTURE(static_cast<int>(r));
      QuantStats sf, sr;
      int64_t bf = quantizeGrid(in.data(), fast.data(), n, g.grid, r, 7, 3, 12, &sf);
      int64_t br = quantizeGridScalar(in.data(), ref.data(), n, g.grid, r, 7, 3, 12, &sr);
      int64_t mismatches = 0, first = -1;
      for (int64_t i = 0; i < n; ++i) {
        if (bitsOf(fast[i]) != bitsOf(ref[i])) {
          if (first < 0) first = i;
          ++mismatches;
        }
      }
      if (first >= 0) {
        MESSAGE("first mismatch: input bits 0x", std::hex, bitsOf(in[first]), " fast 0x",
                bitsOf(fast[first]), " scalar 0x", bitsOf(ref[first]));
      }
      CHECK(mismatches == 0);
      CHECK(bf == br);
      CHECK(sameStats(sf, sr));
    }
  }
}

TEST_CASE("Grid: decodeTable is table[code] bit for bit, NaN payloads included") {
  // A table of arbitrary bit patterns (every byte of each entry distinct across entries, NaNs
  // with payloads, both zeros) against an independent lookup; lengths around the kernel's
  // 32-code steps and a multi-chunk run.
  Rng rng(17);
  std::array<float, 256> table;
  for (int c = 0; c < 256; ++c) {
    uint32_t bits =
        static_cast<uint32_t>(c) * 0x01010101u ^ static_cast<uint32_t>(rng.uniformInt(1 << 30));
    table[static_cast<size_t>(c)] = std::bit_cast<float>(bits);
  }
  table[0] = 0.0f;
  table[128] = -0.0f;
  table[0x7f] = std::bit_cast<float>(0x7fa12345u);  // signalling-NaN pattern with payload
  table[0xff] = std::bit_cast<float>(0xffc00001u);
  for (int64_t n : {0, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 300007}) {
    std::vector<uint8_t> codes(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
      codes[static_cast<size_t>(i)] = static_cast<uint8_t>(i < 256 ? i : rng.uniformInt(256));
    for (bool avx512 : {false, true}) {
      CAPTURE(n);
      CAPTURE(avx512);
      std::vector<float> out(static_cast<size_t>(n) + 3, 7.0f);
      decodeTable(codes.data(), out.data(), n, table, avx512);
      for (int64_t i = 0; i < n; ++i) {
        REQUIRE(bitsOf(out[static_cast<size_t>(i)]) ==
                bitsOf(table[codes[static_cast<size_t>(i)]]));
      }
      for (size_t i = static_cast<size_t>(n); i < out.size(); ++i)
        REQUIRE(out[i] == 7.0f);  // no write past n
    }
  }
}

TEST_CASE("Grid: outputs lie on the grid and are the nearest grid points") {
  // Independent check of the grid definition: the result is representable (re-quantizing is
  // the identity) and no representable value lies strictly closer to the input.
  std::vector<float> in = logUniform(20000, -30.f, 20.f, 5);
  for (const NamedGrid& g : testGrids()) {
    if (!g.grid.isSigned) continue;
    CAPTURE(std::string(g.name));
    std::vector<float> q(in.size()), qq(in.size());
    quantizeGrid(in.data(), q.data(), static_cast<int64_t>(in.size()), g.grid,
                 Rounding::NearestEven, 0, 0, 0, nullptr);
    quantizeGrid(q.data(), qq.data(), static_cast<int64_t>(in.size()), g.grid,
                 Rounding::NearestEven, 0, 0, 0, nullptr);
    int64_t bad = 0;
    for (size_t i = 0; i < in.size(); ++i) {
      if (!std::isfinite(q[i])) continue;
      bad += bitsOf(q[i]) != bitsOf(qq[i]);
      double a = std::fabs(static_cast<double>(in[i])), qa = std::fabs(static_cast<double>(q[i]));
      if (a > g.grid.maxFinite) continue;
      // The grid spacing in a's binade is 2^(max(floor(log2 a), emin) - m); the nearest grid
      // point is at most half of it away.
      int e = a > 0 ? std::max(std::ilogb(a), g.grid.minExponent) : g.grid.minExponent;
      double ulp = std::ldexp(1.0, e - g.grid.mantissaBits);
      bad += std::fabs(a - qa) > ulp / 2;
    }
    CHECK(bad == 0);
  }
}

TEST_CASE("Grid: stochastic rounding is unbiased and picks one of the two neighbours") {
  struct Case {
    const char* name;
    FloatGrid grid;
    float x, lo, hi;
  };
  for (Case c : {Case{"e4m3 normal", kE4M3.grid(true), 1.3f, 1.25f, 1.375f},
                 Case{"e4m3 subnormal", kE4M3.grid(true), 0.0013f, 0.f, 0.001953125f},
                 Case{"e5m2 negative", kE5M2.grid(true), -0.1f, -0.09375f, -0.109375f},
                 Case{"bf16", Bfloat16::bf16Grid(), 1.f + 0x1p-9f, 1.f, 1.f + 0x1p-7f},
                 Case{"bf16 fp32-subnormal", Bfloat16::bf16Grid(), 0x1.4p-133f, 0x1p-133f,
                      0x1p-132f},
                 Case{"fp16 subnormal", Fp16::fp16Grid(), 0x1.4p-24f, 0x1p-24f, 0x1p-23f}}) {
    CAPTURE(std::string(c.name));
    const int64_t n = 1 << 18;
    std::vector<float> in(n, c.x), out(n);
    quantizeGrid(in.data(), out.data(), n, c.grid, Rounding::Stochastic, 42, 1, 0, nullptr);
    double sum = 0;
    int64_t other = 0;
    for (float q : out) {
      sum += q;
      other += q != c.lo && q != c.hi;
    }
    CHECK(other == 0);
    double p = (static_cast<double>(c.x) - c.lo) / (static_cast<double>(c.hi) - c.lo);
    double sigma = std::fabs(static_cast<double>(c.hi) - c.lo) * std::sqrt(p * (1 - p) / n);
    CHECK(std::fabs(sum / n - c.x) < 5 * sigma);
  }
}

TEST_CASE("Grid: stochastic rounding is unbiased over steps for one element") {
  // The same element quantized at 4096 different steps: the draws are independent per step.
  float x = 0.3f;  // between 0.28125 and 0.3125 in E4M3
  double sum = 0;
  const int steps = 4096;
  for (int s = 0; s < steps; ++s) {
    float q;
    quantizeGrid(&x, &q, 1, kE4M3.grid(true), Rounding::Stochastic, 9, 4, static_cast<uint64_t>(s),
                 nullptr);
    sum += q;
  }
  double p = (0.3 - 0.28125) / 0.03125;
  CHECK(std::fabs(sum / steps - 0.3) < 5 * 0.03125 * std::sqrt(p * (1 - p) / steps));
}

TEST_CASE("Grid: stochastic rounding is reproducible from (seed, stream, step)") {
  std::vector<float> in = logUniform(5000, -8.f, 8.f, 3);
  const auto n = static_cast<int64_t>(in.size());
  auto run = [&](uint64_t seed, uint64_t stream, uint64_t step) {
    std::vector<float> out(in.size());
    quantizeGrid(in.data(), out.data(), n, kE5M2.grid(true), Rounding::Stochastic, seed, stream,
                 step, nullptr);
    return out;
  };
  auto base = run(1, 2, 3);
  CHECK(run(1, 2, 3) == base);
  CHECK(run(1, 2, 4) != base);
  CHECK(run(1, 5, 3) != base);
  CHECK(run(6, 2, 3) != base);
  // The draw of element i depends on i only, not on how the work is split into threads.
  std::vector<float> scalar(in.size());
  quantizeGridScalar(in.data(), scalar.data(), n, kE5M2.grid(true), Rounding::Stochastic, 1, 2, 3,
                     nullptr);
  CHECK(scalar == base);
}

TEST_CASE("Grid: idempotence, monotonicity and sign symmetry for every format") {
  std::vector<float> in = logUniform(50000, -40.f, 40.f, 8);
  for (float special : {0.f, -0.f, 1.f, -1.f, 3.4e38f, -3.4e38f, 1e-45f, -1e-45f}) {
    in.push_back(special);
  }
  std::vector<std::string> specs = {"bf16", "fp16", "e4m3", "e4m3:sat=0", "e5m2", "e5m2:sat=0",
                                    "ffp8:e=4,f=3,b=7,s=1", "ffp8:e=3,f=5,b=2,s=0",
                                    "ffp8:e=5,f=2,b=-3,s=1", "bf16:round=stochastic",
                                    "fp16:round=stochastic", "e4m3:round=stochastic"};
  for (const auto& spec : specs) {
    CAPTURE(spec);
    FormatPtr f = parse(spec);
    std::vector<float> q = quantizeValues(*f, in);
    std::vector<float> qq = quantizeValues(*f, q);
    bool idempotent = true;
    for (size_t i = 0; i < q.size(); ++i) idempotent = idempotent && sameFloat(qq[i], q[i]);
    CHECK(idempotent);
    std::vector<float> sorted = in;
    std::sort(sorted.begin(), sorted.end());
    if (spec.find("stochastic") == std::string::npos) {
      std::vector<float> qs = quantizeValues(*f, sorted);
      bool monotone = true;
      for (size_t i = 1; i < qs.size(); ++i) {
        if (!std::isnan(qs[i]) && !std::isnan(qs[i - 1])) monotone = monotone && qs[i - 1] <= qs[i];
      }
      CHECK(monotone);
    }
    if (spec.find("s=0") == std::string::npos) {
      std::vector<float> neg(in.size());
      std::transform(in.begin(), in.end(), neg.begin(), [](float x) { return -x; });
      std::vector<float> qn = quantizeValues(*f, neg);
      bool symmetric = true;
      for (size_t i = 0; i < in.size(); ++i) symmetric = symmetric && sameFloat(qn[i], -q[i]);
      CHECK(symmetric);
    }
  }
}
