#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cfloat>
#include <cmath>
#include <vector>

#include "core/Error.h"
#include "core/Rng.h"
#include "formats/Hbfp.h"
#include "formats/detail/HbfpKernels.h"

// HBFP blocked along several axes at once (the weight-gradient GEMM of a convolution blocks
// x[N, C, H, W] along N, H, W per channel), read in place. The expected values come from an
// explicit gather into a [rows, length] matrix quantized along its last axis and scattered back,
// which is what the layers did before (permute, contiguous copy, block, permute back).

using namespace mantissa;
using namespace mantissa::formats;
namespace fd = mantissa::formats::detail;

namespace {

std::vector<float> values(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    v[i] = rng.normal() * std::ldexp(1.0f, static_cast<int>(rng.uniformInt(24)) - 12);
    if (i % 23 == 0) v[i] = 0.0f;
    if (i % 37 == 0) v[i] = std::ldexp(1.0f, static_cast<int>(rng.uniformInt(10)) - 5);
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

/// Row-major multi-index of flat index i in `shape`.
std::vector<int64_t> unravel(int64_t i, const Shape& shape) {
  std::vector<int64_t> idx(shape.size());
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    idx[d] = i % shape[d];
    i /= shape[d];
  }
  return idx;
}

/// For each element of the [kept..., axes...] order (kept axes ascending, then `axes` in the
/// given order), its flat index in the row-major tensor of `shape`.
std::vector<int64_t> movedOrder(const Shape& shape, const std::vector<int64_t>& axes) {
  std::vector<int64_t> perm;
  for (int64_t d = 0; d < static_cast<int64_t>(shape.size()); ++d) {
    if (std::find(axes.begin(), axes.end(), d) == axes.end()) perm.push_back(d);
  }
  perm.insert(perm.end(), axes.begin(), axes.end());
  Shape moved;
  for (int64_t d : perm) moved.push_back(shape[d]);
  std::vector<int64_t> src(static_cast<size_t>(numelOf(shape)));
  for (int64_t j = 0; j < numelOf(shape); ++j) {
    std::vector<int64_t> mi = unravel(j, moved), si(shape.size());
    for (size_t k = 0; k < perm.size(); ++k) si[perm[k]] = mi[k];
    int64_t flat = 0;
    for (size_t d = 0; d < shape.size(); ++d) flat = flat * shape[d] + si[d];
    src[j] = flat;
  }
  return src;
}

struct Case {
  Shape shape;
  std::vector<int64_t> axes;
};

}  // namespace

TEST_CASE("HBFP: gathered kernel equals blocking the gathered copy along its last axis") {
  // (rows, rowStride, segments, segment, segmentStride) of x[N, C, H, W] along (N, H, W):
  // segments shorter than a block (7x7 = 49 < 64), longer and not a multiple of 16, one row;
  // and ResNet-sized ones of several work chunks (each chunk starts mid-way through the lines).
  struct Geo {
    int64_t n, c, hw;
  };
  for (Geo g : {Geo{5, 3, 49}, Geo{3, 2, 90}, Geo{4, 1, 16}, Geo{2, 5, 1}, Geo{7, 2, 130},
                Geo{40, 64, 49}, Geo{9, 16, 784}, Geo{5, 16, 1024}}) {
    const int64_t total = g.n * g.c * g.hw, len = g.n * g.hw;
    fd::HbfpGatherLayout L{.rows = g.c, .rowStride = g.hw, .segments = g.n, .segment = g.hw,
                           .segmentStride = g.c * g.hw, .block = 64};
    std::vector<float> x = values(total, static_cast<uint64_t>(total));
    // The gathered [C, N*H*W] matrix and where each of its elements lives in x.
    std::vector<int64_t> at(static_cast<size_t>(total));
    for (int64_t r = 0; r < g.c; ++r) {
      for (int64_t k = 0; k < len; ++k) at[r * len + k] = (k / g.hw) * g.c * g.hw + r * g.hw + k % g.hw;
    }
    std::vector<float> gathered(static_cast<size_t>(total));
    for (int64_t j = 0; j < total; ++j) gathered[j] = x[at[j]];
    for (int bits : {8, 4}) {
      for (Rounding rounding : {Rounding::NearestEven, Rounding::Stochastic}) {
        for (int64_t block : {int64_t{64}, int64_t{16}, int64_t{5}}) {
          L.block = block;
          fd::HbfpParams p{bits, rounding, 11, 22, 33};
          fd::HbfpLayout rowsLayout{.outer = g.c, .axis = len, .inner = 1, .block = block};
          std::vector<float> ref(static_cast<size_t>(total)), expected(static_cast<size_t>(total));
          fd::HbfpPass want = fd::hbfpQuantize(gathered.data(), ref.data(), nullptr, rowsLayout, p,
                                               fd::KernelIsa::Generic);
          for (int64_t j = 0; j < total; ++j) expected[at[j]] = ref[j];
          for (fd::KernelIsa isa : isas()) {
            CAPTURE(g.n);
            CAPTURE(g.hw);
            CAPTURE(bits);
            CAPTURE(block);
            CAPTURE(static_cast<int>(rounding));
            CAPTURE(fd::kernelIsaName(isa));
            std::vector<float> out(static_cast<size_t>(total), NAN);
            fd::HbfpPass got = fd::hbfpQuantizeGathered(x.data(), out.data(), nullptr, L, p, isa);
            CHECK(sameBits(out, expected));
            CHECK(got.saturated == want.saturated);
            CHECK(got.flushed == want.flushed);
            CHECK(got.nonFinite == 0);
            // Codes and exponents: those of the gathered copy, scattered back.
            std::vector<int8_t> refCodes(static_cast<size_t>(total)), codes(refCodes.size());
            std::vector<int16_t> refExps(static_cast<size_t>(g.c * L.numBlocks())),
                exps(refExps.size(), INT16_MIN);
            fd::hbfpQuantize(gathered.data(), refCodes.data(), refExps.data(), rowsLayout, p,
                             fd::KernelIsa::Generic);
            fd::HbfpPass gotCodes =
                fd::hbfpQuantizeGathered(x.data(), codes.data(), exps.data(), L, p, isa);
            bool same = true;
            for (int64_t j = 0; j < total; ++j) same = same && codes[at[j]] == refCodes[j];
            CHECK(same);
            CHECK(exps == refExps);
            CHECK(gotCodes.saturated == want.saturated);
            CHECK(gotCodes.flushed == want.flushed);
          }
        }
      }
    }
  }
}

TEST_CASE("HBFP: int8 codes on blocks of 64 equal the generic kernel's") {
  // The AVX-512 int8 path with nearest rounding (blocks inside one run or spanning runs of 784,
  // 196 and 49 values, the last-axis layout):
  // codes, exponents and counts against the scalar kernel, widths 2..8, with blocks of zeros,
  // of ReLU output, at e = 128 (FLT_MAX), of subnormals (two-factor scaling) and with
  // power-of-two maxima (saturation). [400, 3, 192] and [700, 2, 49]: chunks start
  // inside a line and a run.
  struct Geo {
    int64_t n, c, hw;
  };
  for (Geo g : {Geo{3, 5, 64}, Geo{2, 4, 256}, Geo{2, 3, 1024}, Geo{400, 3, 192}, Geo{3, 4, 784},
                Geo{5, 3, 196}, Geo{40, 3, 49}, Geo{700, 2, 49}}) {
    const int64_t total = g.n * g.c * g.hw;
    std::vector<float> x = values(total, static_cast<uint64_t>(total) + 7);
    for (int64_t i = 0; i < 64; ++i) x[i] = 0.0f;
    for (int64_t i = 64; i < 128; ++i) x[i] = i % 2 ? (i % 3 ? FLT_MAX : -0.3f * FLT_MAX) : 1.0f;
    for (int64_t i = 128; i < 192; ++i) x[i] = std::ldexp(static_cast<float>(i - 150), -140);
    for (int64_t i = 192; i < 256; ++i) x[i] = std::max(x[i], 0.0f);
    for (int64_t i = 256; i < 320; ++i) x[i] = i == 300 ? -2.0f : std::ldexp(x[i], -8);
    fd::HbfpGatherLayout G{.rows = g.c,
                           .rowStride = g.hw,
                           .segments = g.n,
                           .segment = g.hw,
                           .segmentStride = g.c * g.hw,
                           .block = 64};
    fd::HbfpLayout R{.outer = g.n * g.c, .axis = g.hw, .inner = 1, .block = 64};
    for (int bits = 2; bits <= 8; ++bits) {
      fd::HbfpParams p{bits, Rounding::NearestEven, 1, 2, 3};
      for (bool gathered : {true, false}) {
        auto run = [&](fd::KernelIsa isa, std::vector<int8_t>& codes, std::vector<int16_t>& exps) {
          codes.assign(static_cast<size_t>(total), 99);
          exps.assign(
              static_cast<size_t>(gathered ? g.c * G.numBlocks() : g.n * g.c * R.numBlocks()),
              INT16_MIN);
          return gathered ? fd::hbfpQuantizeGathered(x.data(), codes.data(), exps.data(), G, p, isa)
                          : fd::hbfpQuantize(x.data(), codes.data(), exps.data(), R, p, isa);
        };
        std::vector<int8_t> refCodes, codes;
        std::vector<int16_t> refExps, exps;
        const fd::HbfpPass want = run(fd::KernelIsa::Generic, refCodes, refExps);
        CHECK(want.saturated > 0);
        CHECK(want.flushed > 0);
        for (fd::KernelIsa isa : isas()) {
          CAPTURE(g.hw);
          CAPTURE(bits);
          CAPTURE(gathered);
          CAPTURE(fd::kernelIsaName(isa));
          const fd::HbfpPass got = run(isa, codes, exps);
          CHECK(codes == refCodes);
          CHECK(exps == refExps);
          CHECK(got.saturated == want.saturated);
          CHECK(got.flushed == want.flushed);
          CHECK(got.nonFinite == 0);
        }
      }
    }
  }
}

TEST_CASE("HBFP: gathered kernel counts non-finite inputs and leaves other positions alone") {
  // Two rows of a [2, 3, 10] tensor blocked along (0, 2) of rows 0 and 2 only: rowStride 20
  // skips row 1 of the middle axis, whose values must stay untouched.
  std::vector<float> x = values(60, 5);
  x[7] = INFINITY;
  x[52] = NAN;
  for (fd::KernelIsa isa : isas()) {
    fd::HbfpGatherLayout L{.rows = 2, .rowStride = 20, .segments = 2, .segment = 10,
                           .segmentStride = 30, .block = 8};
    std::vector<float> out(60, 7.0f);
    fd::HbfpPass r = fd::hbfpQuantizeGathered(x.data(), out.data(), nullptr, L, {}, isa);
    CHECK(r.nonFinite == 2);
    for (int64_t i = 10; i < 20; ++i) CHECK(out[i] == 7.0f);
    for (int64_t i = 40; i < 50; ++i) CHECK(out[i] == 7.0f);
  }
}

TEST_CASE("HBFP: quantize with several block axes equals quantizing the moved copy") {
  // In-place layouts (NCHW along N,H,W; the 5-D grouped view of Conv2d) and layouts that take
  // the copying path (axes in another order, kept axes that do not merge).
  std::vector<Case> cases{{{6, 3, 7, 7}, {0, 2, 3}},    {{4, 1, 5, 9, 9}, {0, 3, 4}},
                          {{3, 4, 2, 5}, {0, 2, 3}},    {{5, 6, 1, 1}, {0, 2, 3}},
                          {{3, 4, 5, 6}, {3, 0}},       {{3, 4, 5, 6}, {1, 3}},
                          {{2, 3, 4, 5}, {-1, -2}},     {{0, 3, 4, 4}, {0, 2, 3}}};
  for (const char* spec : {"hbfp8", "hbfp4:block=16", "hbfp6:round=stochastic"}) {
    FormatPtr f = parse(spec);
    for (const Case& c : cases) {
      CAPTURE(spec);
      CAPTURE(toString(c.shape));
      const int64_t n = numelOf(c.shape);
      std::vector<float> v = values(n, static_cast<uint64_t>(n) + 3);
      Tensor x = Tensor::fromVector(v, c.shape);
      std::vector<int64_t> axes;
      int64_t len = 1;
      for (int64_t a : c.axes) {
        axes.push_back(a < 0 ? a + static_cast<int64_t>(c.shape.size()) : a);
        len *= c.shape[axes.back()];
      }
      std::vector<int64_t> src = movedOrder(c.shape, axes);
      std::vector<float> moved(static_cast<size_t>(n));
      for (int64_t j = 0; j < n; ++j) moved[j] = v[src[j]];
      QuantStats wantStats, gotStats;
      QuantizeArgs ref{.blockAxis = -1, .seed = 9, .stream = 8, .step = 7, .stats = &wantStats};
      Tensor q = f->quantize(Tensor::fromVector(moved, {len == 0 ? 0 : n / len, len}), ref);
      std::vector<float> qv = q.toVector<float>(), expected(static_cast<size_t>(n));
      for (int64_t j = 0; j < n; ++j) expected[src[j]] = qv[j];
      QuantizeArgs args{.blockAxes = c.axes, .seed = 9, .stream = 8, .step = 7, .stats = &gotStats};
      Tensor got = f->quantize(x, args);
      CHECK(got.shape() == c.shape);
      CHECK(sameBits(got.toVector<float>(), expected));
      CHECK(gotStats.count == wantStats.count);
      CHECK(gotStats.saturated == wantStats.saturated);
      CHECK(gotStats.flushed == wantStats.flushed);
    }
  }
}

TEST_CASE(
    "HBFP: encode with several block axes - decode equals quantize, codes of the moved copy") {
  // N,H,W blocks with blocks straddling images (7x7, 9x9 and 5x2 planes against blocks of 64 and
  // 16), partial last blocks, the copying layouts, an empty tensor; I8, I16 and I32 codes.
  std::vector<Case> cases{
      {{6, 3, 7, 7}, {0, 2, 3}}, {{4, 1, 5, 9, 9}, {0, 3, 4}}, {{3, 4, 2, 5}, {0, 2, 3}},
      {{5, 6, 1, 1}, {0, 2, 3}}, {{3, 4, 5, 6}, {3, 0}},       {{3, 4, 5, 6}, {1, 3}},
      {{2, 3, 4, 5}, {-1, -2}},  {{0, 3, 4, 4}, {0, 2, 3}},    {{3, 2, 5, 6}, {0, 1, 2, 3}}};
  for (const char* spec : {"hbfp8", "hbfp4:block=16", "hbfp6:round=stochastic",
                           "hbfp8:round=stochastic", "hbfp12", "hbfp20:block=7"}) {
    FormatPtr f = parse(spec);
    const int bits = std::static_pointer_cast<const Hbfp>(f)->options().bits;
    for (const Case& c : cases) {
      CAPTURE(spec);
      CAPTURE(toString(c.shape));
      const int64_t n = numelOf(c.shape);
      std::vector<float> v = values(n, static_cast<uint64_t>(n) + 5);
      if (n > 40) v[40] = 1e30f;  // a saturating block
      Tensor x = Tensor::fromVector(v, c.shape);
      std::vector<int64_t> axes;
      int64_t len = 1;
      for (int64_t a : c.axes) {
        axes.push_back(a < 0 ? a + static_cast<int64_t>(c.shape.size()) : a);
        len *= c.shape[axes.back()];
      }
      QuantStats qStats, eStats, mStats;
      QuantizeArgs qa{.blockAxes = c.axes, .seed = 9, .stream = 8, .step = 7, .stats = &qStats};
      Tensor q = f->quantize(x, qa);
      QuantizeArgs ea = qa;
      ea.stats = &eStats;
      Encoded e = f->encode(x, ea);
      CHECK(e.blockAxes == axes);
      CHECK(e.codes.shape() == c.shape);
      CHECK(sameBits(f->decode(e).toVector<float>(), q.toVector<float>()));
      CHECK(eStats.count == qStats.count);
      CHECK(eStats.saturated == qStats.saturated);
      CHECK(eStats.flushed == qStats.flushed);
      // The codes and exponents of the moved copy [kept, length] encoded along its last axis.
      std::vector<int64_t> src = movedOrder(c.shape, axes);
      std::vector<float> moved(static_cast<size_t>(n));
      for (int64_t j = 0; j < n; ++j) moved[j] = v[src[j]];
      const int64_t rows = len == 0 ? 0 : n / len;
      QuantizeArgs ma{.blockAxis = -1, .seed = 9, .stream = 8, .step = 7, .stats = &mStats};
      Encoded m = f->encode(Tensor::fromVector(moved, {rows, len}), ma);
      Shape expShape;
      for (int64_t d = 0; d < static_cast<int64_t>(c.shape.size()); ++d) {
        if (std::find(axes.begin(), axes.end(), d) == axes.end()) expShape.push_back(c.shape[d]);
      }
      expShape.push_back(m.exponents.shape().back());
      CHECK(e.exponents.shape() == expShape);
      CHECK(e.exponents.contiguous().toVector<int16_t>() == m.exponents.toVector<int16_t>());
      Tensor ec = e.codes.to(DType::I32), mc = m.codes.to(DType::I32);
      std::vector<int32_t> got = ec.toVector<int32_t>(), ref = mc.toVector<int32_t>();
      bool same = got.size() == ref.size();
      for (int64_t j = 0; same && j < n; ++j) same = got[src[j]] == ref[j];
      CHECK(same);
      CHECK(e.codes.dtype() == (bits <= 8 ? DType::I8 : bits <= 16 ? DType::I16 : DType::I32));
    }
  }
}

TEST_CASE("HBFP: several block axes - bad input") {
  FormatPtr f = parse("hbfp8");
  Tensor x = Tensor::fromVector(values(24, 1), {2, 3, 4});
  std::vector<int64_t> twice{0, 2, 0}, outside{0, 3};
  CHECK_THROWS_WITH_AS(f->quantize(x, {.blockAxes = twice}), doctest::Contains("given twice"),
                       Error);
  CHECK_THROWS_AS(f->quantize(x, {.blockAxes = outside}), Error);
  std::vector<int64_t> two{0, 2};
  CHECK_THROWS_WITH_AS(f->encode(x, {.blockAxes = twice}), doctest::Contains("given twice"), Error);
  Tensor bad = Tensor::fromVector({1.0f, NAN, 2.0f, 3.0f}, {2, 1, 2});
  CHECK_THROWS_WITH_AS(f->quantize(bad, {.blockAxes = two, .pointName = "conv1.activation"}),
                       doctest::Contains("conv1.activation"), Error);
  CHECK_THROWS_WITH_AS(f->encode(bad, {.blockAxes = two, .pointName = "conv1.activation"}),
                       doctest::Contains("non-finite"), Error);
}
