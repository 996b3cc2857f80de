#include <doctest/doctest.h>

#include <cmath>

#include "core/Rng.h"
#include "core/ops/Conv.h"
#include "layers/Conv2d.h"
#include "layers/ConvTranspose2d.h"
#include "tests/layers/LayerTestUtil.h"

using namespace mantissa;
namespace nn = mantissa::nn;
using mantissa::testing::checkModuleGrads;
using mantissa::testing::hbfpReference;
using mantissa::testing::maxAbs;
using mantissa::testing::maxAbsDiff;

namespace {

struct Geo {
  Size2d stride = 1, padding = 0, outputPadding = 0, dilation = 1;
  int64_t groups = 1;
};

// Direct loops over the definitions (PyTorch's docs), accumulated in double.
Tensor naiveConv2d(const Tensor& x, const Tensor& w, const Tensor& b, const Geo& g) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t O = w.size(0), Cg = w.size(1), KH = w.size(2), KW = w.size(3);
  const int64_t OH = (H + 2 * g.padding.h - g.dilation.h * (KH - 1) - 1) / g.stride.h + 1;
  const int64_t OW = (W + 2 * g.padding.w - g.dilation.w * (KW - 1) - 1) / g.stride.w + 1;
  const int64_t Og = O / g.groups;
  REQUIRE(C == Cg * g.groups);
  Tensor y = Tensor::zeros({N, O, OH, OW});
  float* py = y.data<float>();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double acc = b.defined() ? b.at({o}) : 0.0;
          const int64_t grp = o / Og;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t i = 0; i < KH; ++i)
              for (int64_t j = 0; j < KW; ++j) {
                const int64_t ih = oh * g.stride.h - g.padding.h + i * g.dilation.h;
                const int64_t iw = ow * g.stride.w - g.padding.w + j * g.dilation.w;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                acc += x.at({n, grp * Cg + c, ih, iw}) * w.at({o, c, i, j});
              }
          py[((n * O + o) * OH + oh) * OW + ow] = static_cast<float>(acc);
        }
  return y;
}

// Transposed convolution as the scatter it is: every input pixel adds w-weighted copies to
// the output positions its kernel taps reach.
Tensor naiveConvTranspose2d(const Tensor& x, const Tensor& w, const Tensor& b, const Geo& g) {
  const int64_t N = x.size(0), Cin = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t Cog = w.size(1), KH = w.size(2), KW = w.size(3);
  const int64_t Cout = Cog * g.groups, Cig = Cin / g.groups;
  const int64_t OH =
      (H - 1) * g.stride.h - 2 * g.padding.h + g.dilation.h * (KH - 1) + g.outputPadding.h + 1;
  const int64_t OW =
      (W - 1) * g.stride.w - 2 * g.padding.w + g.dilation.w * (KW - 1) + g.outputPadding.w + 1;
  std::vector<double> acc(static_cast<size_t>(N * Cout * OH * OW), 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t ci = 0; ci < Cin; ++ci)
      for (int64_t ih = 0; ih < H; ++ih)
        for (int64_t iw = 0; iw < W; ++iw)
          for (int64_t co = 0; co < Cog; ++co)
            for (int64_t i = 0; i < KH; ++i)
              for (int64_t j = 0; j < KW; ++j) {
                const int64_t oh = ih * g.stride.h - g.padding.h + i * g.dilation.h;
                const int64_t ow = iw * g.stride.w - g.padding.w + j * g.dilation.w;
                if (oh < 0 || oh >= OH || ow < 0 || ow >= OW) continue;
                const int64_t oc = ci / Cig * Cog + co;
                acc[((n * Cout + oc) * OH + oh) * OW + ow] +=
                    x.at({n, ci, ih, iw}) * w.at({ci, co, i, j});
              }
  std::vector<float> out(acc.size());
  for (size_t k = 0; k < acc.size(); ++k) {
    const int64_t oc = static_cast<int64_t>(k) / (OH * OW) % Cout;
    out[k] = static_cast<float>(acc[k] + (b.defined() ? b.at({oc}) : 0.0));
  }
  return Tensor::fromVector(out, {N, Cout, OH, OW});
}

// Channel c scaled by 2^(c mod 5): neighbouring blocks get different exponents, so blocking
// along a wrong axis changes the result.
Tensor graded(const Shape& s, Rng& rng, int64_t axis) {
  Tensor t = Tensor::randn(s, rng);
  Shape scaleShape(s.size(), 1);
  scaleShape[axis] = s[axis];
  std::vector<float> sc(static_cast<size_t>(s[axis]));
  for (int64_t c = 0; c < s[axis]; ++c) sc[c] = std::ldexp(1.f, static_cast<int>(c % 5));
  return mul(t, Tensor::fromVector(sc, scaleShape));
}

}  // namespace

TEST_CASE("Conv2d: output matches a naive loop") {
  Rng rng(1);
  struct Case {
    const char* name;
    int64_t in, out;
    Size2d k;
    nn::Conv2dOptions opts;
  };
  for (const Case& c :
       {Case{"plain", 3, 5, 3, {}},
        Case{"stride, asymmetric padding, no bias",
             4,
             6,
             {3, 2},
             {.stride = 2, .padding = {1, 0}, .bias = false}},
        Case{"dilation and groups", 6, 4, 3, {.padding = 2, .dilation = 2, .groups = 2}}}) {
    std::string name = c.name;
    CAPTURE(name);
    nn::Conv2d conv(c.in, c.out, c.k, rng, c.opts);
    Tensor x = Tensor::randn({2, c.in, 7, 8}, rng);
    Tensor y = conv.forward(x);
    Geo g{.stride = c.opts.stride,
          .padding = c.opts.padding,
          .dilation = c.opts.dilation,
          .groups = c.opts.groups};
    Tensor ref = naiveConv2d(x, conv.weight(), conv.bias(), g);
    REQUIRE(y.shape() == ref.shape());
    CHECK(maxAbsDiff(y, ref) < 1e-5 * (1 + maxAbs(ref)));
  }
}

TEST_CASE("Conv2d: PyTorch init, names and description") {
  Rng rng(2);
  nn::Conv2d conv(8, 16, 3, rng, {.padding = 1, .groups = 2});
  // fan_in = 8/2 * 3 * 3 = 36 -> bound 1/6 for weight and bias.
  const double bound = 1.0 / 6.0;
  CHECK(conv.weight().shape() == Shape{16, 4, 3, 3});
  CHECK(maxAbs(conv.weight()) <= bound);
  CHECK(maxAbs(conv.weight()) > 0.95 * bound);  // spread over the whole range
  CHECK(maxAbs(conv.bias()) <= bound);
  std::vector<std::string> names;
  for (auto& [n, t] : conv.namedParameters()) names.push_back(n);
  CHECK(names == std::vector<std::string>{"weight", "bias"});
  CHECK(conv.namedQuantPoints().size() == 3);
  CHECK(conv.describe() == "Conv2d(8, 16, kernel=3, padding=1, groups=2)\n");
  CHECK_THROWS_WITH_AS(conv.forward(Tensor::zeros({1, 3, 5, 5})),
                       doctest::Contains("Conv2d(8, 16): input of shape [1, 3, 5, 5]"), Error);
  CHECK_THROWS_WITH_AS(nn::Conv2d(6, 4, 3, rng, {.groups = 4}),
                       doctest::Contains("groups 4 must divide"), Error);
}

TEST_CASE("Conv2d: gradients match central differences") {
  Rng rng(3);
  SUBCASE("bias") {
    nn::Conv2d conv(3, 4, 3, rng);
    auto r = checkModuleGrads(conv, Tensor::randn({2, 3, 5, 5}, rng));
    CHECK_MESSAGE(r.ok, r.message);
  }
  SUBCASE("stride 2, padding 1, no bias") {
    nn::Conv2d conv(3, 4, 3, rng, {.stride = 2, .padding = 1, .bias = false});
    CHECK(!conv.bias().defined());
    auto r = checkModuleGrads(conv, Tensor::randn({2, 3, 6, 5}, rng));
    CHECK_MESSAGE(r.ok, r.message);
  }
  SUBCASE("groups 2, dilation 2") {
    nn::Conv2d conv(4, 6, {2, 3}, rng, {.padding = 1, .dilation = 2, .groups = 2});
    auto r = checkModuleGrads(conv, Tensor::randn({2, 4, 6, 6}, rng));
    CHECK_MESSAGE(r.ok, r.message);
  }
}

TEST_CASE("ConvTranspose2d: output matches a naive scatter loop") {
  Rng rng(4);
  struct Case {
    const char* name;
    int64_t in, out;
    Size2d k;
    nn::ConvTranspose2dOptions opts;
  };
  for (const Case& c :
       {Case{"plain", 3, 5, 3, {}},
        Case{"DCGAN up-sampling, no bias", 4, 2, 4, {.stride = 2, .padding = 1, .bias = false}},
        Case{"output padding, dilation, groups",
             4,
             6,
             3,
             {.stride = 2, .padding = 1, .outputPadding = 1, .dilation = 2, .groups = 2}}}) {
    std::string name = c.name;
    CAPTURE(name);
    nn::ConvTranspose2d deconv(c.in, c.out, c.k, rng, c.opts);
    Tensor x = Tensor::randn({2, c.in, 4, 5}, rng);
    Tensor y = deconv.forward(x);
    Geo g{.stride = c.opts.stride,
          .padding = c.opts.padding,
          .outputPadding = c.opts.outputPadding,
          .dilation = c.opts.dilation,
          .groups = c.opts.groups};
    Tensor ref = naiveConvTranspose2d(x, deconv.weight(), deconv.bias(), g);
    REQUIRE(y.shape() == ref.shape());
    CHECK(maxAbsDiff(y, ref) < 1e-5 * (1 + maxAbs(ref)));
  }
}

TEST_CASE("ConvTranspose2d: PyTorch init uses weight.size(1) as fan_in") {
  Rng rng(5);
  // weight [in=32, out/groups=2, 4, 4]: fan_in = 2 * 16 = 32 (not 32 * 16).
  nn::ConvTranspose2d deconv(32, 2, 4, rng, {.stride = 2});
  const double bound = 1.0 / std::sqrt(32.0);
  CHECK(deconv.weight().shape() == Shape{32, 2, 4, 4});
  CHECK(maxAbs(deconv.weight()) <= bound);
  CHECK(maxAbs(deconv.weight()) > 0.95 * bound);
  CHECK(maxAbs(deconv.bias()) <= bound);
  CHECK(deconv.extraRepr() == "32, 2, kernel=4, stride=2");
  CHECK(deconv.forward(Tensor::zeros({1, 32, 3, 3})).shape() == Shape{1, 2, 8, 8});
}

TEST_CASE("ConvTranspose2d: gradients match central differences") {
  Rng rng(6);
  SUBCASE("bias") {
    nn::ConvTranspose2d deconv(3, 4, 3, rng);
    auto r = checkModuleGrads(deconv, Tensor::randn({2, 3, 4, 4}, rng));
    CHECK_MESSAGE(r.ok, r.message);
  }
  SUBCASE("stride 2, padding 1, output padding 1, no bias") {
    nn::ConvTranspose2d deconv(3, 2, 3, rng,
                               {.stride = 2, .padding = 1, .outputPadding = 1, .bias = false});
    auto r = checkModuleGrads(deconv, Tensor::randn({2, 3, 3, 4}, rng));
    CHECK_MESSAGE(r.ok, r.message);
  }
  SUBCASE("groups 2") {
    nn::ConvTranspose2d deconv(4, 6, 2, rng, {.stride = 2, .groups = 2});
    auto r = checkModuleGrads(deconv, Tensor::randn({2, 4, 3, 3}, rng));
    CHECK_MESSAGE(r.ok, r.message);
  }
}

// hbfp8 (FORMATS.md A.2/A.3): the layer's three GEMMs must see exactly the operands an
// independent block quantizer produces along each GEMM's reduction axes. The raw kernels are
// deterministic, so a match is exact up to FP32 summation order; blocking along any other axis
// moves values by whole ulps of their blocks and is detected (checked below as well).
TEST_CASE("Conv2d: hbfp8 operands reach every GEMM blocked along its reduction axis") {
  Rng rng(7);
  for (int64_t groups : {1, 2}) {
    CAPTURE(groups);
    // 96 channels: one full block of 64 and a partial one of 32; with 2 groups, one block of
    // 48 per group (blocks never straddle groups).
    const int64_t C = 96, O = 8, Cg = C / groups;
    const mantissa::Conv2dOptions o{.padding = 1, .groups = groups};
    nn::Conv2d conv(C, O, 3, rng, {.padding = 1, .groups = groups, .bias = false});
    conv.setPolicy(formats::FormatPolicy::recipe("hbfp8"));
    Tensor x = graded({2, C, 4, 5}, rng, 1).requiresGrad();
    Tensor w = conv.weight().detach();
    Tensor y = conv.forward(x);
    Tensor gy = graded(y.shape(), rng, 1);
    conv.zeroGrad();
    y.backward({.grad = gy});

    // Per-group views put a group axis in front of each channel axis.
    auto xg = [&](const Tensor& t) { return t.reshape({2, groups, Cg, 4, 5}); };
    auto wg = [&](const Tensor& t) { return t.reshape({groups, O / groups, Cg, 3, 3}); };
    auto gg = [&](const Tensor& t) { return t.reshape({2, groups, O / groups, 4, 5}); };

    // Forward: x along its channels, w along its input channels (per output channel and tap).
    Tensor xq = hbfpReference(xg(x), {2}, 8).reshape(x.shape());
    Tensor wq = hbfpReference(wg(w), {2}, 8).reshape(w.shape());
    Tensor yRef = conv2dForward(xq, wq, Tensor(), o);
    CHECK(maxAbsDiff(y, yRef) <= 1e-6 * maxAbs(yRef));
    // Control: blocking x along W instead is visibly different.
    Tensor yWrong = conv2dForward(hbfpReference(x, {3}, 8), wq, Tensor(), o);
    CHECK(maxAbsDiff(yWrong, yRef) > 1e-3 * maxAbs(yRef));

    // Backward-data: the error along its channels, w along its output channels.
    Tensor eData = hbfpReference(gg(gy), {2}, 8).reshape(gy.shape());
    Tensor wData = hbfpReference(wg(w), {1}, 8).reshape(w.shape());
    Tensor gxRef = conv2dBackwardData(eData, wData, x.shape(), o);
    CHECK(maxAbsDiff(x.grad(), gxRef) <= 1e-6 * maxAbs(gxRef));
    Tensor gxWrong = conv2dBackwardData(eData, wq, x.shape(), o);  // w still forward-blocked
    CHECK(maxAbsDiff(gxWrong, gxRef) > 1e-4 * maxAbs(gxRef));

    // Backward-weights: x and the error along (N, H, W); weight_grad is fp32 in this recipe.
    Tensor xW = hbfpReference(x, {0, 2, 3}, 8);
    Tensor eW = hbfpReference(gy, {0, 2, 3}, 8);
    Tensor gwRef = conv2dBackwardWeights(xW, eW, w.shape(), o, false).weight;
    CHECK(maxAbsDiff(conv.weight().grad(), gwRef) <= 1e-6 * maxAbs(gwRef));
    Tensor gwWrong = conv2dBackwardWeights(xq, eW, w.shape(), o, false).weight;
    CHECK(maxAbsDiff(gwWrong, gwRef) > 1e-4 * maxAbs(gwRef));
  }
}

TEST_CASE("ConvTranspose2d: hbfp8 operands reach every GEMM blocked along its reduction axis") {
  Rng rng(8);
  for (int64_t groups : {1, 2}) {
    CAPTURE(groups);
    const int64_t Cin = 96, Cout = 6, Cig = Cin / groups, Cog = Cout / groups;
    const mantissa::ConvTranspose2dOptions o{.stride = 2, .padding = 1, .groups = groups};
    nn::ConvTranspose2d deconv(Cin, Cout, 4, rng,
                               {.stride = 2, .padding = 1, .groups = groups, .bias = false});
    deconv.setPolicy(formats::FormatPolicy::recipe("hbfp8"));
    Tensor x = graded({2, Cin, 3, 3}, rng, 1).requiresGrad();
    Tensor w = deconv.weight().detach();  // [Cin, Cout/groups, 4, 4]
    Tensor y = deconv.forward(x);
    REQUIRE(y.shape() == Shape{2, Cout, 6, 6});
    Tensor gy = graded(y.shape(), rng, 1);
    deconv.zeroGrad();
    y.backward({.grad = gy});

    auto xg = [&](const Tensor& t) { return t.reshape({2, groups, Cig, 3, 3}); };
    auto wg = [&](const Tensor& t) { return t.reshape({groups, Cig, Cog, 4, 4}); };
    auto gg = [&](const Tensor& t) { return t.reshape({2, groups, Cog, 6, 6}); };

    // Forward reduces over input channels: x along axis 1, w along its axis 0.
    Tensor xq = hbfpReference(xg(x), {2}, 8).reshape(x.shape());
    Tensor wq = hbfpReference(wg(w), {1}, 8).reshape(w.shape());
    Tensor yRef = convTranspose2dForward(xq, wq, Tensor(), o);
    CHECK(maxAbsDiff(y, yRef) <= 1e-6 * maxAbs(yRef));
    Tensor yWrong = convTranspose2dForward(xq, hbfpReference(w, {3}, 8), Tensor(), o);
    CHECK(maxAbsDiff(yWrong, yRef) > 1e-4 * maxAbs(yRef));

    // Backward-data reduces over output channels: the error along axis 1, w along its axis 1.
    // (Only 3 output channels per group: the blocks are short, but still per group.)
    Tensor eData = hbfpReference(gg(gy), {2}, 8).reshape(gy.shape());
    Tensor wData = hbfpReference(wg(w), {2}, 8).reshape(w.shape());
    Tensor gxRef = convTranspose2dBackwardData(eData, wData, x.shape(), o);
    CHECK(maxAbsDiff(x.grad(), gxRef) <= 1e-6 * maxAbs(gxRef));

    // Backward-weights reduces over (N, H, W).
    Tensor gwRef =
        convTranspose2dBackwardWeights(hbfpReference(x, {0, 2, 3}, 8),
                                       hbfpReference(gy, {0, 2, 3}, 8), w.shape(), o, false)
            .weight;
    CHECK(maxAbsDiff(deconv.weight().grad(), gwRef) <= 1e-6 * maxAbs(gwRef));
  }
}

TEST_CASE("Conv2d: hbfp8 master copy is blocked along the input-channel axis") {
  Rng rng(9);
  nn::Conv2d conv(4, 8, 3, rng);
  nn::ConvTranspose2d deconv(4, 8, 3, rng);
  conv.setPolicy(formats::FormatPolicy::recipe("hbfp8"));
  deconv.setPolicy(formats::FormatPolicy::recipe("hbfp8"));
  REQUIRE(conv.namedMasterFormats().size() == 1);
  CHECK(conv.namedMasterFormats()[0].second.blockAxis == 1);
  CHECK(conv.namedMasterFormats()[0].second.format->spec() == "hbfp16");
  CHECK(deconv.namedMasterFormats()[0].second.blockAxis == 0);
}
