// The int8 block-FP weight gradient of a convolution (core/ops/detail/BfpConvWeights.h): the
// kernel on HBFP codes (Hbfp::encode along (n, h, w), whose decoded values are checked against
// the test's own HBFP quantizer testing::hbfpReference) against a double-precision reference on
// those values, within the bound of FP32 summation in any order, and Conv2d's weight gradient
// with the int8 path on and off.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "Int8BfpTestUtil.h"
#include "LayerTestUtil.h"
#include "core/CpuFeatures.h"
#include "core/ops/Linalg.h"
#include "core/ops/detail/BfpConvWeights.h"
#include "core/parallel/ParallelFor.h"
#include "formats/Format.h"
#include "formats/Policy.h"
#include "layers/Conv2d.h"

using namespace mantissa;
namespace od = mantissa::ops::detail;
using mantissa::testing::int8bfp::PathSwitch;

namespace {

/// dw[o, c, ky, kx] = Σ gy[n, o, y, x] · x[n, c, y + ky - p, x + kx - p] in double (exact for
/// these operands), with Σ|terms| per output.
struct Ref {
  std::vector<double> value, absSum;
};

Ref referenceWeightGrad(const std::vector<float>& x, const std::vector<float>& gy, int64_t N,
                        int64_t C, int64_t O, int64_t H, int64_t W, int64_t k) {
  const int64_t T = k * k, p = (k - 1) / 2;
  Ref r{std::vector<double>(O * C * T, 0), std::vector<double>(O * C * T, 0)};
  for (int64_t o = 0; o < O; ++o)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t n = 0; n < N; ++n)
          for (int64_t y = 0; y < H; ++y)
            for (int64_t xx = 0; xx < W; ++xx) {
              const int64_t iy = y + t / k - p, ix = xx + t % k - p;
              if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
              const double v = double(gy[((n * O + o) * H + y) * W + xx]) *
                               double(x[((n * C + c) * H + iy) * W + ix]);
              r.value[(o * C + c) * T + t] += v;
              r.absSum[(o * C + c) * T + t] += std::fabs(v);
            }
  return r;
}

/// Largest |got - ref| / ((K + 1) · 2^-24 · Σ|a·b|): <= 1 for any FP32 summation order of the
/// exact products (K: products per output).
double worstRatio(const std::vector<float>& got, const Ref& ref, int64_t K) {
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double bound = (K + 1) * std::ldexp(1.0, -24) * ref.absSum[i] + 1e-300;
    worst = std::max(worst, std::fabs(got[i] - ref.value[i]) / bound);
  }
  return worst;
}

/// Normal values whose magnitude varies by up to 2^±6 from image to image and channel to
/// channel (blocks with different exponents), with some whole zero regions (zero blocks).
Tensor operand(Rng& rng, int64_t N, int64_t C, int64_t H, int64_t W, bool zeros) {
  std::vector<float> v = Tensor::randn({N, C, H, W}, rng).toVector();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      const float s = std::ldexp(1.0f, static_cast<int>((n * 5 + c * 3) % 13) - 6);
      for (int64_t i = 0; i < H * W; ++i) {
        float& e = v[(n * C + c) * H * W + i];
        e *= s;
        if (zeros && (c % 5 == 1 || (n == 0 && c % 3 == 0 && i < H * W / 2))) e = 0.0f;
      }
    }
  return Tensor::fromVector(v, {N, C, H, W});
}

/// `t` encoded in hbfpN along (N, H, W) (the kernel's operand) and its decoded values.
struct Codes {
  formats::Encoded e;
  std::vector<float> values;
};
Codes encodeNhw(const Tensor& t, int bits, int64_t block) {
  const formats::FormatPtr f =
      formats::parse("hbfp" + std::to_string(bits) + ":block=" + std::to_string(block));
  const std::vector<int64_t> nhw{0, 2, 3};
  Codes c;
  c.e = f->encode(t, {.blockAxes = nhw});
  c.values = f->decode(c.e).toVector();
  // Equal values (the reference keeps the sign of zero results, HBFP gives +0).
  CHECK(c.values == testing::hbfpReference(t, {0, 2, 3}, bits, block).toVector());
  return c;
}

/// The kernel's arguments for x and gy codes of [N, C|O, H, W] and a k x k kernel.
od::BfpWeightGradArgs argsOf(const Codes& x, const Codes& g, int64_t N, int64_t C, int64_t O,
                             int64_t H, int64_t W, int64_t k, int bitsX = 8, int bitsGy = 8) {
  return {.x = x.e.codes.data<int8_t>(),
          .xExps = x.e.exponents.data<int16_t>(),
          .gy = g.e.codes.data<int8_t>(),
          .gyExps = g.e.exponents.data<int16_t>(),
          .N = N,
          .C = C,
          .O = O,
          .H = H,
          .W = W,
          .k = k,
          .bitsX = bitsX,
          .bitsGy = bitsGy};
}

/// The weight gradient of one forward + backward of `conv` with output gradient g, and the
/// int8 path's counters.
std::vector<float> weightGrad(nn::Conv2d& conv, const Tensor& x, const Tensor& g, bool on,
                              Int8BfpStats& stats) {
  PathSwitch sw(on);
  conv.zeroGrad();
  Tensor xx = x.detach().clone();
  xx.requiresGrad();
  conv.forward(xx).backward({.grad = g});
  stats = int8BfpStats();
  return conv.weight().grad().toVector();
}

std::vector<od::BfpIsa> isas() {
  std::vector<od::BfpIsa> v{od::BfpIsa::Scalar};
  if (cpuFeatures().avx512Vnni) v.push_back(od::BfpIsa::Vnni);
  return v;
}

}  // namespace

TEST_CASE("Int8Bfp weights kernel: equals the double reference within the FP32 bound") {
  struct Case {
    int64_t n, c, o, h, w, k, block;
    int bitsX, bitsG;
  };
  // Blocks cross rows and images (block > W, > H·W), partial last blocks, blocks not a multiple
  // of 4 (24, 7), one partial block for everything (1024), odd channel counts and sizes.
  const Case cases[] = {{1, 16, 16, 5, 7, 3, 64, 8, 8}, {3, 32, 16, 9, 11, 3, 32, 8, 8},
                        {3, 64, 64, 7, 7, 3, 64, 8, 8}, {1, 96, 32, 6, 5, 3, 16, 6, 6},
                        {3, 16, 96, 4, 9, 3, 64, 4, 4}, {2, 5, 3, 3, 3, 3, 24, 8, 4},
                        {3, 17, 20, 6, 7, 3, 7, 6, 8},  {2, 16, 16, 5, 6, 3, 1024, 8, 8},
                        {3, 16, 16, 6, 5, 1, 64, 8, 8}, {1, 16, 16, 7, 8, 5, 32, 8, 8}};
  for (const Case& cs : cases) {
    for (bool zeros : {false, true}) {
      CAPTURE(cs.n);
      CAPTURE(cs.c);
      CAPTURE(cs.o);
      CAPTURE(cs.h);
      CAPTURE(cs.w);
      CAPTURE(cs.k);
      CAPTURE(cs.block);
      CAPTURE(zeros);
      Rng rng(31);
      // Codes from Hbfp::encode (decode(encode) == quantize, tests/formats); the reference
      // multiplies the decoded values in double.
      const Codes x = encodeNhw(operand(rng, cs.n, cs.c, cs.h, cs.w, zeros), cs.bitsX, cs.block);
      const Codes g = encodeNhw(operand(rng, cs.n, cs.o, cs.h, cs.w, zeros), cs.bitsG, cs.block);
      const Ref ref = referenceWeightGrad(x.values, g.values, cs.n, cs.c, cs.o, cs.h, cs.w, cs.k);
      const od::BfpWeightGradArgs a =
          argsOf(x, g, cs.n, cs.c, cs.o, cs.h, cs.w, cs.k, cs.bitsX, cs.bitsG);
      std::vector<std::vector<float>> results;
      for (od::BfpIsa isa : isas()) {
        std::vector<float> dw(static_cast<size_t>(cs.o * cs.c * cs.k * cs.k), -1.0f);
        REQUIRE(od::bfpConv2dBackwardWeights(a, cs.block, dw.data(), isa));
        CHECK(worstRatio(dw, ref, cs.n * cs.h * cs.w) <= 1.0);
        results.push_back(dw);
      }
      // The plain-loop kernel sums in the VNNI kernel's order: the same bits.
      if (results.size() == 2) {
        CHECK(testing::int8bfp::bitsOf(results[0]) == testing::int8bfp::bitsOf(results[1]));
      }
    }
  }
}

TEST_CASE("Int8Bfp weights kernel: results do not depend on the thread count") {
  Rng rng(37);
  const int64_t N = 3, C = 32, O = 16, H = 9, W = 10;
  const Codes x = encodeNhw(operand(rng, N, C, H, W, false), 8, 16);
  const Codes g = encodeNhw(operand(rng, N, O, H, W, false), 8, 16);
  const od::BfpWeightGradArgs a = argsOf(x, g, N, C, O, H, W, 3);
  const int saved = numThreads();
  std::vector<float> one(static_cast<size_t>(O * C * 9)), two(one.size());
  setNumThreads(1);
  REQUIRE(od::bfpConv2dBackwardWeights(a, 16, one.data()));
  setNumThreads(2);
  REQUIRE(od::bfpConv2dBackwardWeights(a, 16, two.data()));
  setNumThreads(saved);
  CHECK(one == two);
}

TEST_CASE("Int8Bfp weights kernel: declines when a block product is not an FP32 normal") {
  // Values near 2^-70 in both operands: products near 2^-140, below FP32's normal range.
  Rng rng(41);
  const int64_t N = 2, C = 16, O = 16, H = 5, W = 5;
  auto tiny = [&](int64_t ch) {
    Tensor t = operand(rng, N, ch, H, W, false);
    std::vector<float> v = t.toVector();
    for (float& e : v) e = std::ldexp(e, -70);
    return encodeNhw(Tensor::fromVector(v, {N, ch, H, W}), 8, 64);
  };
  const Codes x = tiny(C), g = tiny(O);
  const od::BfpWeightGradArgs a = argsOf(x, g, N, C, O, H, W, 3);
  for (od::BfpIsa isa : isas()) {
    std::vector<float> dw(static_cast<size_t>(O * C * 9), 7.0f);
    CHECK_FALSE(od::bfpConv2dBackwardWeights(a, 64, dw.data(), isa));
    CHECK(dw == std::vector<float>(dw.size(), 7.0f));  // left untouched
  }
}

TEST_CASE("Int8Bfp weights: Conv2d's weight gradient on the int8 path equals the emulation") {
  // From 16 input and output channels (kInt8WeightGradMinChannels in layers/Conv2d.cpp); x and
  // gy reach the kernel as HBFP codes blocked along (N, H, W), blocks straddling images.
  struct Case {
    int64_t n, cin, cout, h, w;
  };
  const Case cases[] = {{2, 64, 64, 7, 9}, {1, 96, 64, 5, 6}, {3, 16, 16, 5, 7}, {2, 32, 16, 6, 6}};
  for (const Case& c : cases) {
    for (int bits : {8, 4}) {
      CAPTURE(c.cin);
      CAPTURE(c.cout);
      CAPTURE(bits);
      Rng rng(43);
      nn::Conv2d conv(c.cin, c.cout, 3, rng, nn::Conv2dOptions{.padding = 1, .bias = false});
      formats::FormatPolicy p = formats::FormatPolicy::fp32();
      p.weight = p.activation = p.error = formats::parse("hbfp" + std::to_string(bits));
      conv.setPolicy(p);
      Tensor x = Tensor::randn({c.n, c.cin, c.h, c.w}, rng);
      Tensor g = Tensor::randn({c.n, c.cout, c.h, c.w}, rng);
      Int8BfpStats off, on;
      const std::vector<float> gwOff = weightGrad(conv, x, g, false, off);
      const std::vector<float> gwOn = weightGrad(conv, x, g, true, on);
      CHECK(off.int8 == 0);
      CHECK(on.inexact == 0);
      // Forward, backward-data and backward-weights on the int8 kernels (with VNNI or without).
      CHECK(on.int8 == 3);
      const std::vector<float> xq = testing::hbfpReference(x, {0, 2, 3}, bits).toVector();
      const std::vector<float> gq = testing::hbfpReference(g, {0, 2, 3}, bits).toVector();
      const Ref ref = referenceWeightGrad(xq, gq, c.n, c.cin, c.cout, c.h, c.w, 3);
      CHECK(worstRatio(gwOn, ref, c.n * c.h * c.w) <= 1.0);
      CHECK(worstRatio(gwOff, ref, c.n * c.h * c.w) <= 1.0);
    }
  }
  // Below 16 channels backward-weights keeps its path (forward takes its own).
  Rng rng(47);
  nn::Conv2d conv(16, 8, 3, rng, nn::Conv2dOptions{.padding = 1, .bias = false});
  formats::FormatPolicy p = formats::FormatPolicy::fp32();
  p.weight = p.activation = p.error = formats::parse("hbfp8");
  conv.setPolicy(p);
  Tensor x = Tensor::randn({2, 16, 6, 5}, rng), g = Tensor::randn({2, 8, 6, 5}, rng);
  Int8BfpStats off, on;
  CHECK(weightGrad(conv, x, g, true, on) == weightGrad(conv, x, g, false, off));
  CHECK(on.int8 == 1);
}
