// The bf16 GEMM path of the dot-product layers (docs/ops.md "bf16 GEMM path"): with operands
// quantized to formats of at most 8 significant bits, the three GEMMs of Conv2d,
// ConvTranspose2d and Linear run on bf16 primitives and must give the FP32 emulation's result
// up to FP32 summation order. Both paths are checked against a double-precision reference built
// from independently quantized operands (hbfpReference for HBFP; the elementwise formats are
// tested exhaustively in tests/formats).
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "LayerTestUtil.h"
#include "core/ops/Linalg.h"
#include "core/ops/detail/Bf16.h"
#include "formats/Format.h"
#include "formats/Policy.h"
#include "layers/Conv2d.h"
#include "layers/ConvTranspose2d.h"
#include "layers/Linear.h"

using namespace mantissa;
using formats::FormatPolicy;

namespace {

/// Sets the process-wide bf16 switch for one scope, with the int8 block-FP path off (it takes
/// precedence over the bf16 path for HBFP operands and is on by default on VNNI CPUs; this file
/// tests the bf16 path, Int8Bfp*Test.cpp the int8 one).
class PathSwitch {
 public:
  explicit PathSwitch(bool on) : saved_(bf16GemmEnabled()), savedInt8_(int8BfpEnabled()) {
    setBf16GemmEnabled(on);
    setInt8BfpEnabled(false);
    resetBf16GemmStats();
  }
  ~PathSwitch() {
    setBf16GemmEnabled(saved_);
    setInt8BfpEnabled(savedInt8_);
  }

 private:
  bool saved_, savedInt8_;
};

struct Formats {
  std::string weight, activation, error;
};

FormatPolicy policyOf(const Formats& f) {
  FormatPolicy p = FormatPolicy::fp32();
  p.weight = formats::parse(f.weight);
  p.activation = formats::parse(f.activation);
  p.error = formats::parse(f.error);
  return p;
}

/// What the layer's quantizer must produce for `t` viewed as `view`, blocked along `axes`.
std::vector<double> quantRef(const std::string& spec, const Tensor& t, const Shape& view,
                             const std::vector<int64_t>& axes) {
  Tensor q;
  if (spec.rfind("hbfp", 0) == 0) {
    q = testing::hbfpReference(t.reshape(view), axes, std::stoi(spec.substr(4)));
  } else {
    q = formats::parse(spec)->quantize(t.detach().contiguous(), formats::QuantizeArgs{});
  }
  std::vector<float> v = q.toVector();
  return {v.begin(), v.end()};
}

/// A convolution in the conv sense: big [n, cin, h, w] (conv input), weight [cout, cin/g, k, k],
/// small [n, cout, oh, ow] (conv output). A ConvTranspose2d is the conv from its output (big)
/// to its input (small) with the same weight tensor; a Linear is the 1x1 case.
struct Geo {
  int64_t n, g, cin, cout, h, w, k, s, p, d, oh, ow;
};

enum class Slot { Big, Weight, Small };

/// Σ a·b over the conv's terms into the `out` slot, in double, with Σ|a·b| and the number of
/// terms per output element (the bound of any FP32 summation order needs both).
struct RefGemm {
  std::vector<double> value, absSum, terms;
};

RefGemm naive(const Geo& q, const std::vector<double>& a, Slot sa, const std::vector<double>& b,
              Slot sb, Slot out) {
  const int64_t cinG = q.cin / q.g, coutG = q.cout / q.g;
  const int64_t sizes[3] = {q.n * q.cin * q.h * q.w, q.cout * cinG * q.k * q.k,
                            q.n * q.cout * q.oh * q.ow};
  const int64_t no = sizes[static_cast<int>(out)];
  RefGemm r{std::vector<double>(no, 0), std::vector<double>(no, 0), std::vector<double>(no, 0)};
  for (int64_t n = 0; n < q.n; ++n)
    for (int64_t co = 0; co < q.cout; ++co)
      for (int64_t oy = 0; oy < q.oh; ++oy)
        for (int64_t ox = 0; ox < q.ow; ++ox)
          for (int64_t c = 0; c < cinG; ++c)
            for (int64_t ky = 0; ky < q.k; ++ky)
              for (int64_t kx = 0; kx < q.k; ++kx) {
                const int64_t iy = oy * q.s - q.p + ky * q.d, ix = ox * q.s - q.p + kx * q.d;
                if (iy < 0 || iy >= q.h || ix < 0 || ix >= q.w) continue;
                const int64_t ci = co / coutG * cinG + c;
                const int64_t idx[3] = {((n * q.cin + ci) * q.h + iy) * q.w + ix,
                                        ((co * cinG + c) * q.k + ky) * q.k + kx,
                                        ((n * q.cout + co) * q.oh + oy) * q.ow + ox};
                const double prod = a[idx[static_cast<int>(sa)]] * b[idx[static_cast<int>(sb)]];
                const int64_t o = idx[static_cast<int>(out)];
                r.value[o] += prod;
                r.absSum[o] += std::fabs(prod);
                r.terms[o] += 1;
              }
  return r;
}

/// Every element within the worst-case error of FP32 summation in any order: products of two
/// bf16 values are exact in FP32, and a sum of K exact terms in any order is within
/// (K - 1)·u·Σ|terms| of the exact sum (u = 2^-24, Higham's γ bound to first order); one more
/// u·|sum| for the final rounding. K is at most 9·80 = 720 here (forward of the first case; the
/// backward-weights GEMMs reduce over N·H'·W' <= 400), so the bound is at most 4.3e-5·Σ|terms|:
/// about 50x below one bf16 rounding of an operand (2^-9), so operands that reached the kernel
/// rounded, misplaced or in the wrong layout cannot pass (the fp16 case below shows it).
double worstRatio(const Tensor& got, const RefGemm& ref) {
  std::vector<float> v = got.contiguous().toVector();
  REQUIRE(v.size() == ref.value.size());
  double worst = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    const double bound = (ref.terms[i] + 1) * std::ldexp(1.0, -24) * ref.absSum[i] + 1e-30;
    worst = std::max(worst, std::fabs(v[i] - ref.value[i]) / bound);
  }
  return worst;
}

void checkWithin(const Tensor& got, const RefGemm& ref, const char* what) {
  CAPTURE(what);
  CHECK(worstRatio(got, ref) <= 1.0);
}

enum class Kind { Conv, Deconv, Fc };

struct Case {
  const char* name;
  Kind kind;
  int64_t n, cin, cout, h, k = 1, stride = 1, pad = 0, dil = 1, groups = 1, outPad = 0;
};

/// A layer, its views and blocking axes (FORMATS.md A.3, as in the layers' Gemms) and the
/// conv-sense geometry of the reference.
struct Setup {
  std::shared_ptr<nn::DotProductLayer> layer;
  Tensor weight;
  Shape xShape, xView, wView, yView;
  std::vector<int64_t> xFwd, xWgt, wFwd, wData, eData, eWgt;
};

Setup makeSetup(const Case& c, Rng& rng) {
  Setup s;
  const int64_t G = c.groups;
  if (c.kind == Kind::Fc) {
    auto fc = std::make_shared<nn::Linear>(c.cin, c.cout, rng, nn::LinearOptions{.bias = false});
    s.layer = fc;
    s.weight = fc->weight();
    s.xShape = {c.n, c.cin};
    s.xView = s.xShape;
    s.wView = {c.cout, c.cin};
    s.yView = {c.n, c.cout};
    s.xFwd = {1}, s.xWgt = {0}, s.wFwd = {1}, s.wData = {0}, s.eData = {1}, s.eWgt = {0};
    return s;
  }
  s.xShape = {c.n, c.cin, c.h, c.h};
  s.xView = {c.n, G, c.cin / G, c.h, c.h};
  s.xFwd = {2}, s.xWgt = {0, 3, 4}, s.eData = {2}, s.eWgt = {0, 3, 4};
  if (c.kind == Kind::Conv) {
    auto conv = std::make_shared<nn::Conv2d>(
        c.cin, c.cout, c.k, rng,
        nn::Conv2dOptions{.stride = c.stride, .padding = c.pad, .dilation = c.dil,
                          .groups = c.groups, .bias = false});
    s.layer = conv;
    s.weight = conv->weight();
    s.wView = {G, c.cout / G, c.cin / G, c.k, c.k};
    s.wFwd = {2}, s.wData = {1};
  } else {
    auto deconv = std::make_shared<nn::ConvTranspose2d>(
        c.cin, c.cout, c.k, rng,
        nn::ConvTranspose2dOptions{.stride = c.stride, .padding = c.pad, .outputPadding = c.outPad,
                                   .dilation = c.dil, .groups = c.groups, .bias = false});
    s.layer = deconv;
    s.weight = deconv->weight();
    s.wView = {G, c.cin / G, c.cout / G, c.k, c.k};
    s.wFwd = {1}, s.wData = {2};
  }
  return s;
}

Shape outputShape(Setup& s, const Tensor& x) {
  autograd::NoGradGuard guard;
  return s.layer->forward(x).shape();
}

/// Whether this CPU runs the path at all (VDPBF16PS); the tests say so and pass trivially if not.
bool cpuHasBf16() {
  PathSwitch probe(true);
  if (bf16GemmEnabled()) return true;
  MESSAGE("CPU without AVX-512 BF16: the bf16 GEMM path is never taken");
  return false;
}

struct Outcome {
  Tensor y, gx, gw;
  Bf16GemmStats stats;
};

Outcome runLayer(Setup& s, const Tensor& x, const Tensor& g, bool on) {
  PathSwitch sw(on);
  s.layer->zeroGrad();
  Tensor xx = x.detach().clone();
  xx.requiresGrad();
  Outcome o;
  o.y = s.layer->forward(xx);
  o.y.backward({.grad = g});
  o.gx = xx.grad();
  o.gw = s.weight.grad();
  o.stats = bf16GemmStats();
  return o;
}

/// Reference results of the three GEMMs from independently quantized operands.
struct Reference {
  RefGemm y, gx, gw;
};

Reference reference(const Case& c, const Setup& s, const Formats& f, const Tensor& x,
                    const Tensor& g, const Shape& yShape) {
  const Tensor w = s.weight.detach();
  Shape yView = s.yView;
  if (c.kind != Kind::Fc) yView = {c.n, c.groups, c.cout / c.groups, yShape[2], yShape[3]};
  auto xF = quantRef(f.activation, x, s.xView, s.xFwd);
  auto xW = quantRef(f.activation, x, s.xView, s.xWgt);
  auto wF = quantRef(f.weight, w, s.wView, s.wFwd);
  auto wD = quantRef(f.weight, w, s.wView, s.wData);
  auto eD = quantRef(f.error, g, yView, s.eData);
  auto eW = quantRef(f.error, g, yView, s.eWgt);
  Reference r;
  if (c.kind == Kind::Deconv) {
    // Conv sense: big = the deconv's output, small = its input, cin/cout swapped.
    Geo q{c.n, c.groups, c.cout, c.cin, yShape[2], yShape[3], c.k, c.stride, c.pad, c.dil,
          c.h, c.h};
    r.y = naive(q, xF, Slot::Small, wF, Slot::Weight, Slot::Big);
    r.gx = naive(q, eD, Slot::Big, wD, Slot::Weight, Slot::Small);
    r.gw = naive(q, eW, Slot::Big, xW, Slot::Small, Slot::Weight);
  } else {
    Geo q = c.kind == Kind::Fc
                ? Geo{c.n, 1, c.cin, c.cout, 1, 1, 1, 1, 0, 1, 1, 1}
                : Geo{c.n, c.groups, c.cin, c.cout, c.h, c.h, c.k, c.stride, c.pad, c.dil,
                      yShape[2], yShape[3]};
    r.y = naive(q, xF, Slot::Big, wF, Slot::Weight, Slot::Small);
    r.gx = naive(q, eD, Slot::Small, wD, Slot::Weight, Slot::Big);
    r.gw = naive(q, xW, Slot::Big, eW, Slot::Small, Slot::Weight);
  }
  return r;
}

const Case kCases[] = {
    {.name = "conv 80->16 3x3 pad 1 (a full and a partial HBFP block)", .kind = Kind::Conv,
     .n = 2, .cin = 80, .cout = 8, .h = 6, .k = 3, .pad = 1},
    {.name = "conv 16->32 3x3 stride 2 pad 1 groups 2", .kind = Kind::Conv, .n = 3, .cin = 16,
     .cout = 32, .h = 7, .k = 3, .stride = 2, .pad = 1, .groups = 2},
    {.name = "conv 1->16 3x3 pad 1 (first layer)", .kind = Kind::Conv, .n = 4, .cin = 1,
     .cout = 16, .h = 10, .k = 3, .pad = 1},
    {.name = "conv 32->32 1x1 stride 2", .kind = Kind::Conv, .n = 2, .cin = 32, .cout = 32,
     .h = 8, .k = 1, .stride = 2},
    {.name = "conv 16->16 3x3 dilation 2 groups 4", .kind = Kind::Conv, .n = 2, .cin = 16,
     .cout = 16, .h = 9, .k = 3, .pad = 2, .dil = 2, .groups = 4},
    {.name = "deconv 16->8 4x4 stride 2 pad 1", .kind = Kind::Deconv, .n = 2, .cin = 16,
     .cout = 8, .h = 5, .k = 4, .stride = 2, .pad = 1},
    {.name = "deconv 16->16 3x3 stride 2 pad 1 output pad 1 groups 2", .kind = Kind::Deconv,
     .n = 2, .cin = 16, .cout = 16, .h = 4, .k = 3, .stride = 2, .pad = 1, .groups = 2,
     .outPad = 1},
    {.name = "linear 100->20, batch 70", .kind = Kind::Fc, .n = 70, .cin = 100, .cout = 20,
     .h = 1},
};

const Formats kExact[] = {
    {"hbfp8", "hbfp8", "hbfp8"},
    {"hbfp4", "hbfp4", "hbfp4"},
    {"e4m3", "e4m3", "e5m2"},
    {"e5m2", "e5m2", "e5m2"},
    {"ffp8:e=4,f=3,b=7,s=1", "ffp8:e=4,f=3,b=7,s=1", "ffp8:e=5,f=2,b=15,s=1"},
    {"ffp8:e=2,f=5,b=1,s=1", "ffp8:e=3,f=4,b=3,s=1", "ffp8:e=4,f=3,b=7,s=1"},
    {"bf16", "bf16", "bf16"},
};

}  // namespace

TEST_CASE("Bf16Gemm: the three GEMMs of conv, transposed conv and linear equal the FP32 path") {
  if (!cpuHasBf16()) return;
  for (const Case& c : kCases) {
    for (const Formats& f : kExact) {
      CAPTURE(c.name);
      CAPTURE(f.activation);
      Rng rng(11);
      Setup s = makeSetup(c, rng);
      s.layer->setPolicy(policyOf(f));
      Tensor x = Tensor::randn(s.xShape, rng);
      Tensor g = Tensor::randn(outputShape(s, x), rng);
      Outcome off = runLayer(s, x, g, false);
      Outcome on = runLayer(s, x, g, true);
      CHECK(off.stats.bf16 == 0);
      // Every GEMM ran on bf16 (or, where oneDNN has only a reference bf16 kernel, was widened).
      CHECK(on.stats.bf16 + on.stats.noKernel == 3);
      CHECK(on.stats.inexact == 0);
      Reference r = reference(c, s, f, x, g, off.y.shape());
      checkWithin(on.y, r.y, "forward, bf16 path");
      checkWithin(on.gx, r.gx, "backward-data, bf16 path");
      checkWithin(on.gw, r.gw, "backward-weights, bf16 path");
      checkWithin(off.y, r.y, "forward, FP32 path");
      checkWithin(off.gx, r.gx, "backward-data, FP32 path");
      checkWithin(off.gw, r.gw, "backward-weights, FP32 path");
    }
  }
}

TEST_CASE("Bf16Gemm: toBf16Exact keeps exactly representable normal values and rejects the rest") {
  using ops::detail::toBf16Exact;
  auto bits = [](float v) {
    uint32_t u;
    std::memcpy(&u, &v, 4);
    return u;
  };
  SUBCASE("exact values: high halves, smallest exponent of the non-zero ones") {
    const std::vector<float> v{1.0f, -(1.0f + 0x1p-7f), 0.0f, -0.0f, 0x1p-126f, 0x1.fep127f,
                               INFINITY, 0.5f};
    auto r = toBf16Exact(Tensor::fromVector(v, {8}));
    REQUIRE(r.exact());
    std::vector<uint16_t> got = r.bits.toVector<uint16_t>();
    for (size_t i = 0; i < v.size(); ++i) CHECK(got[i] == bits(v[i]) >> 16);
    CHECK(r.minExponent == 1);  // 2^-126, the smallest normal
    CHECK(toBf16Exact(Tensor::fromVector({0.5f, 0.0f, 3.0f}, {3})).minExponent == 126);
    CHECK(toBf16Exact(Tensor::zeros({4})).minExponent == ops::detail::kNoNonZero);
  }
  SUBCASE("a ninth significant bit is not exact") {
    CHECK_FALSE(toBf16Exact(Tensor::fromVector({1.0f, 1.0f + 0x1p-8f}, {2})).exact());
  }
  SUBCASE("FP32 subnormals are rejected even when bf16 holds them (VDPBF16PS treats them as 0)") {
    const uint32_t sub = bits(0x1p-127f);
    CHECK((sub & 0xFFFFu) == 0);  // bf16 holds 2^-127 exactly...
    CHECK_FALSE(toBf16Exact(Tensor::fromVector({1.0f, 0x1p-127f}, {2})).exact());
  }
  SUBCASE("products below 2^-126 are detected from the smallest exponents") {
    auto a = toBf16Exact(Tensor::fromVector({0x1p-63f, 1.0f}, {2}));
    auto b = toBf16Exact(Tensor::fromVector({0x1p-63f}, {1}));
    auto c = toBf16Exact(Tensor::fromVector({0x1p-64f}, {1}));
    CHECK(ops::detail::bf16ProductsNormal(a, b));   // 2^-126
    CHECK_FALSE(ops::detail::bf16ProductsNormal(a, c));  // 2^-127
  }
  SUBCASE("long tensors: every position (vectorised body and tail) is converted and checked") {
    // 1000 values: 31 steps of 32 plus a tail of 8 in the AVX-512 kernel.
    std::vector<float> v(1000);
    for (size_t i = 0; i < v.size(); ++i) {
      const float m = 1.0f + static_cast<float>(i % 128) * 0x1p-7f;  // 8 significant bits
      v[i] = std::ldexp(m, static_cast<int>(i % 40) - 20);
    }
    v[5] = 0.0f;
    v[700] = -0x1p-100f;  // the smallest magnitude, in the body
    auto r = toBf16Exact(Tensor::fromVector(v, {1000}));
    REQUIRE(r.exact());
    std::vector<uint16_t> got = r.bits.toVector<uint16_t>();
    for (size_t i = 0; i < v.size(); ++i) CHECK(got[i] == bits(v[i]) >> 16);
    CHECK(r.minExponent == 27);  // 2^-100
    for (size_t at : {size_t{33}, size_t{517}, size_t{995}}) {
      CAPTURE(at);
      std::vector<float> w = v;
      w[at] = 1.0f + 0x1p-8f;  // a ninth significant bit
      CHECK_FALSE(toBf16Exact(Tensor::fromVector(w, {1000})).exact());
      w[at] = -0x1p-127f;  // a subnormal bf16 holds
      auto s = toBf16Exact(Tensor::fromVector(w, {1000}));
      CHECK_FALSE(s.exact());
      CHECK(s.minExponent == 0);
    }
  }
  SUBCASE("round trip and mixed operands") {
    Rng rng(3);
    Tensor x = formats::parse("e4m3")->quantize(Tensor::randn({7, 5}, rng), {});
    auto r = toBf16Exact(x);
    REQUIRE(r.exact());
    CHECK(ops::detail::widenBf16(r.bits).toVector() == x.toVector());
    CHECK_THROWS_AS(gemm(r.bits, Tensor::zeros({5, 3})), Error);
  }
}

TEST_CASE("Bf16Gemm: a GEMM whose values bf16 cannot take exactly runs in FP32") {
  if (!cpuHasBf16()) return;
  SUBCASE("an HBFP block of FP32 subnormals (shared exponent clamped at -126)") {
    Rng rng(5);
    nn::Conv2d conv(16, 16, 3, rng, nn::Conv2dOptions{.padding = 1, .bias = false});
    conv.setPolicy(FormatPolicy::recipe("hbfp8"));
    Tensor x = Tensor::randn({2, 16, 6, 6}, rng);
    // Pixel (0, :, 2, 3): its forward block (16 channels) has max ~1e-39, so its shared exponent
    // is -126 and its values are multiples of 2^-133, FP32 subnormals.
    for (int64_t c = 0; c < 16; ++c) x.data<float>()[(c * 6 + 2) * 6 + 3] = 1e-39f * (c + 1);
    Tensor g = Tensor::randn({2, 16, 6, 6}, rng);
    Setup s{.layer = std::shared_ptr<nn::DotProductLayer>(&conv, [](auto*) {}),
            .weight = conv.weight()};
    Outcome off = runLayer(s, x, g, false), on = runLayer(s, x, g, true);
    // Forward fell back; backward-data (error x weight) and backward-weights (x re-blocked along
    // N, H, W, where those values flush to zero) ran on bf16.
    CHECK(on.stats.inexact == 1);
    CHECK(on.stats.bf16 == 2);
    CHECK(on.y.toVector() == off.y.toVector());  // the same FP32 kernel on the same operands
    CHECK(testing::maxAbsDiff(on.gx, off.gx) <= 1e-5 * testing::maxAbs(off.gx));
  }
  SUBCASE("products below 2^-126 (tiny activations times tiny weights)") {
    Rng rng(6);
    nn::Linear fc(40, 8, rng, nn::LinearOptions{.bias = false});
    fc.setPolicy(FormatPolicy::recipe("hbfp8"));
    Tensor weight = fc.weight();  // a handle on the parameter's storage
    float* w = weight.data<float>();
    for (int64_t i = 0; i < fc.weight().numel(); ++i) w[i] *= 0x1p-40f;
    Tensor x = mul(Tensor::randn({4, 40}, rng), Tensor::full({1}, 0x1p-90f));
    Tensor g = Tensor::randn({4, 8}, rng);
    Setup s{.layer = std::shared_ptr<nn::DotProductLayer>(&fc, [](auto*) {}),
            .weight = fc.weight()};
    Outcome off = runLayer(s, x, g, false), on = runLayer(s, x, g, true);
    CHECK(on.stats.inexact == 1);  // forward: |x·w| ~ 2^-130
    CHECK(on.stats.bf16 == 2);     // error·w ~ 2^-40 and x·error ~ 2^-90 are normal
    CHECK(on.y.toVector() == off.y.toVector());
  }
}

TEST_CASE("Bf16Gemm: formats with more than 8 significant bits never take the path") {
  if (!cpuHasBf16()) return;
  const char* specs[] = {"fp32", "flex16+5", "fp16", "s2fp8", "hbfp12"};
  for (const char* spec : specs) {
    CAPTURE(spec);
    Rng data(8);
    Tensor x = Tensor::randn({2, 8, 5, 5}, data), g = Tensor::randn({2, 8, 5, 5}, data);
    auto run = [&](bool on) {  // a fresh layer each time: adaptive state starts equal
      Rng rng(9);
      nn::Conv2d conv(8, 8, 3, rng, nn::Conv2dOptions{.padding = 1, .bias = false});
      conv.setPolicy(policyOf({spec, spec, spec}));
      Setup s{.layer = std::shared_ptr<nn::DotProductLayer>(&conv, [](auto*) {}),
              .weight = conv.weight()};
      return runLayer(s, x, g, on);
    };
    Outcome off = run(false), on = run(true);
    CHECK(on.stats.bf16 == 0);
    CHECK(on.stats.inexact == 0);  // never even converted
    CHECK(on.y.toVector() == off.y.toVector());
    CHECK(on.gx.toVector() == off.gx.toVector());
    CHECK(on.gw.toVector() == off.gw.toVector());
  }
  SUBCASE("per GEMM: flex16 activations, hbfp8 weights and errors: only backward-data qualifies") {
    Rng rng(9);
    nn::Linear fc(64, 16, rng, nn::LinearOptions{.bias = false});
    fc.setPolicy(policyOf({"hbfp8", "flex16+5", "hbfp8"}));
    Setup s{.layer = std::shared_ptr<nn::DotProductLayer>(&fc, [](auto*) {}),
            .weight = fc.weight()};
    Outcome on = runLayer(s, Tensor::randn({8, 64}, rng), Tensor::randn({8, 16}, rng), true);
    CHECK(on.stats.bf16 == 1);
    CHECK(on.stats.inexact == 0);
  }
  SUBCASE("the bound of the exactness test catches one bf16 rounding of the operands") {
    // fp16 operands (11 significant bits) rounded to bf16 would be the bug of taking the path
    // for a non-exact format: the FP32 result on fp16 operands is then far outside the bound.
    Case c{.name = "conv", .kind = Kind::Conv, .n = 2, .cin = 16, .cout = 8, .h = 6, .k = 3,
           .pad = 1};
    Rng rng(10);
    Setup s = makeSetup(c, rng);
    s.layer->setPolicy(policyOf({"fp16", "fp16", "fp16"}));
    Tensor x = Tensor::randn(s.xShape, rng);
    Tensor g = Tensor::randn(outputShape(s, x), rng);
    Outcome off = runLayer(s, x, g, false);
    auto bf16 = formats::parse("bf16");
    Tensor xr = bf16->quantize(formats::parse("fp16")->quantize(x, {}), {});
    Reference rounded = reference(c, s, {"bf16", "bf16", "bf16"}, xr, g, off.y.shape());
    Reference exact = reference(c, s, {"fp16", "fp16", "fp16"}, x, g, off.y.shape());
    CHECK(worstRatio(off.y, exact.y) <= 1.0);
    CHECK(worstRatio(off.y, rounded.y) > 10.0);
  }
}
