// The int8 block-floating-point path (docs/performance.md "int8 block-floating-point path"):
// the kernel (core/ops/detail/BfpGemm.h) against a double-precision reference built from
// operands quantized here from the HBFP definition, and the layers with the path on against
// the same kind of reference, within the bound of FP32 summation in any order.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "Int8BfpTestUtil.h"
#include "LayerTestUtil.h"
#include "core/CpuFeatures.h"
#include "core/ops/Linalg.h"
#include "core/ops/detail/BfpConv.h"
#include "core/ops/detail/BfpGemm.h"
#include "formats/Format.h"
#include "formats/Policy.h"
#include "layers/Conv2d.h"
#include "layers/Linear.h"

using namespace mantissa;
using formats::FormatPolicy;
namespace od = mantissa::ops::detail;
using namespace mantissa::testing::int8bfp;

TEST_CASE("Int8Bfp kernel: block-FP GEMM equals the double reference within the FP32 bound") {
  struct Shape3 {
    int64_t M, N, K, block;
  };
  // Odd sizes: tails of the 6-row and 16/32-column tiles, partial last blocks, K < 4, K not a
  // multiple of 4, blocks of 5 and 16.
  const Shape3 shapes[] = {{1, 1, 1, 64}, {7, 17, 3, 64},   {13, 33, 130, 64}, {50, 40, 200, 16},
                           {5, 3, 67, 5}, {64, 64, 64, 64}, {97, 50, 129, 64}};
  const int widths[][2] = {{8, 8}, {6, 6}, {4, 4}, {8, 4}};
  for (const Shape3& sh : shapes) {
    for (const auto& w : widths) {
      CAPTURE(sh.M);
      CAPTURE(sh.N);
      CAPTURE(sh.K);
      CAPTURE(sh.block);
      CAPTURE(w[0]);
      CAPTURE(w[1]);
      Rng rng(static_cast<uint64_t>(sh.M * 1000 + sh.K + w[1]));
      auto a = randomMatrix(rng, sh.M, sh.K), b = randomMatrix(rng, sh.N, sh.K, 1e-3f);
      if (sh.K >= 3) {
        for (int64_t k = 0; k < std::min<int64_t>(sh.K, sh.block); ++k)
          a[k] = 0.0f;  // a zero block
        b[1] = 1e30f;   // a block whose other values flush to zero mantissas
      }
      auto qa = quantizeRows(a, sh.M, sh.K, sh.K, sh.block, w[0]);
      auto qb = quantizeRows(b, sh.N, sh.K, sh.K, sh.block, w[1]);
      Ref ref = referenceGemm(qa, qb, sh.M, sh.N, sh.K);
      auto qbT = transposed(qb, sh.N, sh.K);
      std::vector<float> first;
      for (od::BfpIsa isa : isas()) {
        CAPTURE(static_cast<int>(isa));
        for (bool strided : {false, true}) {
          std::vector<float> c(sh.M * sh.N + 3, -7.0f);  // ldc = N; a guard after the end
          const od::BfpSource B =
              strided ? columnMajor(qbT, sh.N, sh.K, w[1]) : rowMajor(qb, sh.N, sh.K, w[1]);
          REQUIRE(od::bfpGemm(rowMajor(qa, sh.M, sh.K, w[0]), B, sh.block, c.data(), sh.N, isa));
          CHECK(c[sh.M * sh.N] == -7.0f);
          c.resize(sh.M * sh.N);
          CHECK(worstRatio(c, ref, sh.K) <= 1.0);
          // Both kernels sum the same block values in the same order: the same bits.
          if (first.empty()) first = c;
          CHECK(std::memcmp(first.data(), c.data(), c.size() * sizeof(float)) == 0);
        }
      }
    }
  }
}

TEST_CASE("Int8Bfp kernel: row maps (segments, zero rows) and planar output") {
  // C(m, n) = Σ_s A(index[m, s]) · B(n, segment s): the implicit GEMM of a convolution. Checked
  // against the plain GEMM of the explicitly gathered A, written row-major and planar.
  const int64_t srcRows = 9, S = 3, L = 20, N = 21, M = 14, P = 7;  // 2 images of 7 pixels
  Rng rng(31);
  auto src = quantizeRows(randomMatrix(rng, srcRows, L), srcRows, L, L, 16, 8);
  auto b = quantizeRows(randomMatrix(rng, N, S * L), N, S * L, L, 16, 8);
  std::vector<int32_t> index(M * S);
  std::vector<float> gathered(M * S * L, 0.0f);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t s = 0; s < S; ++s) {
      const int32_t i = (m + 2 * s) % 5 == 0 ? -1 : static_cast<int32_t>((m * 7 + s) % srcRows);
      index[m * S + s] = i;
      for (int64_t k = 0; k < L && i >= 0; ++k) gathered[(m * S + s) * L + k] = src[i * L + k];
    }
  Ref ref = referenceGemm(gathered, b, M, N, S * L);
  for (od::BfpIsa isa : isas()) {
    CAPTURE(static_cast<int>(isa));
    od::BfpPackedA pa = od::bfpPackA(rowMajor(src, srcRows, L, 8), 16, isa);
    od::BfpSource bs{.rows1 = N,
                     .segments = S,
                     .segLen = L,
                     .values = b.data(),
                     .s1 = S * L,
                     .sSeg = L,
                     .sk = 1,
                     .bits = 8};
    od::BfpPackedB pb = od::bfpPackB(bs, 16, isa);
    std::vector<float> rowMajorC(M * N), planar(M * N);
    od::BfpRowMap map{.rows = M, .segments = S, .index = index.data()};
    REQUIRE(od::bfpGemmPacked(pa, map, pb, rowMajorC.data(), N, isa));
    CHECK(worstRatio(rowMajorC, ref, S * L) <= 1.0);
    map.planeRows = P;
    REQUIRE(od::bfpGemmPacked(pa, map, pb, planar.data(), N, isa));
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        CHECK(planar[(m / P) * N * P + n * P + m % P] == rowMajorC[m * N + n]);
      }
  }
}

TEST_CASE("Int8Bfp kernel: mantissas and exponents recovered from the values are the encoder's") {
  // The path packs the emulation's quantized FP32 values; the recovered integers must be those
  // hbfpQuantize<int8_t> writes (Format::encode), for RNE and stochastic rounding, including
  // blocks clamped at 2^-126, saturated blocks and blocks flushed to zero.
  for (std::string spec : {"hbfp8", "hbfp4", "hbfp6:round=stochastic", "hbfp8:block=16"}) {
    CAPTURE(spec);
    auto f = formats::parse(spec);
    Rng rng(21);
    const int64_t rows = 9, K = 150;
    std::vector<float> x = randomMatrix(rng, rows, K);
    for (int64_t k = 0; k < 64; ++k) x[K + k] *= 1e-40f;  // row 1, block 0: FP32 subnormals
    x[2 * K + 3] = 1.0f;                                  // row 2: a power-of-two max
    for (int64_t k = 0; k < K; ++k) x[3 * K + k] = 0.0f;  // row 3: all zero
    Tensor xt = Tensor::fromVector(x, {rows, K});
    formats::QuantizeArgs args;
    args.blockAxis = 1;
    args.seed = 5;
    args.step = 3;
    Tensor q = f->quantize(xt, args);
    formats::Encoded e = f->encode(xt, args);
    const int bits = e.codeBits;
    const int64_t block = spec.find("block=16") != std::string::npos ? 16 : 64;
    std::vector<float> qv = q.toVector();
    for (od::BfpIsa isa : isas()) {
      CAPTURE(static_cast<int>(isa));
      od::BfpPackedA pa = od::bfpPackA(rowMajor(qv, rows, K, bits), block, isa);
      CHECK(pa.onGrid);
      std::vector<int8_t> codes = e.codes.toVector<int8_t>();
      std::vector<int16_t> exps = e.exponents.toVector<int16_t>();
      const int64_t nb = (K + block - 1) / block;
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t kb = 0; kb < nb; ++kb) {
          const int8_t* got = pa.data() + r * pa.rowBytes + kb * pa.P;
          bool nonZero = false;
          for (int64_t k = kb * block; k < std::min(K, (kb + 1) * block); ++k) {
            CHECK(got[k - kb * block] == codes[r * K + k]);
            nonZero |= codes[r * K + k] != 0;
          }
          if (nonZero) {  // an all-zero block's exponent does not matter (its products are 0)
            int32_t biased;
            std::memcpy(&biased, pa.data() + r * pa.rowBytes + pa.blocks * (pa.P + 4) + kb * 4, 4);
            CHECK((biased >> 23) - 127 == exps[r * nb + kb] - (bits - 1));
          }
        }
      }
    }
  }
}

TEST_CASE("Int8Bfp kernel: falls back when a block product is not an FP32 normal") {
  const int64_t M = 4, N = 5, K = 40;
  Rng rng(3);
  for (od::BfpIsa isa : isas()) {
    CAPTURE(static_cast<int>(isa));
    {  // tiny exponents: products below 2^-126
      auto a = quantizeRows(randomMatrix(rng, M, K, 0x1p-60f), M, K, K, 64, 8);
      auto b = quantizeRows(randomMatrix(rng, N, K, 0x1p-66f), N, K, K, 64, 8);
      std::vector<float> c(M * N, 3.0f);
      CHECK_FALSE(od::bfpGemm(rowMajor(a, M, K, 8), rowMajor(b, N, K, 8), 64, c.data(), N, isa));
      CHECK(c == std::vector<float>(M * N, 3.0f));  // untouched
    }
    {  // huge exponents: block sums beyond FP32's range
      auto a = quantizeRows(randomMatrix(rng, M, K, 0x1p+70f), M, K, K, 64, 8);
      auto b = quantizeRows(randomMatrix(rng, N, K, 0x1p+60f), N, K, K, 64, 8);
      std::vector<float> c(M * N, 3.0f);
      CHECK_FALSE(od::bfpGemm(rowMajor(a, M, K, 8), rowMajor(b, N, K, 8), 64, c.data(), N, isa));
    }
    {  // values that are not N-bit HBFP values
      auto a = quantizeRows(randomMatrix(rng, M, K), M, K, K, 64, 8);
      auto b = quantizeRows(randomMatrix(rng, N, K), N, K, K, 64, 8);
      std::vector<float> c(M * N, 3.0f);
      CHECK_FALSE(od::bfpGemm(rowMajor(a, M, K, 4), rowMajor(b, N, K, 8), 64, c.data(), N, isa));
      a[5] = std::nextafter(a[5], 10.0f);
      CHECK_FALSE(od::bfpGemm(rowMajor(a, M, K, 8), rowMajor(b, N, K, 8), 64, c.data(), N, isa));
    }
    {  // zero blocks with the clamped exponent do not force a fallback
      auto a = quantizeRows(randomMatrix(rng, M, K, 0x1p-100f), M, K, K, 64, 8);
      std::vector<float> b(N * K, 0.0f);
      b[7] = 1.0f;  // one non-zero block; the other rows are zero blocks (exponent -126)
      std::vector<float> c(M * N, 3.0f);
      REQUIRE(od::bfpGemm(rowMajor(a, M, K, 8), rowMajor(b, N, K, 8), 64, c.data(), N, isa));
      Ref ref = referenceGemm(a, b, M, N, K);
      CHECK(worstRatio(c, ref, K) <= 1.0);
    }
  }
}

TEST_CASE("Int8Bfp layers: Linear's three GEMMs on the int8 path equal the emulation") {
  struct Case {
    int64_t n, in, out;
  };
  // Partial blocks along every reduction axis (in, out and the batch).
  const Case cases[] = {{70, 100, 20}, {150, 130, 70}, {3, 5, 2}};
  for (const Case& c : cases) {
    for (int bits : {8, 6, 4}) {
      CAPTURE(c.n);
      CAPTURE(c.in);
      CAPTURE(bits);
      Rng rng(11);
      nn::Linear fc(c.in, c.out, rng, nn::LinearOptions{.bias = false});
      fc.setPolicy(hbfpPolicy("hbfp" + std::to_string(bits)));
      Tensor x = Tensor::randn({c.n, c.in}, rng), g = Tensor::randn({c.n, c.out}, rng);
      LayerRun off = runLayer(fc, fc.weight(), x, g, false);
      LayerRun on = runLayer(fc, fc.weight(), x, g, true);
      CHECK(off.stats.int8 == 0);
      CHECK(on.stats.int8 == 3);
      CHECK(on.stats.inexact == 0);
      // Reference operands, blocked along each GEMM's reduction axis (hbfpReference is written
      // from the definition, tests/layers/LayerTestUtil.h).
      const Tensor w = fc.weight().detach();
      auto xF = toDouble(testing::hbfpReference(x, {1}, bits));
      auto xW = toDouble(testing::hbfpReference(x, {0}, bits));
      auto wF = toDouble(testing::hbfpReference(w, {1}, bits));
      auto wD = toDouble(testing::hbfpReference(w, {0}, bits));
      auto eD = toDouble(testing::hbfpReference(g, {1}, bits));
      auto eW = toDouble(testing::hbfpReference(g, {0}, bits));
      const int64_t N = c.n, I = c.in, O = c.out;
      Ref y = refProduct(
          N, O, I, [&](int64_t m, int64_t k) { return xF[m * I + k]; },
          [&](int64_t n, int64_t k) { return wF[n * I + k]; });
      Ref gx = refProduct(
          N, I, O, [&](int64_t m, int64_t k) { return eD[m * O + k]; },
          [&](int64_t n, int64_t k) { return wD[k * I + n]; });
      Ref gw = refProduct(
          O, I, N, [&](int64_t m, int64_t k) { return eW[k * O + m]; },
          [&](int64_t n, int64_t k) { return xW[k * I + n]; });
      CHECK(worstRatio(on.y, y, I) <= 1.0);
      CHECK(worstRatio(on.gx, gx, O) <= 1.0);
      CHECK(worstRatio(on.gw, gw, N) <= 1.0);
      CHECK(worstRatio(off.y, y, I) <= 1.0);  // the reference is the emulation's
      CHECK(worstRatio(off.gx, gx, O) <= 1.0);
      CHECK(worstRatio(off.gw, gw, N) <= 1.0);
    }
  }
}

TEST_CASE("Int8Bfp layers: stochastic rounding gives the emulation's operands") {
  // The path multiplies the emulation's own quantized values, so the stochastic bits (stream,
  // step, element index) are the same: on and off differ by summation order only. With other
  // bits the results would differ by about one ulp of hbfp6 (2^-5 relative), 1000x the bound.
  Rng rng(12);
  const int64_t N = 40, I = 90, O = 30;
  Tensor x = Tensor::randn({N, I}, rng), g = Tensor::randn({N, O}, rng);
  auto run = [&](bool on) {
    Rng init(13);  // a fresh layer each time: the stochastic steps start equal
    nn::Linear fc(I, O, init, nn::LinearOptions{.bias = false});
    fc.setPolicy(hbfpPolicy("hbfp6:round=stochastic"));
    return runLayer(fc, fc.weight(), x, g, on);
  };
  LayerRun off = run(false), on = run(true);
  CHECK(on.stats.int8 == 3);
  // Σ|a·b| of the quantized operands is within 2x of that of the FP32 ones for hbfp6.
  auto xs = toDouble(x), gs = toDouble(g);
  Rng init(13);
  nn::Linear probe(I, O, init, nn::LinearOptions{.bias = false});
  auto ws = toDouble(probe.weight());
  // Bound for the difference of two summation orders: twice the one-sided bound.
  Ref y = refProduct(
      N, O, I, [&](int64_t m, int64_t k) { return xs[m * I + k]; },
      [&](int64_t n, int64_t k) { return ws[n * I + k]; });
  Ref gx = refProduct(
      N, I, O, [&](int64_t m, int64_t k) { return gs[m * O + k]; },
      [&](int64_t n, int64_t k) { return ws[k * I + n]; });
  Ref gw = refProduct(
      O, I, N, [&](int64_t m, int64_t k) { return gs[k * O + m]; },
      [&](int64_t n, int64_t k) { return xs[k * I + n]; });
  for (auto* r : {&y, &gx, &gw}) r->value = std::vector<double>(r->value.size(), 0.0);
  auto diff = [](const Tensor& a, const Tensor& b) { return sub(a, b); };
  CHECK(worstRatio(diff(on.y, off.y), y, I, 4.0) <= 1.0);
  CHECK(worstRatio(diff(on.gx, off.gx), gx, O, 4.0) <= 1.0);
  CHECK(worstRatio(diff(on.gw, off.gw), gw, N, 4.0) <= 1.0);
  // And they are not trivially equal to RNE results: the stochastic operands differ from RNE.
  Rng init2(13);
  nn::Linear rne(I, O, init2, nn::LinearOptions{.bias = false});
  rne.setPolicy(hbfpPolicy("hbfp6"));
  LayerRun r = runLayer(rne, rne.weight(), x, g, true);
  CHECK(worstRatio(diff(r.y, off.y), y, I, 4.0) > 10.0);
}

TEST_CASE("Int8Bfp layers: a GEMM with products below 2^-126 runs in FP32") {
  Rng rng(6);
  nn::Linear fc(40, 8, rng, nn::LinearOptions{.bias = false});
  fc.setPolicy(hbfpPolicy("hbfp8"));
  Tensor weight = fc.weight();
  float* w = weight.data<float>();
  for (int64_t i = 0; i < weight.numel(); ++i) w[i] *= 0x1p-40f;
  Tensor x = mul(Tensor::randn({4, 40}, rng), Tensor::full({1}, 0x1p-90f));
  Tensor g = Tensor::randn({4, 8}, rng);
  LayerRun off = runLayer(fc, fc.weight(), x, g, false);
  LayerRun on = runLayer(fc, fc.weight(), x, g, true);
  CHECK(on.stats.inexact == 1);                // forward: |x·w| ~ 2^-130
  CHECK(on.stats.int8 == 2);                   // error·w ~ 2^-40 and x·error ~ 2^-90 are normal
  CHECK(on.y.toVector() == off.y.toVector());  // the FP32 kernel on the same operands
}

TEST_CASE("Int8Bfp layers: formats the kernel cannot take keep their path") {
  // Per GEMM: hbfp12 (N > 8) never; weights with other blocks: only backward-weights (x and
  // error, both hbfp8) qualifies; e4m3 activations: only backward-data (error and weight).
  struct Case {
    const char *weight, *activation, *error;
    bool fwd, data, wgt;
  };
  const Case cases[] = {{"hbfp12", "hbfp12", "hbfp12", false, false, false},
                        {"hbfp8:block=16", "hbfp8", "hbfp8", false, false, true},
                        {"hbfp8", "e4m3", "hbfp8", false, true, false}};
  for (const Case& c : cases) {
    CAPTURE(std::string(c.weight) + " " + c.activation + " " + c.error);
    Rng rng(9);
    nn::Linear fc(64, 16, rng, nn::LinearOptions{.bias = false});
    FormatPolicy p = FormatPolicy::fp32();
    p.weight = formats::parse(c.weight);
    p.activation = formats::parse(c.activation);
    p.error = formats::parse(c.error);
    fc.setPolicy(p);
    Tensor x = Tensor::randn({8, 64}, rng), g = Tensor::randn({8, 16}, rng);
    LayerRun off = runLayer(fc, fc.weight(), x, g, false);
    LayerRun on = runLayer(fc, fc.weight(), x, g, true);
    CHECK(on.stats.int8 == int(c.fwd) + int(c.data) + int(c.wgt));
    CHECK(on.stats.inexact == 0);
    // The GEMMs that keep their path give the same bits.
    if (!c.fwd) CHECK(on.y.toVector() == off.y.toVector());
    if (!c.data) CHECK(on.gx.toVector() == off.gx.toVector());
    if (!c.wgt) CHECK(on.gw.toVector() == off.gw.toVector());
  }
}

TEST_CASE("Int8Bfp layers: Conv2d forward on the int8 path equals the emulation") {
  // Stride 1 with "same" padding and groups 1 runs on the direct kernel from 16 channels along
  // the reduction (kInt8DirectMinChannels: forward from 16 input channels, backward-data from
  // 16 output channels, checked in "Conv2d forward and backward-data on the direct kernel");
  // other geometries take the implicit GEMM from 64 input channels per group (kInt8MinChannels
  // in layers/Conv2d.cpp) and keep their path below.
  struct Case {
    const char* name;
    int64_t n, cin, cout, h, k, stride, pad, dil, groups;
    int gemms = 1;  // GEMMs on the int8 path: forward (1), forward and backward-data (2), none
  };
  const Case cases[] = {
      {"80->8 3x3 pad 1 (direct forward; a full and a partial block)", 2, 80, 8, 6, 3, 1, 1, 1, 1},
      {"128->32 3x3 stride 2 pad 1 groups 2", 2, 128, 32, 7, 3, 2, 1, 1, 2},
      {"64->40 1x1 stride 2", 2, 64, 40, 8, 1, 2, 0, 1, 1},
      {"256->16 3x3 dilation 2 groups 4", 2, 256, 16, 7, 3, 1, 2, 2, 4},
      {"70->7 5x5 pad 2 (direct forward; odd channels)", 2, 70, 7, 5, 5, 1, 2, 1, 1},
      {"16->16 3x3 stride 2 pad 1 (below the channel gate)", 2, 16, 16, 6, 3, 2, 1, 1, 1, 0},
      {"16->80 3x3 pad 1 (direct forward, backward-data and backward-weights)", 2, 16, 80, 5, 3, 1,
       1, 1, 1, 3},
  };
  for (const Case& c : cases) {
    for (const char* spec : {"hbfp8", "hbfp4"}) {
      CAPTURE(c.name);
      CAPTURE(std::string(spec));
      const int bits = std::stoi(std::string(spec).substr(4));
      Rng rng(17);
      nn::Conv2d conv(c.cin, c.cout, c.k, rng,
                      nn::Conv2dOptions{.stride = c.stride,
                                        .padding = c.pad,
                                        .dilation = c.dil,
                                        .groups = c.groups,
                                        .bias = false});
      conv.setPolicy(hbfpPolicy(spec));
      Tensor x = Tensor::randn({c.n, c.cin, c.h, c.h}, rng);
      const int64_t oh = (c.h + 2 * c.pad - c.dil * (c.k - 1) - 1) / c.stride + 1;
      Tensor g = Tensor::randn({c.n, c.cout, oh, oh}, rng);
      LayerRun off = runLayer(conv, conv.weight(), x, g, false);
      LayerRun on = runLayer(conv, conv.weight(), x, g, true);
      CHECK(on.stats.int8 == c.gemms);
      CHECK(on.stats.inexact == 0);
      if (c.gemms == 0) CHECK(on.y.toVector() == off.y.toVector());
      if (c.gemms < 2) CHECK(on.gx.toVector() == off.gx.toVector());  // gx: see the next case
      CHECK(on.gw.toVector() == off.gw.toVector());
      const int64_t G = c.groups, cg = c.cin / G, og = c.cout / G;
      auto xq = toDouble(testing::hbfpReference(x.reshape({c.n, G, cg, c.h, c.h}), {2}, bits));
      auto wq = toDouble(
          testing::hbfpReference(conv.weight().detach().reshape({G, og, cg, c.k, c.k}), {2}, bits));
      const int64_t outs = c.n * c.cout * oh * oh, K = cg * c.k * c.k;
      Ref ref{std::vector<double>(outs, 0), std::vector<double>(outs, 0)};
      for (int64_t b = 0; b < c.n; ++b)
        for (int64_t co = 0; co < c.cout; ++co)
          for (int64_t oy = 0; oy < oh; ++oy)
            for (int64_t ox = 0; ox < oh; ++ox)
              for (int64_t ci = 0; ci < cg; ++ci)
                for (int64_t ky = 0; ky < c.k; ++ky)
                  for (int64_t kx = 0; kx < c.k; ++kx) {
                    const int64_t iy = oy * c.stride - c.pad + ky * c.dil;
                    const int64_t ix = ox * c.stride - c.pad + kx * c.dil;
                    if (iy < 0 || iy >= c.h || ix < 0 || ix >= c.h) continue;
                    const int64_t cin = co / og * cg + ci;
                    const double p = xq[((b * c.cin + cin) * c.h + iy) * c.h + ix] *
                                     wq[((co * cg + ci) * c.k + ky) * c.k + kx];
                    const int64_t o = ((b * c.cout + co) * oh + oy) * oh + ox;
                    ref.value[o] += p;
                    ref.absSum[o] += std::fabs(p);
                  }
      CHECK(worstRatio(on.y, ref, K) <= 1.0);
      CHECK(worstRatio(off.y, ref, K) <= 1.0);
    }
  }
}

// ---- the direct convolution (core/ops/detail/BfpConv.h) --------------------------------------

TEST_CASE("Int8Bfp conv kernel: direct convolution equals the double reference within the bound") {
  struct Case {
    int64_t N, C, O, H, W, k;
  };
  // 16/32/64 channels (one block), 96 (a full and a partial block), 70 and 6 (blocks not a
  // multiple of 4), 40 and 20 output channels (partial 16-channel vectors), 1x1, 3x3 and 5x5,
  // odd image sizes (tails of the 7- and 14-pixel tiles), N = 1 and 3.
  const Case cases[] = {{3, 16, 16, 9, 11, 3}, {1, 32, 32, 7, 7, 3},  {2, 64, 64, 5, 8, 3},
                        {1, 96, 40, 6, 5, 3},  {1, 16, 20, 13, 3, 1}, {1, 70, 7, 4, 5, 5},
                        {3, 6, 17, 3, 16, 3},  {1, 32, 16, 15, 29, 3}};
  const int widths[][2] = {{8, 8}, {6, 6}, {4, 4}, {8, 4}};
  for (const Case& cs : cases) {
    for (const auto& wd : widths) {
      CAPTURE(cs.N);
      CAPTURE(cs.C);
      CAPTURE(cs.O);
      CAPTURE(cs.H);
      CAPTURE(cs.W);
      CAPTURE(cs.k);
      CAPTURE(wd[0]);
      CAPTURE(wd[1]);
      const int64_t HW = cs.H * cs.W, T = cs.k * cs.k;
      Rng rng(static_cast<uint64_t>(cs.C * 100 + cs.O + wd[1]));
      std::vector<float> x = randomMatrix(rng, cs.N * cs.C, HW);
      std::vector<float> w = randomMatrix(rng, cs.O * cs.C, T, 1e-2f);
      for (int64_t c = 0; c < std::min<int64_t>(cs.C, 64); ++c) x[c * HW + 1] = 0.0f;  // zero block
      for (int64_t c = 0; c < std::min<int64_t>(cs.C, 64); ++c) w[c * T] = 0.0f;  // (o 0, tap 0)
      std::vector<float> xq = quantizeChannels(x, cs.N, cs.C, HW, 64, wd[0]);
      std::vector<float> wq = quantizeChannels(w, cs.O, cs.C, T, 64, wd[1]);
      Ref ref = referenceConv(
          xq, cs.N, cs.C, cs.H, cs.W, cs.O, cs.k,
          [&](int64_t o, int64_t c, int64_t t) { return double(wq[(o * cs.C + c) * T + t]); });
      const od::BfpConvInput in{
          .values = xq.data(), .N = cs.N, .C = cs.C, .H = cs.H, .W = cs.W, .bits = wd[0]};
      const od::BfpConvWeight wt{.values = wq.data(),
                                 .O = cs.O,
                                 .C = cs.C,
                                 .k = cs.k,
                                 .sO = cs.C * T,
                                 .sC = T,
                                 .sT = 1,
                                 .bits = wd[1]};
      std::vector<float> first;
      for (od::BfpIsa isa : isas()) {
        CAPTURE(static_cast<int>(isa));
        std::vector<float> y(ref.value.size() + 1, -7.0f);
        REQUIRE(od::bfpConv2d(in, wt, 64, y.data(), isa));
        CHECK(y.back() == -7.0f);
        y.pop_back();
        CHECK(worstRatio(y, ref, cs.C * T) <= 1.0);
        if (first.empty()) first = y;
        CHECK(first == y);  // the same sums and FMAs in the same order
      }
    }
  }
}

TEST_CASE("Int8Bfp conv kernel: the flipped, transposed weight of backward-data") {
  // gx = gy (*) w'[c, o, t] = w[o, c, T-1-t], read through strides from the forward weight.
  const int64_t N = 2, O = 32, C = 24, H = 6, W = 9, k = 3, T = k * k, HW = H * W;
  Rng rng(41);
  std::vector<float> gy = quantizeChannels(randomMatrix(rng, N * O, HW), N, O, HW, 64, 8);
  std::vector<float> w = randomMatrix(rng, O * C, T);
  // Blocked along O per (c, t): rows (c, t) of the [C·T, O] transpose.
  std::vector<float> wT = transposed(w, O, C * T);
  std::vector<float> wq = transposed(quantizeRows(wT, C * T, O, O, 64, 8), C * T, O);
  Ref ref = referenceConv(gy, N, O, H, W, C, k, [&](int64_t c, int64_t o, int64_t t) {
    return double(wq[(o * C + c) * T + (T - 1 - t)]);
  });
  const od::BfpConvInput in{.values = gy.data(), .N = N, .C = O, .H = H, .W = W, .bits = 8};
  const od::BfpConvWeight wt{.values = wq.data() + (T - 1),
                             .O = C,
                             .C = O,
                             .k = k,
                             .sO = T,
                             .sC = C * T,
                             .sT = -1,
                             .bits = 8};
  for (od::BfpIsa isa : isas()) {
    std::vector<float> gx(N * C * HW);
    REQUIRE(od::bfpConv2d(in, wt, 64, gx.data(), isa));
    CHECK(worstRatio(gx, ref, O * T) <= 1.0);
  }
}

TEST_CASE("Int8Bfp conv kernel: declines when a block product is not an FP32 normal") {
  const int64_t N = 1, C = 16, O = 16, H = 4, W = 4, T = 9;
  Rng rng(43);
  for (od::BfpIsa isa : isas()) {
    CAPTURE(static_cast<int>(isa));
    std::vector<float> x =
        quantizeChannels(randomMatrix(rng, N * C, H * W, 0x1p-60f), N, C, H * W, 64, 8);
    std::vector<float> w = quantizeChannels(randomMatrix(rng, O * C, T, 0x1p-66f), O, C, T, 64, 8);
    const od::BfpConvInput in{.values = x.data(), .N = N, .C = C, .H = H, .W = W, .bits = 8};
    od::BfpConvWeight wt{
        .values = w.data(), .O = O, .C = C, .k = 3, .sO = C * T, .sC = T, .sT = 1, .bits = 8};
    std::vector<float> y(N * O * H * W, 3.0f);
    CHECK_FALSE(od::bfpConv2d(in, wt, 64, y.data(), isa));
    // Values that are not 8-bit HBFP values of their blocks.
    x[3] = std::nextafter(x[3], 1.0f);
    for (float& v : w) v *= 0x1p+66f;
    CHECK_FALSE(od::bfpConv2d(in, wt, 64, y.data(), isa));
    // An all-zero weight: exactly zero, whatever x holds.
    std::fill(w.begin(), w.end(), 0.0f);
    x[3] = 0.0f;
    REQUIRE(od::bfpConv2d(in, wt, 64, y.data(), isa));
    CHECK(y == std::vector<float>(y.size(), 0.0f));
  }
}

TEST_CASE("Int8Bfp layers: Conv2d forward and backward-data on the direct kernel") {
  // Stride 1, "same" padding, groups 1: forward and backward-data run on bfpConv2d; the input
  // gradient is checked against the double reference of the quantized output gradient (blocked
  // along O per pixel) and weight (along O per input channel and tap). Backward-weights runs on
  // its int8 kernel too (from 16 channels; checked against its double reference in
  // Int8BfpWeightsTest.cpp).
  struct Case {
    int64_t n, cin, cout, h, w, k;
  };
  const Case cases[] = {{3, 16, 16, 7, 9, 3}, {1, 96, 32, 5, 6, 3}, {2, 20, 70, 4, 7, 1}};
  for (const Case& c : cases) {
    for (const char* spec : {"hbfp8", "hbfp4"}) {
      CAPTURE(c.cin);
      CAPTURE(c.cout);
      CAPTURE(c.k);
      CAPTURE(std::string(spec));
      const int bits = std::stoi(std::string(spec).substr(4));
      Rng rng(19);
      nn::Conv2d conv(c.cin, c.cout, c.k, rng,
                      nn::Conv2dOptions{.padding = (c.k - 1) / 2, .bias = false});
      conv.setPolicy(hbfpPolicy(spec));
      Tensor x = Tensor::randn({c.n, c.cin, c.h, c.w}, rng);
      Tensor g = Tensor::randn({c.n, c.cout, c.h, c.w}, rng);
      LayerRun off = runLayer(conv, conv.weight(), x, g, false);
      LayerRun on = runLayer(conv, conv.weight(), x, g, true);
      CHECK(off.stats.int8 == 0);
      CHECK(on.stats.int8 == 3);
      CHECK(on.stats.inexact == 0);
      const int64_t T = c.k * c.k;
      auto xq = testing::hbfpReference(x, {1}, bits).toVector();
      auto gq = testing::hbfpReference(g, {1}, bits).toVector();
      Tensor w = conv.weight().detach();
      auto wF = toDouble(testing::hbfpReference(w, {1}, bits));
      auto wD = toDouble(testing::hbfpReference(w, {0}, bits));
      Ref y = referenceConv(
          xq, c.n, c.cin, c.h, c.w, c.cout, c.k,
          [&](int64_t o, int64_t ci, int64_t t) { return wF[(o * c.cin + ci) * T + t]; });
      Ref gx = referenceConv(
          gq, c.n, c.cout, c.h, c.w, c.cin, c.k,
          [&](int64_t ci, int64_t o, int64_t t) { return wD[(o * c.cin + ci) * T + (T - 1 - t)]; });
      CHECK(worstRatio(on.y, y, c.cin * T) <= 1.0);
      CHECK(worstRatio(off.y, y, c.cin * T) <= 1.0);
      CHECK(worstRatio(on.gx, gx, c.cout * T) <= 1.0);
      CHECK(worstRatio(off.gx, gx, c.cout * T) <= 1.0);
    }
  }
}

TEST_CASE("Int8Bfp layers: Conv2d with fewer than 16 input channels keeps its forward path") {
  // ResNet-20's first conv (1 input channel) ran at 0.25x the bf16 path on the direct kernel
  // (kInt8DirectMinChannels): its forward keeps the bf16/FP32 path (the same bits), its
  // backward-data (16 output channels) takes the kernel.
  Rng rng(23);
  nn::Conv2d conv(3, 16, 3, rng, nn::Conv2dOptions{.padding = 1, .bias = false});
  conv.setPolicy(hbfpPolicy("hbfp8"));
  Tensor x = Tensor::randn({2, 3, 6, 5}, rng), g = Tensor::randn({2, 16, 6, 5}, rng);
  LayerRun off = runLayer(conv, conv.weight(), x, g, false);
  LayerRun on = runLayer(conv, conv.weight(), x, g, true);
  CHECK(on.stats.int8 == 1);
  CHECK(on.stats.inexact == 0);
  CHECK(on.y.toVector() == off.y.toVector());
  CHECK(on.gw.toVector() == off.gw.toVector());
}
