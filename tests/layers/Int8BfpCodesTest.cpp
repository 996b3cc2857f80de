// The int8 block-floating-point path on HBFP codes (docs/performance.md "Operands as HBFP
// codes"): the kernels packing I8 mantissas and I16 block exponents give the bits of the recovery
// from the quantized values, the quantization points encode as they quantize, and the layers keep
// the emulation's results, fallbacks and bookkeeping.
#include <doctest/doctest.h>

#include <cstring>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "Int8BfpTestUtil.h"
#include "core/ops/Elementwise.h"
#include "core/ops/detail/BfpConv.h"
#include "core/ops/detail/BfpGemm.h"
#include "formats/Format.h"
#include "formats/QuantPoint.h"
#include "layers/Conv2d.h"

using namespace mantissa;
using namespace mantissa::testing::int8bfp;
namespace od = mantissa::ops::detail;

TEST_CASE("Int8Bfp conv kernel: packing the codes gives the bits of the recovery from the values") {
  // The same integers and exponents either way (a block whose mantissas are all zero has no
  // exponent in both), so the same sums in the same order: bit-identical. Forward (weight
  // blocked along C) and backward-data (along O, flipped), both operands as codes or as values.
  struct Case {
    int64_t N, C, O, H, W, k;
  };
  const Case cases[] = {{2, 16, 16, 9, 11, 3}, {1, 96, 40, 6, 5, 3},   {3, 6, 17, 3, 16, 3},
                        {1, 70, 7, 4, 5, 5},   {2, 32, 16, 15, 29, 3}, {1, 16, 20, 13, 3, 1}};
  for (const char* spec : {"hbfp8", "hbfp4", "hbfp6:block=16"}) {
    const formats::FormatPtr f = formats::parse(spec);
    const int bits = std::stoi(std::string(spec).substr(4, 1));
    const int64_t block = std::string(spec).find("block=16") != std::string::npos ? 16 : 64;
    for (const Case& cs : cases) {
      CAPTURE(std::string(spec));
      CAPTURE(cs.C);
      CAPTURE(cs.O);
      CAPTURE(cs.H);
      CAPTURE(cs.W);
      const int64_t HW = cs.H * cs.W, T = cs.k * cs.k;
      Rng rng(static_cast<uint64_t>(cs.C * 7 + cs.O));
      Tensor x = Tensor::randn({cs.N, cs.C, cs.H, cs.W}, rng);
      Tensor w = mul(Tensor::randn({cs.O, cs.C, cs.k, cs.k}, rng), Tensor::full({1}, 0.05f));
      float* xp = x.data<float>();
      for (int64_t c = 0; c < cs.C; ++c) {
        xp[c * HW + 1] = 0.0f;                                        // a zero block
        xp[c * HW + 2] *= 0x1p-140f;                                  // mantissas all rounded to 0
        if (c % 5 == 0) xp[c * HW + 3] = c % 10 == 0 ? 4.0f : -4.0f;  // a power-of-two max
      }
      const formats::Encoded xe = encodeAlong(f, x, 1), we = encodeAlong(f, w, 1);
      const formats::Encoded we0 = encodeAlong(f, w, 0);  // backward-data's blocks, along O
      const Tensor xv = f->decode(xe), wv = f->decode(we), wv0 = f->decode(we0);
      const int64_t CB = (cs.C + block - 1) / block;
      for (od::BfpIsa isa : isas()) {
        CAPTURE(static_cast<int>(isa));
        // Forward: y = x (*) w, blocks along C.
        od::BfpConvInput inV{
            .values = xv.data<float>(), .N = cs.N, .C = cs.C, .H = cs.H, .W = cs.W, .bits = bits};
        od::BfpConvInput inC = inV;
        inC.values = nullptr;
        inC.mantissas = xe.codes.data<int8_t>(), inC.exponents = xe.exponents.data<int16_t>();
        od::BfpConvWeight wtV{.values = wv.data<float>(),
                              .O = cs.O,
                              .C = cs.C,
                              .k = cs.k,
                              .sO = cs.C * T,
                              .sC = T,
                              .sT = 1,
                              .eO = CB * T,
                              .eCB = T,
                              .eT = 1,
                              .bits = bits};
        od::BfpConvWeight wtC = wtV;
        wtC.values = nullptr;
        wtC.mantissas = we.codes.data<int8_t>(), wtC.exponents = we.exponents.data<int16_t>();
        std::vector<float> yV(cs.N * cs.O * HW), yC(yV.size()), yM(yV.size());
        REQUIRE(od::bfpConv2d(inV, wtV, block, yV.data(), isa));
        REQUIRE(od::bfpConv2d(inC, wtC, block, yC.data(), isa));
        REQUIRE(od::bfpConv2d(inC, wtV, block, yM.data(), isa));
        CHECK(bitsOf(yC) == bitsOf(yV));
        CHECK(bitsOf(yM) == bitsOf(yV));
        // Backward-data: gx = x' (*) w'[c, o, t] = w[o, c, T-1-t], x' with O = cs.C channels
        // (x itself), w blocked along O: exponents [OB, C, T] read flipped.
        if (cs.O < 16) continue;
        const int64_t OB = (cs.O + block - 1) / block;
        const formats::Encoded ge = encodeAlong(f, Tensor::randn({cs.N, cs.O, cs.H, cs.W}, rng), 1);
        const Tensor gv = f->decode(ge);
        od::BfpConvInput gV{
            .values = gv.data<float>(), .N = cs.N, .C = cs.O, .H = cs.H, .W = cs.W, .bits = bits};
        od::BfpConvInput gC = gV;
        gC.values = nullptr;
        gC.mantissas = ge.codes.data<int8_t>(), gC.exponents = ge.exponents.data<int16_t>();
        od::BfpConvWeight dV{.values = wv0.data<float>() + (T - 1),
                             .O = cs.C,
                             .C = cs.O,
                             .k = cs.k,
                             .sO = T,
                             .sC = cs.C * T,
                             .sT = -1,
                             .eO = T,
                             .eCB = cs.C * T,
                             .eT = -1,
                             .bits = bits};
        od::BfpConvWeight dC = dV;
        dC.values = nullptr;
        dC.mantissas = we0.codes.data<int8_t>() + (T - 1);
        dC.exponents = we0.exponents.data<int16_t>() + (T - 1);
        REQUIRE(OB * cs.C * T == we0.exponents.numel());
        std::vector<float> gxV(cs.N * cs.C * HW), gxC(gxV.size());
        REQUIRE(od::bfpConv2d(gV, dV, block, gxV.data(), isa));
        REQUIRE(od::bfpConv2d(gC, dC, block, gxC.data(), isa));
        CHECK(bitsOf(gxC) == bitsOf(gxV));
      }
    }
  }
}

TEST_CASE("Int8Bfp conv kernel: codes whose block products are not FP32 normals decline") {
  const int64_t C = 16, O = 16, H = 4, W = 5, T = 9;
  const formats::FormatPtr f = formats::parse("hbfp8");
  Rng rng(47);
  Tensor x = mul(Tensor::randn({1, C, H, W}, rng), Tensor::full({1}, 0x1p-60f));
  Tensor w = mul(Tensor::randn({O, C, 3, 3}, rng), Tensor::full({1}, 0x1p-66f));
  const formats::Encoded xe = encodeAlong(f, x, 1), we = encodeAlong(f, w, 1);
  for (od::BfpIsa isa : isas()) {
    const od::BfpConvInput in{.mantissas = xe.codes.data<int8_t>(),
                              .exponents = xe.exponents.data<int16_t>(),
                              .N = 1,
                              .C = C,
                              .H = H,
                              .W = W,
                              .bits = 8};
    const od::BfpConvWeight wt{.mantissas = we.codes.data<int8_t>(),
                               .exponents = we.exponents.data<int16_t>(),
                               .O = O,
                               .C = C,
                               .k = 3,
                               .sO = C * T,
                               .sC = T,
                               .sT = 1,
                               .eO = T,
                               .eCB = T,
                               .eT = 1,
                               .bits = 8};
    std::vector<float> y(O * H * W);
    CHECK_FALSE(od::bfpConv2d(in, wt, 64, y.data(), isa));
  }
}

TEST_CASE("Int8Bfp layers: QuantPoint encodes as it quantizes (values, state, statistics)") {
  // The int8 convolution's operands come from encodeForward / encodeBackward in place of
  // quantizeForward / quantizeBackward: the same stochastic bits (stream, step), the same
  // counters, and decode(codes) the quantized values bit for bit.
  const formats::FormatPtr f = formats::parse("hbfp6:round=stochastic");
  formats::QuantPoint a("layer.error", formats::Role::Activation, formats::Role::Error);
  formats::QuantPoint b("layer.error", formats::Role::Activation, formats::Role::Error);
  for (auto* p : {&a, &b}) {
    p->setFormats(f, f);
    p->setSeed(99);
  }
  Rng rng(5);
  for (int step = 0; step < 3; ++step) {
    Tensor t = Tensor::randn({2, 20, 3, 4}, rng);
    const Tensor qf = a.quantizeForward(t, 1), qb = a.quantizeBackward(t, 1);
    const Tensor ef = f->decode(b.encodeForward(t, 1)), eb = f->decode(b.encodeBackward(t, 1));
    CHECK(bitsOf(qf.toVector()) == bitsOf(ef.toVector()));
    CHECK(bitsOf(qb.toVector()) == bitsOf(eb.toVector()));
    CHECK(bitsOf(qf.toVector()) != bitsOf(qb.toVector()));  // the directions' streams differ
    // Along N, H, W (the weight gradient's operands; blocks straddle images).
    const std::vector<int64_t> nhw{0, 2, 3};
    const Tensor af = a.quantizeForwardAlong(t, nhw), ab = a.quantizeBackwardAlong(t, nhw);
    const Tensor gf = f->decode(b.encodeForwardAlong(t, nhw));
    const Tensor gb = f->decode(b.encodeBackwardAlong(t, nhw));
    CHECK(bitsOf(af.toVector()) == bitsOf(gf.toVector()));
    CHECK(bitsOf(ab.toVector()) == bitsOf(gb.toVector()));
  }
  for (auto [da, db] : {std::pair{&a.forward(), &b.forward()}, {&a.backward(), &b.backward()}}) {
    CHECK(da->calls == 6);
    CHECK(db->calls == da->calls);
    CHECK(db->totalStats.count == da->totalStats.count);
    CHECK(db->totalStats.saturated == da->totalStats.saturated);
    CHECK(db->totalStats.flushed == da->totalStats.flushed);
  }
}

TEST_CASE("Int8Bfp layers: Conv2d on codes declines to the emulation and keeps the bookkeeping") {
  SUBCASE("a forward whose block products are below 2^-126 runs in FP32 on the decoded codes") {
    Rng rng(29);
    nn::Conv2d conv(16, 16, 3, rng, nn::Conv2dOptions{.padding = 1, .bias = false});
    conv.setPolicy(hbfpPolicy("hbfp8"));
    Tensor weight = conv.weight();
    float* w = weight.data<float>();
    for (int64_t i = 0; i < weight.numel(); ++i) w[i] *= 0x1p-40f;
    Tensor x = mul(Tensor::randn({2, 16, 5, 6}, rng), Tensor::full({1}, 0x1p-90f));
    Tensor g = Tensor::randn({2, 16, 5, 6}, rng);
    LayerRun off = runLayer(conv, conv.weight(), x, g, false);
    LayerRun on = runLayer(conv, conv.weight(), x, g, true);
    CHECK(on.stats.inexact == 1);  // forward: |x·w| ~ 2^-130
    CHECK(on.stats.int8 >= 1);     // backward-data: error·w ~ 2^-40
    CHECK(bitsOf(on.y.toVector()) == bitsOf(off.y.toVector()));
  }
  SUBCASE("stochastic rounding: the emulation's operands, the points advance alike") {
    const int64_t N = 2, C = 16, O = 32, H = 6, W = 7, T = 9;
    Rng rng(31);
    Tensor x = Tensor::randn({N, C, H, W}, rng), g = Tensor::randn({N, O, H, W}, rng);
    auto make = [&] {
      Rng init(37);  // fresh layers: the stochastic steps start equal
      auto conv = std::make_shared<nn::Conv2d>(C, O, 3, init,
                                               nn::Conv2dOptions{.padding = 1, .bias = false});
      conv->setPolicy(hbfpPolicy("hbfp6:round=stochastic"));
      return conv;
    };
    auto cOff = make(), cOn = make();
    for (int step = 0; step < 2; ++step) {
      CAPTURE(step);
      LayerRun off = runLayer(*cOff, cOff->weight(), x, g, false);
      LayerRun on = runLayer(*cOn, cOn->weight(), x, g, true);
      CHECK(on.stats.int8 >= 2);
      CHECK(on.stats.inexact == 0);
      // Bound for two summation orders of the same products (Σ|a·b| of the quantized operands
      // within 2x of the FP32 ones for hbfp6); other stochastic bits would be ~1000x off.
      auto xs = toDouble(x), gs = toDouble(g), ws = toDouble(cOff->weight());
      Ref y =
          referenceConv(std::vector<float>(xs.begin(), xs.end()), N, C, H, W, O, 3,
                        [&](int64_t o, int64_t c, int64_t t) { return ws[(o * C + c) * T + t]; });
      Ref gx = referenceConv(
          std::vector<float>(gs.begin(), gs.end()), N, O, H, W, C, 3,
          [&](int64_t c, int64_t o, int64_t t) { return ws[(o * C + c) * T + (T - 1 - t)]; });
      for (auto* r : {&y, &gx}) r->value = std::vector<double>(r->value.size(), 0.0);
      CHECK(worstRatio(sub(on.y, off.y), y, C * T, 4.0) <= 1.0);
      CHECK(worstRatio(sub(on.gx, off.gx), gx, O * T, 4.0) <= 1.0);
      for (auto [pOn, pOff] : {std::pair{cOn->activationPoint(), cOff->activationPoint()},
                               {cOn->weightPoint(), cOff->weightPoint()},
                               {cOn->errorPoint(), cOff->errorPoint()}}) {
        for (auto [dOn, dOff] : {std::pair{&pOn->forward(), &pOff->forward()},
                                 {&pOn->backward(), &pOff->backward()}}) {
          CHECK(dOn->calls == dOff->calls);
          CHECK(dOn->totalStats.count == dOff->totalStats.count);
          CHECK(dOn->totalStats.saturated == dOff->totalStats.saturated);
          CHECK(dOn->totalStats.flushed == dOff->totalStats.flushed);
        }
      }
    }
    CHECK(cOn->errorPoint()->backward().calls == 4);  // two backward GEMMs a step
  }
}

TEST_CASE("Int8Bfp kernel: bfpGemm on codes gives the bits of the recovery from the values") {
  // Row-major operands (blocks along rows) and transposed ones (the lane paths), hbfp8 and
  // hbfp4, partial blocks, zero blocks and blocks whose mantissas all round to zero.
  const formats::FormatPtr f8 = formats::parse("hbfp8"), f4 = formats::parse("hbfp4:block=16");
  for (const auto& [f, bits, block] : {std::tuple{f8, 8, int64_t{64}}, {f4, 4, int64_t{16}}}) {
    const int64_t M = 37, N = 21, K = 150, KB = (K + block - 1) / block;
    Rng rng(53);
    Tensor a = Tensor::randn({M, K}, rng), at = Tensor::randn({K, M}, rng);
    Tensor bt = Tensor::randn({K, N}, rng);
    for (int64_t k = 0; k < K; ++k) {
      a.data<float>()[3 * K + k] = 0.0f;        // a zero row: zero blocks
      a.data<float>()[5 * K + k] *= 0x1p-140f;  // mantissas all rounded to zero
      bt.data<float>()[k * N + 2] *= 0x1p-140f;
    }
    const formats::Encoded ae = encodeAlong(f, a, 1), ate = encodeAlong(f, at, 0),
                           bte = encodeAlong(f, bt, 0);
    const Tensor av = f->decode(ae), atv = f->decode(ate), btv = f->decode(bte);
    // A row-major [M, K]; A transposed [K, M]; B transposed [K, N] (columns n).
    auto rowsA = [&](bool codes) {
      od::BfpSource s{.rows1 = M, .segLen = K, .s1 = K, .sk = 1, .bits = bits};
      if (codes) {
        s.mantissas = ae.codes.data<int8_t>(), s.exponents = ae.exponents.data<int16_t>();
        s.e1 = KB, s.eb = 1;
      } else {
        s.values = av.data<float>();
      }
      return s;
    };
    auto colsA = [&](bool codes) {
      od::BfpSource s{.rows1 = M, .segLen = K, .s1 = 1, .sk = M, .bits = bits};
      if (codes) {
        s.mantissas = ate.codes.data<int8_t>(), s.exponents = ate.exponents.data<int16_t>();
        s.e1 = 1, s.eb = M;
      } else {
        s.values = atv.data<float>();
      }
      return s;
    };
    auto colsB = [&](bool codes) {
      od::BfpSource s{.rows1 = N, .segLen = K, .s1 = 1, .sk = N, .bits = bits};
      if (codes) {
        s.mantissas = bte.codes.data<int8_t>(), s.exponents = bte.exponents.data<int16_t>();
        s.e1 = 1, s.eb = N;
      } else {
        s.values = btv.data<float>();
      }
      return s;
    };
    for (od::BfpIsa isa : isas()) {
      CAPTURE(bits);
      CAPTURE(static_cast<int>(isa));
      for (int layout = 0; layout < 2; ++layout) {
        auto A = [&](bool codes) { return layout == 0 ? rowsA(codes) : colsA(codes); };
        std::vector<float> cv(M * N), cc(M * N);
        REQUIRE(od::bfpGemm(A(false), colsB(false), block, cv.data(), N, isa));
        REQUIRE(od::bfpGemm(A(true), colsB(true), block, cc.data(), N, isa));
        CHECK(bitsOf(cc) == bitsOf(cv));
        // B row-major: A's rows as B (N = M).
        std::vector<float> dv(M * M), dc(M * M);
        REQUIRE(od::bfpGemm(A(false), rowsA(false), block, dv.data(), M, isa));
        REQUIRE(od::bfpGemm(A(true), rowsA(true), block, dc.data(), M, isa));
        CHECK(bitsOf(dc) == bitsOf(dv));
      }
    }
  }
}
