// HBFP's fused quantizer for the bf16 GEMM path (Format::quantizeBf16, docs/ops.md "bf16 GEMM
// path"): one pass that writes the bf16 patterns of the quantized values must give exactly what
// the unfused route gives, ops::detail::toBf16Exact(quantize(x)): the same patterns, exactness
// verdict and smallest exponent, and quantize(x) bit for bit where the patterns are not usable.
// Checked on every layout the quantizer has (blocks along the last axis, along a strided axis,
// gathered along N, H, W with blocks inside one run, spanning runs and through the buffer; the
// layout moved last when it cannot be gathered), hbfp2..hbfp9 and wider widths, both roundings,
// and through QuantPoint, whose bookkeeping must not see a difference.
#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cfloat>
#include <cmath>
#include <span>
#include <string>
#include <vector>

#include "core/Error.h"
#include "core/Rng.h"
#include "core/ops/detail/Bf16.h"
#include "formats/Hbfp.h"
#include "formats/QuantPoint.h"
#include "formats/detail/HbfpKernels.h"

using namespace mantissa;
using namespace mantissa::formats;
namespace fd = mantissa::formats::detail;
namespace od = mantissa::ops::detail;

namespace {

/// Values over a wide range with zeros, powers of two, tiny blocks (FP32 subnormal results) and
/// values near FLT_MAX (saturation at e = 128).
std::vector<float> values(int64_t n, uint64_t seed, bool extremes = false) {
  Rng rng(seed);
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    v[i] = rng.normal() * std::ldexp(1.0f, static_cast<int>(rng.uniformInt(30)) - 15);
    if (i % 23 == 0) v[i] = 0.0f;
    if (i % 37 == 0) v[i] = std::ldexp(1.0f, static_cast<int>(rng.uniformInt(10)) - 5);
  }
  if (extremes) {
    for (int64_t i = 0; i < n; ++i) {
      const int64_t region = (i / 150) % 4;
      if (region == 1) v[i] = std::ldexp(v[i], -120);  // blocks below 2^-126: subnormal results
      if (region == 2) v[i] = (i % 2 ? -1.0f : 1.0f) * FLT_MAX * (0.5f + 0.5f * ((i % 7) / 7.0f));
    }
  }
  return v;
}

bool sameBits(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::bit_cast<uint32_t>(a[i]) != std::bit_cast<uint32_t>(b[i])) return false;
  }
  return true;
}

std::vector<fd::KernelIsa> isas() {
  std::vector<fd::KernelIsa> r{fd::KernelIsa::Generic};
  if (fd::bestKernelIsa() == fd::KernelIsa::Avx512) r.push_back(fd::KernelIsa::Avx512);
  return r;
}

/// What the Bf16Bits kernel must write for the values `f` the float kernel wrote: their high
/// halves, and the smallest non-zero magnitude as toBf16Exact finds it.
void checkHalves(const std::vector<fd::Bf16Bits>& got, const fd::HbfpPass& gotPass,
                 const std::vector<float>& f, const fd::HbfpPass& fPass) {
  uint32_t minMag = UINT32_MAX;
  bool same = got.size() == f.size();
  for (size_t i = 0; same && i < f.size(); ++i) {
    const uint32_t u = std::bit_cast<uint32_t>(f[i]);
    same = got[i].bits == static_cast<uint16_t>(u >> 16);
    if ((u & 0x7fffffffu) != 0) minMag = std::min(minMag, u & 0x7fffffffu);
  }
  CHECK(same);
  CHECK(gotPass.minMagnitude == minMag);
  CHECK(gotPass.saturated == fPass.saturated);
  CHECK(gotPass.flushed == fPass.flushed);
  CHECK(gotPass.nonFinite == fPass.nonFinite);
}

/// Format-level check: quantizeBf16 against toBf16Exact(quantize(x)), statistics included.
void checkFused(const Format& f, const Tensor& x, QuantizeArgs args) {
  QuantStats unfusedStats, fusedStats;
  args.stats = &unfusedStats;
  Tensor q = f.quantize(x, args);
  args.stats = &fusedStats;
  Bf16Quantized got = f.quantizeBf16(x, args);
  od::Bf16Operand want = od::toBf16Exact(q);
  REQUIRE(got.bits.defined() == want.exact());
  CHECK(got.minExponent == want.minExponent);
  if (want.exact()) {
    CHECK(got.bits.dtype() == DType::U16);
    CHECK(got.bits.shape() == x.shape());
    CHECK(got.bits.toVector<uint16_t>() == want.bits.toVector<uint16_t>());
  } else {
    REQUIRE(got.values.defined());
  }
  if (got.values.defined()) {
    CHECK(got.values.shape() == x.shape());
    CHECK(sameBits(got.values.toVector<float>(), q.toVector<float>()));
  }
  CHECK(fusedStats.count == unfusedStats.count);
  CHECK(fusedStats.saturated == unfusedStats.saturated);
  CHECK(fusedStats.flushed == unfusedStats.flushed);
  CHECK(fusedStats.nonFinite == unfusedStats.nonFinite);
}

Hbfp hbfp(int bits, int64_t block, bool stochastic) {
  return Hbfp(HbfpOptions{.bits = bits,
                          .block = block,
                          .rounding = stochastic ? Rounding::Stochastic : Rounding::NearestEven});
}

}  // namespace

TEST_CASE("HBFP bf16: the kernels write the high halves of the values, on every ISA") {
  SUBCASE("blocks along the last axis and along a strided axis (partial blocks and tiles)") {
    const Shape shape{3, 37, 150};  // inner 150: one full tile of 128 and a partial one
    std::vector<float> v = values(numelOf(shape), 5, true);
    for (auto isa : isas()) {
      for (int64_t ax : {1, 2}) {
        for (int64_t block : {7, 64}) {
          for (int bits : {2, 4, 8, 9}) {
            for (bool sr : {false, true}) {
              CAPTURE(fd::kernelIsaName(isa));
              CAPTURE(ax);
              CAPTURE(block);
              CAPTURE(bits);
              CAPTURE(sr);
              fd::HbfpLayout L;
              L.outer = ax == 1 ? 3 : 3 * 37;
              L.axis = shape[ax];
              L.inner = ax == 1 ? 150 : 1;
              L.block = block;
              const fd::HbfpParams p{bits, sr ? Rounding::Stochastic : Rounding::NearestEven, 1, 2,
                                     3};
              std::vector<float> f(v.size());
              std::vector<fd::Bf16Bits> b(v.size());
              fd::HbfpPass pf = fd::hbfpQuantize(v.data(), f.data(), nullptr, L, p, isa);
              fd::HbfpPass pb = fd::hbfpQuantize(v.data(), b.data(), nullptr, L, p, isa);
              checkHalves(b, pb, f, pf);
            }
          }
        }
      }
    }
  }
  SUBCASE("gathered blocks: inside one run, spanning runs, and through the buffer") {
    // x[N, C, H*W] blocked along (N, H*W) per channel: runs of 64 (blocks inside runs), 49
    // (64-blocks spanning two runs: a SpanPlan), 5 (more than two pieces a vector: the buffer).
    for (int64_t hw : {64, 49, 5}) {
      const int64_t n = 3, c = 4;
      std::vector<float> v = values(n * c * hw, 6 + hw, true);
      const fd::HbfpGatherLayout base{
          .rows = c, .rowStride = hw, .segments = n, .segment = hw, .segmentStride = c * hw};
      for (auto isa : isas()) {
        for (int64_t block : {64, 10}) {
          for (int bits : {3, 8, 9}) {
            for (bool sr : {false, true}) {
              CAPTURE(fd::kernelIsaName(isa));
              CAPTURE(hw);
              CAPTURE(block);
              CAPTURE(bits);
              CAPTURE(sr);
              fd::HbfpGatherLayout L = base;
              L.block = block;
              const fd::HbfpParams p{bits, sr ? Rounding::Stochastic : Rounding::NearestEven, 4, 5,
                                     6};
              std::vector<float> f(v.size());
              std::vector<fd::Bf16Bits> b(v.size());
              fd::HbfpPass pf = fd::hbfpQuantizeGathered(v.data(), f.data(), nullptr, L, p, isa);
              fd::HbfpPass pb = fd::hbfpQuantizeGathered(v.data(), b.data(), nullptr, L, p, isa);
              checkHalves(b, pb, f, pf);
            }
          }
        }
      }
    }
  }
}

TEST_CASE("HBFP bf16: quantizeBf16 equals toBf16Exact(quantize(x)) on every layout and width") {
  const std::vector<float> v = values(4 * 6 * 49, 7, true);
  SUBCASE("one block axis: last, middle, first; partial last blocks") {
    const Shape shape{5, 37, 19};
    const std::vector<float> w = values(numelOf(shape), 8, true);
    const Tensor x = Tensor::fromVector(w, shape);
    for (int bits = 2; bits <= 12; ++bits) {
      for (int64_t axis : {-1, 1, 0}) {
        for (int64_t block : {16, 64}) {
          for (bool sr : {false, true}) {
            CAPTURE(bits);
            CAPTURE(axis);
            CAPTURE(block);
            CAPTURE(sr);
            checkFused(hbfp(bits, block, sr), x, {.blockAxis = axis, .seed = 9, .step = 2});
          }
        }
      }
    }
  }
  SUBCASE("several block axes (N, H, W of NCHW): blocks straddling images, other layouts") {
    static const int64_t kNhw[] = {0, 2, 3};
    static const int64_t kConv5[] = {0, 3, 4};
    // Layouts the gathered kernel cannot read in place (moved last, merged, moved back): W is
    // not a block axis, so the innermost one is not contiguous; or the axes out of order.
    static const int64_t kNotGathered[] = {0, 2};
    static const int64_t kReversed[] = {3, 0};
    struct Case {
      Shape shape;
      std::span<const int64_t> axes;
    };
    const Case cases[] = {
        {{4, 6, 7, 7}, kNhw},       // runs of 49: 64-blocks span images
        {{4, 3, 8, 8}, kNhw},       // runs of 64: every block inside one image
        {{6, 4, 2, 2}, kNhw},       // runs of 4: through the buffer
        {{4, 1, 6, 7, 7}, kConv5},  // Conv2d's grouped view [N, G, C/G, H, W]
        {{4, 6, 7, 7}, kNotGathered}, {{4, 6, 7, 7}, kReversed},
    };
    for (const Case& c : cases) {
      const Tensor x =
          Tensor::fromVector(std::vector<float>(v.begin(), v.begin() + numelOf(c.shape)), c.shape);
      for (int bits : {2, 5, 8, 9, 10}) {
        for (bool sr : {false, true}) {
          CAPTURE(toString(c.shape));
          CAPTURE(c.axes.size());
          CAPTURE(bits);
          CAPTURE(sr);
          checkFused(hbfp(bits, 64, sr), x, {.blockAxes = c.axes, .seed = 3, .stream = 4});
        }
      }
    }
  }
  SUBCASE("a non-contiguous input, a scalar and an empty tensor") {
    const Tensor x = Tensor::fromVector(std::vector<float>(v.begin(), v.begin() + 3 * 70), {3, 70});
    checkFused(hbfp(8, 64, false), x.transpose(0, 1), {.blockAxis = 0});
    checkFused(hbfp(8, 64, false), Tensor::fromVector({0.3f}).reshape({}), {});
    checkFused(hbfp(8, 64, true), Tensor::zeros({0, 5}), {.blockAxis = 1});
  }
}

TEST_CASE("HBFP bf16: zeros, FP32 subnormals and saturation") {
  SUBCASE("all zeros: exact, no non-zero exponent") {
    Bf16Quantized q = Hbfp().quantizeBf16(Tensor::zeros({3, 100}), {});
    REQUIRE(q.bits.defined());
    CHECK(q.minExponent == od::kNoNonZero);
    for (uint16_t b : q.bits.toVector<uint16_t>()) CHECK(b == 0);
  }
  SUBCASE("a block below 2^-126 has FP32-subnormal values: not exact, the values are kept") {
    // e = -126 for the second block, ulp = 2^(-126-(N-1)); hbfp9's ulp 2^-134 puts an odd
    // multiple's lowest bit in the low half of the FP32 pattern (bit 15).
    std::vector<float> v(128, 0.75f);
    for (int i = 64; i < 128; ++i) v[i] = std::ldexp(static_cast<float>(2 * i + 1), -136);
    for (int bits : {4, 8, 9}) {
      CAPTURE(bits);
      const Hbfp f = hbfp(bits, 64, false);
      Bf16Quantized q = f.quantizeBf16(Tensor::fromVector(v), {});
      CHECK_FALSE(q.bits.defined());
      CHECK(q.minExponent == 0);
      checkFused(f, Tensor::fromVector(v), {});
    }
    const std::vector<float> q9 = hbfp(9, 64, false).quantize(Tensor::fromVector(v), {}).toVector();
    bool lowHalf = false;
    for (float x : q9) lowHalf = lowHalf || (std::bit_cast<uint32_t>(x) & 0xffffu) != 0;
    CHECK(lowHalf);  // the case hbfp9 handles by quantizing again
  }
  SUBCASE("the smallest normal exponent is exact; saturated blocks at e = 128") {
    std::vector<float> v(64, 0.0f);
    v[0] = std::ldexp(1.0f, -119);  // e = -119: hbfp8's ulp 2^-126, the smallest normal
    v[1] = std::ldexp(1.0f, -126);
    Bf16Quantized q = hbfp(8, 64, false).quantizeBf16(Tensor::fromVector(v), {});
    REQUIRE(q.bits.defined());
    CHECK(q.minExponent == 1);
    std::vector<float> big(64, FLT_MAX);
    big[3] = -FLT_MAX;
    big[5] = std::ldexp(1.0f, 127);
    big[9] = 1.0f;  // flushed to zero next to FLT_MAX
    for (bool sr : {false, true}) checkFused(hbfp(8, 64, sr), Tensor::fromVector(big), {});
    QuantStats s;
    hbfp(8, 64, false).quantizeBf16(Tensor::fromVector(big), {.stats = &s});
    CHECK(s.saturated == 62);  // FLT_MAX / ulp rounds to 2^7 (e = 128): clamped to 127
    CHECK(s.flushed == 1);
  }
  SUBCASE("stochastic rounding: the same seed and step give the same bits, another step not") {
    const Hbfp f = hbfp(4, 64, true);
    const Tensor x = Tensor::fromVector(values(4096, 11));
    auto bitsAt = [&](uint64_t step) {
      return f.quantizeBf16(x, {.seed = 5, .stream = 6, .step = step}).bits.toVector<uint16_t>();
    };
    CHECK(bitsAt(1) == bitsAt(1));
    CHECK(bitsAt(1) != bitsAt(2));
  }
}

TEST_CASE("HBFP bf16: non-finite input is the same error as quantize's") {
  std::vector<float> v(4 * 64 * 200, 0.5f);
  v[3 * 64 * 200 + 17 * 200 + 130] = NAN;
  v[5] = INFINITY;
  static const int64_t kAxes[] = {0, 2};
  const Tensor x = Tensor::fromVector(v, {4, 64, 200});
  for (int bits : {8, 12}) {
    const Hbfp f = hbfp(bits, 64, false);
    for (QuantizeArgs args : {QuantizeArgs{.blockAxis = -1, .pointName = "fc.weight"},
                              QuantizeArgs{.blockAxis = 1, .pointName = "fc.weight"},
                              QuantizeArgs{.blockAxes = kAxes, .pointName = "fc.weight"}}) {
      std::string unfused, fused;
      try {
        f.quantize(x, args);
      } catch (const Error& e) {
        unfused = e.what();
      }
      try {
        f.quantizeBf16(x, args);
      } catch (const Error& e) {
        fused = e.what();
      }
      CHECK(unfused.find("2 non-finite") != std::string::npos);
      CHECK(unfused.find("fc.weight") != std::string::npos);
      CHECK(fused == unfused);
    }
  }
}

TEST_CASE("HBFP bf16: QuantPoint's fused calls advance the point exactly as the FP32 calls") {
  static const int64_t kNhw[] = {0, 2, 3};
  static const int64_t kAxis1[] = {1};
  const Tensor x = Tensor::fromVector(values(4 * 6 * 49, 12, true), {4, 6, 7, 7});
  for (const char* spec : {"hbfp8:round=stochastic", "hbfp4", "hbfp12:round=stochastic", "fp32"}) {
    CAPTURE(spec);
    QuantPoint fused("layer1.conv.weight", Role::Weight, Role::WeightGrad);
    QuantPoint plain("layer1.conv.weight", Role::Weight, Role::WeightGrad);
    for (QuantPoint* p : {&fused, &plain}) {
      p->setFormats(parse(spec), parse(spec));
      p->setSeed(17);
    }
    for (int step = 0; step < 3; ++step) {
      CAPTURE(step);
      const Tensor want[] = {plain.quantizeForward(x, 1), plain.quantizeBackwardAlong(x, kNhw),
                             plain.quantizeBackward(x)};
      const Bf16Quantized got[] = {fused.quantizeForwardBf16(x, kAxis1),
                                   fused.quantizeBackwardBf16(x, kNhw),
                                   fused.quantizeBackwardBf16(x)};
      for (int i = 0; i < 3; ++i) {
        od::Bf16Operand w = od::toBf16Exact(want[i]);
        REQUIRE(got[i].bits.defined() == w.exact());
        CHECK(got[i].minExponent == w.minExponent);
        const Tensor v = got[i].values.defined() ? got[i].values : od::widenBf16(got[i].bits);
        CHECK(sameBits(v.toVector<float>(), want[i].toVector<float>()));
      }
      for (auto dir : {&QuantPoint::forward, &QuantPoint::backward}) {
        const QuantDirection &a = (fused.*dir)(), &b = (plain.*dir)();
        CHECK(a.calls == b.calls);
        CHECK(a.lastStats.count == b.lastStats.count);
        CHECK(a.lastStats.saturated == b.lastStats.saturated);
        CHECK(a.lastStats.flushed == b.lastStats.flushed);
        CHECK(a.totalStats.count == b.totalStats.count);
        CHECK(a.totalStats.flushed == b.totalStats.flushed);
      }
      CHECK(fused.metrics() == plain.metrics());
    }
  }
}

TEST_CASE("HBFP bf16: QuantPoint's fused call names the point on non-finite input") {
  QuantPoint p("fc.activation", Role::Activation, Role::Error);
  p.setFormats(parse("hbfp8"), nullptr);
  CHECK_THROWS_WITH_AS(p.quantizeForwardBf16(Tensor::fromVector({1.0f, NAN})),
                       doctest::Contains("fc.activation"), Error);
  CHECK(p.forward().calls == 1);  // as quantizeForward: the failed conversion took its step
}
