// Packed saved operands (docs/performance.md "Packed saved activations"): the dot-product layers
// keep the quantized forward operands that backward reuses as their format's codes instead of
// FP32 values. Checked here: training runs give bit-identical losses, gradients, parameters,
// optimizer and quantizer state with packing on and off (every recipe and the other non-blocked
// formats, with and without the bf16 GEMM path); the bytes a layer keeps for backward shrink by
// exactly the width the codes save; encodeWithValues returns quantize's values bit for bit with
// the same statistics and state; the vectorised code kernels agree with the definition.
#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <immintrin.h>

#include "apps/common/Precision.h"
#include "core/CpuFeatures.h"
#include "core/Rng.h"
#include "core/Storage.h"
#include "core/ops/Linalg.h"
#include "core/ops/Loss.h"
#include "core/ops/Reduce.h"
#include "core/ops/detail/Bf16.h"
#include "formats/Format.h"
#include "formats/PrecisionSchedule.h"
#include "formats/QuantPoint.h"
#include "formats/detail/FlexpointKernels.h"
#include "formats/detail/Grid.h"
#include "formats/detail/KernelIsa.h"
#include "layers/Linear.h"
#include "layers/models/CifarResNet.h"
#include "optim/Sgd.h"

using namespace mantissa;

namespace {

/// Sets both process-wide switches for one scope.
class Switches {
 public:
  Switches(bool packed, bool bf16Path)
      : packed_(formats::packedSavesEnabled()), bf16_(bf16GemmEnabled()) {
    formats::setPackedSavesEnabled(packed);
    setBf16GemmEnabled(bf16Path);
  }
  ~Switches() {
    formats::setPackedSavesEnabled(packed_);
    setBf16GemmEnabled(bf16_);
  }

 private:
  bool packed_, bf16_;
};

/// Exact bit patterns of a tensor (F32 as bits; other dtypes through F64, which is exact for
/// all of them).
std::vector<uint64_t> bitsOf(const Tensor& t) {
  Tensor c = t.contiguous();
  std::vector<uint64_t> out(static_cast<size_t>(c.numel()));
  if (c.dtype() == DType::F32) {
    const float* p = c.data<float>();
    for (size_t i = 0; i < out.size(); ++i) out[i] = std::bit_cast<uint32_t>(p[i]);
  } else {
    Tensor d = c.to(DType::F64);
    const double* p = d.data<double>();
    for (size_t i = 0; i < out.size(); ++i) out[i] = std::bit_cast<uint64_t>(p[i]);
  }
  return out;
}

/// Everything a training run produced, in order: named bit patterns and text attributes.
struct Record {
  std::vector<std::pair<std::string, std::vector<uint64_t>>> tensors;
  std::vector<std::pair<std::string, std::string>> attrs;
  size_t peakBytes = 0;  // most Storage bytes a step added (saved activations, gradients, ...)
  void add(const std::string& name, const Tensor& t) { tensors.emplace_back(name, bitsOf(t)); }
};

/// ResNet-8 on a fixed random batch per step: `steps` SGD steps (momentum, weight decay) under
/// `schedule`, recording each loss and every parameter gradient, then parameters, buffers,
/// quantizer state (Module::saveState), optimizer state and the quantizer statistics.
Record trainRun(const std::string& schedule, bool packed, bool bf16Path, int steps = 3) {
  Switches sw(packed, bf16Path);
  Rng rng(7);
  nn::CifarResNet model({.depth = 8, .inChannels = 3, .numClasses = 10}, rng);
  optim::Sgd sgd(model.namedParameters(), {.lr = 0.05, .momentum = 0.9, .weightDecay = 5e-4});
  train::applyPrecision(model, &sgd, formats::PrecisionSchedule::parse(schedule), 0, 1, 99);
  Record r;
  Rng dataRng(3);
  for (int s = 0; s < steps; ++s) {
    Tensor x = Tensor::randn({8, 3, 12, 12}, dataRng);
    std::vector<int64_t> labels;
    for (int i = 0; i < 8; ++i) labels.push_back(static_cast<int64_t>(dataRng.uniformInt(10)));
    model.zeroGrad();
    const size_t live = Storage::liveBytes();
    Storage::resetPeak();
    Tensor loss = crossEntropy(model.forward(x), Tensor::fromInts(labels, {8}));
    loss.backward();
    r.peakBytes = std::max(r.peakBytes, Storage::peakBytes() - live);
    r.add("loss" + std::to_string(s), loss);
    for (auto& [name, p] : model.namedParameters()) {
      REQUIRE(p.grad().defined());
      r.add("grad" + std::to_string(s) + "." + name, p.grad());
    }
    sgd.step();
  }
  io::StateDict sd;
  model.saveState(sd, "model/");
  sgd.saveState(sd, "optim/");
  for (auto& [k, t] : sd.tensors) r.add(k, t);
  for (auto& [k, v] : sd.attrs) r.attrs.emplace_back(k, v);
  for (auto& [name, point] : model.namedQuantPoints()) {
    for (const auto* dir : {&point->forward(), &point->backward()}) {
      const formats::QuantStats& st = dir->totalStats;
      r.attrs.emplace_back(name + (dir == &point->forward() ? ".fwd" : ".bwd"),
                           std::to_string(dir->calls) + " " + std::to_string(st.count) + " " +
                               std::to_string(st.saturated) + " " + std::to_string(st.flushed) +
                               " " + std::to_string(st.nonFinite));
    }
  }
  return r;
}

void checkSame(const Record& a, const Record& b) {
  REQUIRE(a.tensors.size() == b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    CAPTURE(a.tensors[i].first);
    REQUIRE(a.tensors[i].first == b.tensors[i].first);
    CHECK(a.tensors[i].second == b.tensors[i].second);
  }
  CHECK(a.attrs == b.attrs);
}

}  // namespace

TEST_CASE("PackedSave: training is bit-identical with packed saved operands, every format") {
  // The seven recipes, then the non-blocked formats no recipe uses: fp16, FFP8 calibrated per
  // point, stochastic rounding (the step of each conversion must not move).
  const std::vector<std::string> schedules = {"fp32",
                                              "flexpoint",
                                              "hbfp8",
                                              "boosters",
                                              "s2fp8",
                                              "fp8",
                                              "bf16",
                                              "fp32;*=fp16",
                                              "fp32;*=ffp8:auto",
                                              "fp32;*=e4m3:round=stochastic",
                                              "fp32;*=bf16:round=stochastic"};
  for (const std::string& s : schedules) {
    CAPTURE(s);
    Record off = trainRun(s, false, false), on = trainRun(s, true, false);
    checkSame(off, on);
    // Packing happened where it can: FP32 and the blocked HBFP recipes keep what they kept.
    if (s == "fp32" || s == "hbfp8" || s == "boosters") {
      CHECK(on.peakBytes == off.peakBytes);
    } else {
      CHECK(on.peakBytes < off.peakBytes);
    }
    // The runs trained: the loss of the last step differs from the first.
    const auto& first = off.tensors.front();
    CHECK(first.first == "loss0");
    for (const auto& [name, bits] : off.tensors) {
      if (name == "loss2") CHECK(bits != first.second);
    }
  }
}

TEST_CASE("PackedSave: with the bf16 GEMM path on, packing changes nothing either") {
  if (!cpuFeatures().avx512Bf16) return;  // the path is never taken without AVX-512 BF16
  for (const std::string s : {"fp8", "bf16", "fp32;*=ffp8:auto"}) {
    CAPTURE(s);
    resetBf16GemmStats();
    Record off = trainRun(s, false, true);
    const int64_t offGemms = bf16GemmStats().bf16;
    resetBf16GemmStats();
    Record on = trainRun(s, true, true);
    checkSame(off, on);
    CHECK(offGemms > 0);
    CHECK(bf16GemmStats().bf16 == offGemms);  // the decoded operands took the same path
  }
}

TEST_CASE("PackedSave: bf16 path, operands bf16 cannot take exactly: packed and unpacked agree") {
  if (!cpuFeatures().avx512Bf16) return;
  // ffp8 with bias 127: the smallest normal is 2^-126 and the subnormals 2^-129.. are FP32
  // subnormals, so the forward conversion of x fails and its GEMMs fall back to FP32; the
  // packed operand must then come back as FP32 too (w, whose values are normal, stays on bf16).
  std::vector<std::vector<uint64_t>> out;
  std::vector<int64_t> inexact;
  for (bool packed : {false, true}) {
    Switches sw(packed, true);
    resetBf16GemmStats();
    Rng rng(9);
    nn::Linear layer(64, 32, rng);
    formats::FormatPolicy p = formats::FormatPolicy::uniform(formats::parse("e4m3"));
    p.activation = formats::parse("ffp8:e=4,b=127");
    layer.setPolicy(p);
    Tensor x = Tensor::randn({16, 64}, rng, 0.f, std::ldexp(1.f, -124));
    x.requiresGrad();
    Tensor y = layer.forward(x);
    sum(y).backward();
    out.push_back(bitsOf(y));
    out.push_back(bitsOf(x.grad()));
    out.push_back(bitsOf(layer.namedParameters()[0].second.grad()));
    inexact.push_back(bf16GemmStats().inexact);
  }
  CHECK(out[0] == out[3]);
  CHECK(out[1] == out[4]);
  CHECK(out[2] == out[5]);
  CHECK(inexact[0] > 0);
  CHECK(inexact[1] == inexact[0]);
}

TEST_CASE("PackedSave: a layer keeps its saved operands at the codes' width") {
  // Linear 256 -> 128 on a batch of 64: backward keeps x (64 x 256) for the weight gradient and
  // w (128 x 256) for the input gradient. Packed, each value takes the code width instead of 4
  // bytes; everything else the forward leaves alive (y, the bias sum) is the same.
  const int64_t n = 64, in = 256, out = 128, saved = n * in + out * in;
  struct Case {
    const char* spec;
    size_t codeBytes;
  };
  for (Case c : {Case{"e4m3", 1}, Case{"e5m2", 1}, Case{"s2fp8", 1}, Case{"ffp8:auto", 1},
                 Case{"bf16", 2}, Case{"fp16", 2}, Case{"flex16+5", 2}}) {
    CAPTURE(c.spec);
    std::vector<size_t> kept;
    std::vector<std::vector<uint64_t>> grads;
    for (bool packed : {false, true}) {
      Switches sw(packed, false);
      Rng rng(5);
      nn::Linear layer(in, out, rng);
      layer.setPolicy(formats::FormatPolicy::uniform(formats::parse(c.spec)));
      Tensor x = Tensor::randn({n, in}, rng);
      x.requiresGrad();
      const size_t before = Storage::liveBytes();
      Tensor y = layer.forward(x);
      kept.push_back(Storage::liveBytes() - before - y.nbytes());
      sum(y).backward();
      grads.push_back(bitsOf(x.grad()));
      grads.push_back(bitsOf(layer.namedParameters()[0].second.grad()));
    }
    CHECK(grads[0] == grads[2]);
    CHECK(grads[1] == grads[3]);
    // Unpacked: the two FP32 operands (flexpoint adds its one-element exponent tensors packed).
    CHECK(kept[0] == static_cast<size_t>(saved) * 4);
    const size_t packedBytes = static_cast<size_t>(saved) * c.codeBytes;
    if (std::string(c.spec).rfind("flex", 0) == 0) {
      CHECK(kept[1] >= packedBytes);
      CHECK(kept[1] <= packedBytes + 2 * Storage::kAlignment);
    } else {
      CHECK(kept[1] == packedBytes);
    }
  }
}

TEST_CASE("PackedSave: encodeForward gives quantizeForward's values, statistics and state") {
  Rng rng(21);
  // Wide dynamic range: subnormals of every format, saturation of the 8-bit ones, zeros, -0.
  Tensor x = Tensor::randn({3, 1000}, rng);
  {
    float* p = x.data<float>();
    for (int64_t i = 0; i < x.numel(); ++i) p[i] *= std::ldexp(1.f, static_cast<int>(i % 60) - 30);
    p[7] = 0.f;
    p[8] = -0.f;
  }
  for (const char* spec :
       {"e4m3", "e5m2", "e4m3:round=stochastic", "bf16", "bf16:round=stochastic", "fp16",
        "fp16:round=stochastic", "flex16+5", "s2fp8", "ffp8:auto", "ffp8:e=3,b=4,s=0", "fp32"}) {
    CAPTURE(spec);
    formats::QuantPoint a("layer.activation", formats::Role::Activation, formats::Role::Error);
    formats::QuantPoint b("layer.activation", formats::Role::Activation, formats::Role::Error);
    a.setFormats(formats::parse(spec), nullptr);
    b.setFormats(formats::parse(spec), nullptr);
    a.setSeed(4);
    b.setSeed(4);
    for (int call = 0; call < 3; ++call) {  // adaptive formats: the state carries over
      // The third call brings a new range (Autoflex and S2FP8 must follow it alike).
      Tensor xi = call == 2 ? Tensor::randn({3, 1000}, rng, 0.f, 1e3f) : x;
      Tensor q = a.quantizeForward(xi);
      Tensor values;
      formats::Encoded e = b.encodeForward(xi, values);
      CHECK(bitsOf(values) == bitsOf(q));
      CHECK(bitsOf(b.forwardFormat()->decode(e)) == bitsOf(q));
      CHECK(a.forward().calls == b.forward().calls);
      CHECK(a.forward().totalStats.count == b.forward().totalStats.count);
      CHECK(a.forward().totalStats.saturated == b.forward().totalStats.saturated);
      CHECK(a.forward().totalStats.flushed == b.forward().totalStats.flushed);
      CHECK(a.metrics() == b.metrics());
    }
  }
}

TEST_CASE("PackedSave: mini-float code kernels (AVX-512 and scalar) invert the code table") {
  using formats::detail::MiniFloat;
  using formats::detail::Specials;
  // OCP E4M3 / E5M2 and FFP8 layouts: unsigned, subnormal-only (e=0), and biases that put the
  // smallest subnormal below FP32's normal range and the largest value near 2^127.
  const MiniFloat layouts[] = {formats::detail::kE4M3,         formats::detail::kE5M2,
                               {0, 4, 4, 7, Specials::None},   {1, 0, 7, 3, Specials::None},
                               {1, 3, 4, 127, Specials::None}, {1, 5, 2, -96, Specials::None},
                               {0, 7, 1, 0, Specials::None}};
  for (const MiniFloat& l : layouts) {
    CAPTURE(l.expBits);
    CAPTURE(l.bias);
    const int bits = l.signBits + l.expBits + l.mantBits;
    const auto table = l.decodeTable();
    // Every code's value (written from the definition in decodeTable), in a length that is not
    // a multiple of 16 so the masked tails run too; NaN codes encode to S.all-ones.
    std::vector<float> values;
    std::vector<uint8_t> expect;
    for (int rep = 0; rep < 3; ++rep) {
      for (int c = 0; c < (1 << bits); ++c) {
        values.push_back(table[static_cast<size_t>(c)]);
        const uint8_t signCode = l.signBits ? static_cast<uint8_t>(1u << (bits - 1)) : 0;
        const uint8_t magOnes = static_cast<uint8_t>((1u << (bits - l.signBits)) - 1u);
        expect.push_back(std::isnan(table[static_cast<size_t>(c)])
                             ? static_cast<uint8_t>((c & signCode) | magOnes)
                             : static_cast<uint8_t>(c));
      }
    }
    values.push_back(0.f);
    expect.push_back(0);
    const int64_t n = static_cast<int64_t>(values.size());
    for (bool avx512 : {false, true}) {
      CAPTURE(avx512);
      std::vector<uint8_t> codes(values.size(), 0xAA);
      formats::detail::encodeMiniFloat(values.data(), codes.data(), n, l, avx512);
      CHECK(codes == expect);
      std::vector<float> back(values.size());
      formats::detail::decodeMiniFloat(codes.data(), back.data(), n, l, avx512);
      std::vector<uint16_t> bf16(values.size());
      formats::detail::decodeMiniFloatBf16(codes.data(), bf16.data(), n, l, avx512);
      for (int64_t i = 0; i < n; ++i) {
        const uint32_t want = std::bit_cast<uint32_t>(table[codes[static_cast<size_t>(i)]]);
        CHECK(std::bit_cast<uint32_t>(back[i]) == want);
        CHECK(bf16[static_cast<size_t>(i)] == want >> 16);
      }
    }
  }
}

TEST_CASE("PackedSave: fp16 codes are the binary16 patterns, all 65536 of them") {
  // Every binary16 pattern's value (F16C, exact) must encode back to that pattern and decode to
  // the same value; NaNs to the canonical quiet NaN 0x7E00 with their sign.
  std::vector<float> v;
  std::vector<uint16_t> expect;
  for (uint32_t c = 0; c < 65536; ++c) {
    v.push_back(_cvtsh_ss(static_cast<uint16_t>(c)));
    const bool nan = (c & 0x7C00) == 0x7C00 && (c & 0x3FF) != 0;
    expect.push_back(static_cast<uint16_t>(nan ? (c & 0x8000) | 0x7E00 : c));
  }
  v.resize(65531);  // a tail that is not a multiple of 8
  expect.resize(v.size());
  Tensor x = Tensor::fromVector(v, {static_cast<int64_t>(v.size())});
  auto f = formats::parse("fp16");
  formats::Encoded e = f->encode(x, {});
  REQUIRE(e.codes.dtype() == DType::U16);
  const uint16_t* codes = e.codes.data<uint16_t>();
  std::vector<uint16_t> got(codes, codes + v.size());
  CHECK(got == expect);
  std::vector<uint64_t> back = bitsOf(f->decode(e));
  for (size_t i = 0; i < v.size(); ++i) {
    uint32_t want = std::bit_cast<uint32_t>(_cvtsh_ss(expect[i]));
    if (back[i] != want) {
      CHECK(back[i] == want);
      break;
    }
  }
}

TEST_CASE(
    "PackedSave: the flexpoint kernel's codes-and-values pass writes the values pass's bits") {
  namespace fd = formats::detail;
  Rng rng(8);
  Tensor x = Tensor::randn({1037}, rng, 0.f, 300.f);  // saturates at dec 10 with 16 bits
  const float* xp = x.data<float>();
  x.data<float>()[3] = -0.f;
  x.data<float>()[4] = -1e-9f;  // flushed to a code 0: the value must be +0 as decode gives
  for (fd::KernelIsa isa : {fd::KernelIsa::Generic, fd::bestKernelIsa()}) {
    for (int bits : {8, 16, 20}) {
      CAPTURE(bits);
      std::vector<float> ref(1037), values(1037, 1.f);
      std::vector<int32_t> codes(1037);
      fd::FlexPass a = fd::flexQuantize(xp, ref.data(), 1037, 10, bits, isa);
      fd::FlexPass b = fd::flexQuantize(xp, codes.data(), 1037, 10, bits, isa, values.data());
      CHECK(a.saturated == b.saturated);
      CHECK(a.flushed == b.flushed);
      CHECK(a.saturated > 0);
      for (int i = 0; i < 1037; ++i) {
        CHECK(std::bit_cast<uint32_t>(values[i]) == std::bit_cast<uint32_t>(ref[i]));
        CHECK(static_cast<double>(codes[i]) == std::ldexp(static_cast<double>(ref[i]), 10));
      }
    }
  }
}
