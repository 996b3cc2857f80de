#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cfloat>
#include <cmath>
#include <vector>

#include "core/Error.h"
#include "core/Rng.h"
#include "formats/Hbfp.h"
#include "formats/detail/Grid.h"
#include "formats/detail/HbfpKernels.h"

using namespace mantissa;
using namespace mantissa::formats;
namespace fd = mantissa::formats::detail;

namespace {

/// ceil(log2 a) for a > 0 via frexp (a = f 2^k, f in [0.5, 1)), independent of the kernels.
int ceilLog2(double a) {
  int k = 0;
  double f = std::frexp(a, &k);
  return f == 0.5 ? k - 1 : k;
}

/// Reference HBFP quantizer written from A.3 in double precision: blocks along `axis`, e =
/// ceil(log2 max|x|) clamped to [-126, 128] (-126 for an all-zero block), RNE, clamp.
/// Optionally returns the per-block exponents in the [outer, blocks, inner] layout.
std::vector<float> refHbfp(const std::vector<float>& x, const Shape& shape, int64_t axis,
                           int64_t block, int bits, std::vector<int>* exps = nullptr) {
  int64_t rank = static_cast<int64_t>(shape.size());
  axis = axis < 0 ? axis + rank : axis;
  int64_t outer = 1, inner = 1, len = shape[axis];
  for (int64_t d = 0; d < axis; ++d) outer *= shape[d];
  for (int64_t d = axis + 1; d < rank; ++d) inner *= shape[d];
  int64_t nb = (len + block - 1) / block;
  std::vector<float> out(x.size());
  if (exps) exps->assign(outer * nb * inner, 0);
  double qmax = std::ldexp(1.0, bits - 1) - 1;
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t b = 0; b < nb; ++b) {
      for (int64_t i = 0; i < inner; ++i) {
        auto at = [&](int64_t a) { return (o * len + a) * inner + i; };
        int64_t a0 = b * block, a1 = std::min(len, a0 + block);
        double amax = 0;
        for (int64_t a = a0; a < a1; ++a) amax = std::max(amax, std::fabs(static_cast<double>(x[at(a)])));
        int e = amax == 0 ? -126 : std::clamp(ceilLog2(amax), -126, 128);
        if (exps) (*exps)[(o * nb + b) * inner + i] = e;
        double ulp = std::ldexp(1.0, e - (bits - 1));
        for (int64_t a = a0; a < a1; ++a) {
          double m = std::clamp(std::nearbyint(x[at(a)] / ulp), -qmax, qmax);
          out[at(a)] = static_cast<float>(m * ulp + 0.0);
        }
      }
    }
  }
  return out;
}

std::vector<float> wideValues(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (int64_t i = 0; i < n; ++i) {
    v[i] = rng.normal() * std::ldexp(1.0f, static_cast<int>(rng.uniformInt(30)) - 15);
    if (i % 29 == 0) v[i] = std::ldexp(1.0f, static_cast<int>(rng.uniformInt(20)) - 10);  // powers of 2
    if (i % 31 == 0) v[i] = 0.0f;
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

std::vector<float> q1(const char* spec, std::vector<float> v) {
  return parse(spec)->quantize(Tensor::fromVector(v), {}).toVector<float>();
}

}  // namespace

TEST_CASE("HBFP: block table (FORMATS.md §10.4)") {
  // Rows 1-4: e is the same with or without the emulator's eps.
  CHECK(q1("hbfp8", {1.0f, 0.1f, -0.3f, 0.75f}) ==
        std::vector<float>{0.9921875f, 0.1015625f, -0.296875f, 0.75f});
  CHECK(q1("hbfp8", {3.0f, 0.1f, -2.9f, 1.0f}) ==
        std::vector<float>{3.0f, 0.09375f, -2.90625f, 1.0f});
  CHECK(q1("hbfp4", {0.6f, -0.05f, 0.3f, 0.0f}) == std::vector<float>{0.625f, -0.0f, 0.25f, 0.0f});
  CHECK(q1("hbfp6", {0.6f, -0.05f, 0.3f, 0.0f}) ==
        std::vector<float>{0.59375f, -0.0625f, 0.3125f, 0.0f});
  // Row 5: the table uses the emulator's eps (e = -26, ulp 2^-33); FORMATS.md A.3 has no eps, so
  // e = ceil(log2 1e-9) = -29 and ulp = 2^-36: 1e-9 * 2^36 = 68.72 -> 69, 3e-10 * 2^36 = 20.62 ->
  // 21, -5e-10 * 2^36 = -34.36 -> -34.
  CHECK(q1("hbfp8", {1e-9f, 3e-10f, -5e-10f, 0.0f}) ==
        std::vector<float>{std::ldexp(69.0f, -36), std::ldexp(21.0f, -36), std::ldexp(-34.0f, -36), 0.0f});
  // Zero results are +0 (integer mantissas have no sign of zero).
  CHECK_FALSE(std::signbit(q1("hbfp4", {0.6f, -0.05f})[1]));
}

TEST_CASE("HBFP: the 8-bit shared exponent at both ends") {
  SUBCASE("below 2^-126 the exponent stays at -126 (gradual underflow)") {
    // hbfp8: ulp = 2^(-126 - 7) = 2^-133. 2^-130 = 8 ulp exactly; 3 * 2^-135 = 0.75 ulp -> 1 ulp.
    CHECK(q1("hbfp8", {std::ldexp(1.0f, -130), std::ldexp(3.0f, -135)}) ==
          std::vector<float>{std::ldexp(1.0f, -130), std::ldexp(1.0f, -133)});
    // 2^-140 alone is 2^-7 ulp: flushed to zero.
    QuantStats stats;
    Tensor q = parse("hbfp8")->quantize(Tensor::fromVector({std::ldexp(1.0f, -140)}), {.stats = &stats});
    CHECK(q.toVector<float>()[0] == 0.0f);
    CHECK(stats.flushed == 1);
    // hbfp24 at e = -126 has ulp 2^-149: every fp32 subnormal is exact.
    CHECK(q1("hbfp24", {std::ldexp(1.0f, -149), std::ldexp(5.0f, -149)}) ==
          std::vector<float>{std::ldexp(1.0f, -149), std::ldexp(5.0f, -149)});
    Encoded e = parse("hbfp8")->encode(Tensor::fromVector({std::ldexp(1.0f, -130)}), {});
    CHECK(e.exponents.toVector<int16_t>() == std::vector<int16_t>{-126});
    CHECK(e.codes.toVector<int8_t>() == std::vector<int8_t>{8});
  }
  SUBCASE("a max of exactly 2^-126 keeps e = -126 and saturates like any power of two") {
    CHECK(q1("hbfp8", {std::ldexp(1.0f, -126)}) == std::vector<float>{std::ldexp(127.0f, -133)});
  }
  SUBCASE("FLT_MAX needs e = 128") {
    // FLT_MAX = 2^128 - 2^104; hbfp24 at e = 128 has ulp 2^105 and saturates at 2^128 - 2^105.
    CHECK(q1("hbfp24", {FLT_MAX, 1.0f}) == std::vector<float>{std::ldexp(8388607.0f, 105), 0.0f});
    CHECK(q1("hbfp24", {std::ldexp(8388607.0f, 105)}) == std::vector<float>{std::ldexp(8388607.0f, 105)});
    CHECK(q1("hbfp8", {-FLT_MAX}) == std::vector<float>{-std::ldexp(127.0f, 121)});
    Encoded e = parse("hbfp8")->encode(Tensor::fromVector({FLT_MAX}), {});
    CHECK(e.exponents.toVector<int16_t>() == std::vector<int16_t>{128});
  }
  SUBCASE("an all-zero block") {
    Encoded e = parse("hbfp8")->encode(Tensor::zeros({3}), {});
    CHECK(e.codes.toVector<int8_t>() == std::vector<int8_t>{0, 0, 0});
    CHECK(parse("hbfp8")->decode(e).toVector<float>() == std::vector<float>{0, 0, 0});
  }
}

TEST_CASE("HBFP: conv-like NCHW tensor blocked along C has one exponent per block") {
  const Shape shape{2, 70, 3, 5};  // blocks of 32 along C: [0,32), [32,64), [64,70)
  std::vector<float> v = wideValues(numelOf(shape), 2);
  Tensor x = Tensor::fromVector(v, shape);
  Hbfp f(HbfpOptions{.bits = 8, .block = 32});
  Encoded e = f.encode(x, {.blockAxis = 1});
  CHECK(e.blockAxis == 1);
  REQUIRE(e.exponents.shape() == Shape{2, 3, 3, 5});
  std::vector<int> refExps;
  std::vector<float> ref = refHbfp(v, shape, 1, 32, 8, &refExps);
  std::vector<int16_t> exps = e.exponents.toVector<int16_t>();
  std::vector<int8_t> codes = e.codes.toVector<int8_t>();
  for (size_t i = 0; i < exps.size(); ++i) REQUIRE(exps[i] == refExps[i]);
  // Decoding every element of a block with its block's single exponent gives the reference.
  for (int64_t n = 0; n < 2; ++n) {
    for (int64_t c = 0; c < 70; ++c) {
      for (int64_t hw = 0; hw < 15; ++hw) {
        int64_t idx = (n * 70 + c) * 15 + hw;
        int ex = exps[(n * 3 + c / 32) * 15 + hw];
        REQUIRE(std::abs(codes[idx]) <= 127);
        REQUIRE(static_cast<float>(std::ldexp(static_cast<double>(codes[idx]), ex - 7)) == ref[idx]);
      }
    }
  }
  CHECK(sameBits(f.quantize(x, {.blockAxis = 1}).toVector<float>(), ref));
  CHECK(sameBits(f.decode(e).toVector<float>(), ref));
  // Storage: 8 bits per value + 8 bits per block (90 blocks, the partial ones included).
  CHECK(f.bitsPerValue(shape, 1) == doctest::Approx(8.0 + 8.0 * 90 / 2100));
}

TEST_CASE("HBFP: every block axis and block size against the reference, on every ISA") {
  const Shape shape{5, 37, 19};
  std::vector<float> v = wideValues(numelOf(shape), 3);
  for (auto isa : isas()) {
    CAPTURE(fd::kernelIsaName(isa));
    for (int64_t axis : {0, 1, 2, -1}) {
      for (int64_t block : {1, 7, 16, 64}) {
        for (int bits : {2, 4, 8, 12, 16, 24}) {
          CAPTURE(axis);
          CAPTURE(block);
          CAPTURE(bits);
          int64_t ax = axis < 0 ? axis + 3 : axis;
          fd::HbfpLayout L;
          L.outer = 1;
          for (int64_t d = 0; d < ax; ++d) L.outer *= shape[d];
          L.axis = shape[ax];
          L.inner = 1;
          for (int64_t d = ax + 1; d < 3; ++d) L.inner *= shape[d];
          L.block = block;
          std::vector<float> out(v.size());
          std::vector<int16_t> exps(L.outer * L.numBlocks() * L.inner);
          fd::HbfpParams p{.bits = bits};
          fd::hbfpQuantize(v.data(), out.data(), exps.data(), L, p, isa);
          std::vector<int> refExps;
          REQUIRE(sameBits(out, refHbfp(v, shape, axis, block, bits, &refExps)));
          REQUIRE(std::equal(exps.begin(), exps.end(), refExps.begin()));
        }
      }
    }
  }
}

TEST_CASE("HBFP: wide inner dimension (several tiles) and a non-contiguous input") {
  const Shape shape{3, 9, 600};
  std::vector<float> v = wideValues(numelOf(shape), 4);
  Tensor x = Tensor::fromVector(v, shape);
  Hbfp f(HbfpOptions{.bits = 6, .block = 4});
  CHECK(sameBits(f.quantize(x, {.blockAxis = 1}).toVector<float>(), refHbfp(v, shape, 1, 4, 6)));
  // A permuted view is quantized in its logical (row-major) order.
  Tensor xt = x.permute({0, 2, 1});
  std::vector<float> vt = xt.toVector<float>();
  CHECK(sameBits(f.quantize(xt, {.blockAxis = 2}).toVector<float>(),
                 refHbfp(vt, {3, 600, 9}, 2, 4, 6)));
}

TEST_CASE("HBFP: properties") {
  Hbfp f(HbfpOptions{.bits = 8, .block = 16});
  Rng rng(6);
  Tensor x = Tensor::randn({64, 16}, rng);
  std::vector<float> q = f.quantize(x, {}).toVector<float>();
  SUBCASE("idempotent unless rounding turns a block max into a power of two") {
    std::vector<float> qq = f.quantize(Tensor::fromVector(q, {64, 16}), {}).toVector<float>();
    for (int b = 0; b < 64; ++b) {
      float m = 0;
      for (int j = 0; j < 16; ++j) m = std::max(m, std::fabs(q[b * 16 + j]));
      bool pow2 = m > 0 && std::ldexp(1.0f, std::ilogb(m)) == m;
      for (int j = 0; j < 16; ++j) {
        if (!pow2) REQUIRE(qq[b * 16 + j] == q[b * 16 + j]);
      }
    }
    // The exception, spelled out: 0.50001 rounds to 0.5 (e = 0, ulp 2^-7); requantized, the max
    // 0.5 gives e = -1 and saturates to 0.5 - 2^-8.
    CHECK(q1("hbfp8", {0.50001f, 0.1f})[0] == 0.5f);
    CHECK(q1("hbfp8", {0.5f, 0.1f})[0] == 0.49609375f);
  }
  SUBCASE("monotone within a block, sign symmetric") {
    std::vector<float> row(16);
    for (int j = 0; j < 16; ++j) row[j] = -1.3f + 0.17f * j;
    std::vector<float> qr = q1("hbfp8:block=16", row);
    CHECK(std::is_sorted(qr.begin(), qr.end()));
    std::vector<float> neg(row.size());
    for (int j = 0; j < 16; ++j) neg[j] = -row[j];
    std::vector<float> qn = q1("hbfp8:block=16", neg);
    for (int j = 0; j < 16; ++j) CHECK(qn[j] == -qr[j]);
  }
  SUBCASE("saturation of a power-of-two max is counted") {
    QuantStats stats;
    parse("hbfp8")->quantize(Tensor::fromVector({-2.0f, 1.0f}), {.stats = &stats});
    CHECK(stats.saturated == 1);
    CHECK(stats.count == 2);
  }
}

TEST_CASE("HBFP: stochastic rounding is unbiased, reproducible and matches its definition") {
  FormatPtr f = parse("hbfp8:round=stochastic");
  CHECK(f->spec() == "hbfp8:round=stochastic");
  // Block max 1.0 -> e = 0, ulp 2^-7; 0.3 / ulp = 38.4 rounds to 38 or 39 with P(39) = 0.4.
  std::vector<float> v(64 * 64, 0.3f);
  for (int b = 0; b < 64; ++b) v[b * 64] = 1.0f;
  Tensor x = Tensor::fromVector(v);
  double sum = 0;
  int64_t draws = 0;
  for (uint64_t step = 0; step < 40; ++step) {
    std::vector<float> q = f->quantize(x, {.seed = 7, .stream = 3, .step = step}).toVector<float>();
    for (size_t i = 0; i < q.size(); ++i) {
      if (i % 64 == 0) continue;
      double m = q[i] * 128.0;
      REQUIRE((m == 38.0 || m == 39.0));
      sum += m;
      ++draws;
    }
  }
  // One draw has sigma sqrt(0.24) = 0.49 ulp; 161280 draws -> standard error 0.0012 ulp.
  CHECK(std::fabs(sum / draws - 38.4) < 0.006);

  QuantizeArgs a{.seed = 7, .stream = 3, .step = 5};
  std::vector<float> r1 = f->quantize(x, a).toVector<float>();
  CHECK(f->quantize(x, a).toVector<float>() == r1);
  QuantizeArgs b = a;
  b.step = 6;
  CHECK(f->quantize(x, b).toVector<float>() != r1);

  // Definition: M = floor(x / ulp + k 2^-24), k = top 24 bits of stochasticBits(key, index).
  std::vector<float> w = wideValues(3 * 77 * 5, 8);
  fd::StochasticKey key = fd::stochasticKey(7, 3, 5);
  for (auto isa : isas()) {
    CAPTURE(fd::kernelIsaName(isa));
    for (int64_t axis : {1, 2}) {
      fd::HbfpLayout L{.outer = axis == 1 ? 3 : 3 * 77, .axis = axis == 1 ? 77 : 5,
                           .inner = axis == 1 ? 5 : 1, .block = 24};
      std::vector<float> out(w.size());
      fd::hbfpQuantize(w.data(), out.data(), nullptr, L,
                           {.bits = 8, .rounding = Rounding::Stochastic, .seed = 7, .stream = 3, .step = 5}, isa);
      std::vector<int> exps;
      refHbfp(w, {3, 77, 5}, axis, 24, 8, &exps);
      for (int64_t o = 0; o < L.outer; ++o) {
        for (int64_t a2 = 0; a2 < L.axis; ++a2) {
          for (int64_t i = 0; i < L.inner; ++i) {
            int64_t idx = (o * L.axis + a2) * L.inner + i;
            int e = exps[(o * L.numBlocks() + a2 / 24) * L.inner + i];
            double y = std::ldexp(static_cast<double>(w[idx]), 7 - e);
            double k = static_cast<double>(fd::stochasticBits(key, static_cast<uint64_t>(idx)) >> 8);
            double m = std::clamp(std::floor(y + std::ldexp(k, -24)), -127.0, 127.0);
            REQUIRE(out[idx] == static_cast<float>(std::ldexp(m, e - 7)));
          }
        }
      }
    }
  }
}

TEST_CASE("HBFP: non-finite input is an error naming the point") {
  FormatPtr f = parse("hbfp8");
  for (float bad : {NAN, INFINITY, -INFINITY}) {
    CHECK_THROWS_WITH_AS(f->quantize(Tensor::fromVector({1.0f, bad}), {.pointName = "fc.weight"}),
                         doctest::Contains("fc.weight"), Error);
    CHECK_THROWS_AS(f->encode(Tensor::fromVector({bad}), {}), Error);
    // Inside full vectors and tiles, along the last and a middle axis; the count is exact.
    std::vector<float> v(4 * 64 * 200, 0.5f);
    v[3 * 64 * 200 + 17 * 200 + 130] = bad;
    v[5] = bad;
    for (int64_t axis : {-1, 1}) {
      CHECK_THROWS_WITH_AS(f->quantize(Tensor::fromVector(v, {4, 64, 200}), {.blockAxis = axis}),
                           doctest::Contains("2 non-finite"), Error);
    }
  }
}

TEST_CASE("HBFP: spec grammar, codes and round trip") {
  CHECK(parse("hbfp8")->spec() == "hbfp8");
  CHECK(parse("hbfp8:block=64,round=nearest")->spec() == "hbfp8");
  CHECK(parse("hbfp4:block=32,round=stochastic")->spec() == "hbfp4:block=32,round=stochastic");
  CHECK(parse("hbfp16:block=24")->spec() == "hbfp16:block=24");
  CHECK(parse("hbfp8")->isBlocked());
  CHECK_THROWS_AS(parse("hbfp1"), Error);
  CHECK_THROWS_AS(parse("hbfp25"), Error);
  CHECK_THROWS_AS(parse("hbfp8:block=0"), Error);
  CHECK_THROWS_WITH_AS(parse("hbfp8:round=up"), doctest::Contains("round"), Error);
  CHECK_THROWS_AS(parse("hbfp8:blok=3"), Error);
  Rng rng(12);
  Tensor x = Tensor::randn({4, 33, 6}, rng);
  for (const char* spec : {"hbfp4", "hbfp12:block=8", "hbfp24:block=5,round=stochastic"}) {
    CAPTURE(spec);
    FormatPtr f = parse(spec);
    QuantizeArgs args{.blockAxis = 1, .seed = 1, .step = 2};
    Encoded e = f->encode(x, args);
    CHECK(sameBits(f->decode(e).toVector<float>(), f->quantize(x, args).toVector<float>()));
  }
  CHECK(parse("hbfp4")->encode(x, {}).codes.dtype() == DType::I8);
  CHECK(parse("hbfp12")->encode(x, {}).codes.dtype() == DType::I16);
  CHECK(parse("hbfp24")->encode(x, {}).codes.dtype() == DType::I32);
  // Packed: 4-bit mantissas and 8-bit exponents (100 values, 2 blocks of 64 along the axis).
  Encoded e4 = parse("hbfp4")->encode(Tensor::zeros({100}), {});
  CHECK(e4.packedBytes() == 50 + 2);
  // Last axis: 6 values per line, one (partial) block each.
  CHECK(parse("hbfp8")->bitsPerValue({4, 33, 6}) == doctest::Approx(8.0 + 8.0 / 6));
  CHECK(parse("hbfp8")->bitsPerValue({4, 33, 6}, 1) == doctest::Approx(8.0 + 8.0 / 33));
}
