// The dot-product layers quantize the operands bound for the bf16 GEMM path with
// Format::quantizeBf16 (HBFP writes the bf16 patterns in its quantizing pass) instead of
// quantize followed by ops::detail::toBf16Exact. A training step must not change: outputs and
// gradients of Conv2d and Linear with hbfp8 and the boosters formats are compared bit for bit
// between the layer with its real formats, the same formats wrapped so that quantizeBf16 is
// counted, and wrapped so that it takes the unfused route (Format's default).
#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "core/Rng.h"
#include "core/ops/Elementwise.h"
#include "core/ops/Linalg.h"
#include "core/ops/Reduce.h"
#include "formats/Format.h"
#include "formats/Policy.h"
#include "layers/Conv2d.h"
#include "layers/Linear.h"

using namespace mantissa;
using formats::FormatPolicy;

namespace {

/// Behaves as `inner` in every respect but counts quantizeBf16 calls and, unless `fused`,
/// answers them the unfused way (Format's default: quantize, then toBf16Exact).
class Probe : public formats::Format {
 public:
  Probe(formats::FormatPtr inner, bool fused, int* calls)
      : inner_(std::move(inner)), fused_(fused), calls_(calls) {}
  std::string spec() const override { return inner_->spec(); }
  double bitsPerValue(const Shape& s, int64_t axis) const override {
    return inner_->bitsPerValue(s, axis);
  }
  bool isIdentity() const override { return inner_->isIdentity(); }
  bool isBlocked() const override { return inner_->isBlocked(); }
  int significandBits() const override { return inner_->significandBits(); }
  std::unique_ptr<formats::FormatState> makeState() const override { return inner_->makeState(); }
  Tensor quantize(const Tensor& x, const formats::QuantizeArgs& args,
                  formats::FormatState* state) const override {
    return inner_->quantize(x, args, state);
  }
  formats::Bf16Quantized quantizeBf16(const Tensor& x, const formats::QuantizeArgs& args,
                                      formats::FormatState* state) const override {
    ++*calls_;
    return fused_ ? inner_->quantizeBf16(x, args, state) : Format::quantizeBf16(x, args, state);
  }
  formats::Encoded encode(const Tensor& x, const formats::QuantizeArgs& args,
                          formats::FormatState* state) const override {
    return inner_->encode(x, args, state);
  }
  Tensor decode(const formats::Encoded& e) const override { return inner_->decode(e); }
  formats::Encoded encodeWithValues(const Tensor& x, const formats::QuantizeArgs& args,
                                    formats::FormatState* state, Tensor& values) const override {
    return inner_->encodeWithValues(x, args, state, values);
  }
  Tensor decodeBf16(const formats::Encoded& e) const override { return inner_->decodeBf16(e); }

 private:
  formats::FormatPtr inner_;
  bool fused_;
  int* calls_;
};

enum class Mode { Real, Fused, Unfused };

/// Activation, weight, error from `spec`s; the rest as the recipe has them.
FormatPolicy policyOf(const std::string& recipe, const std::string& weight,
                      const std::string& activation, const std::string& error, Mode mode,
                      int* calls) {
  FormatPolicy p = FormatPolicy::recipe(recipe);
  auto wrap = [&](const std::string& spec) -> formats::FormatPtr {
    formats::FormatPtr f = formats::parse(spec);
    if (mode == Mode::Real) return f;
    return std::make_shared<Probe>(f, mode == Mode::Fused, calls);
  };
  p.weight = wrap(weight);
  p.activation = wrap(activation);
  p.error = wrap(error);
  return p;
}

std::vector<uint32_t> bitsOf(const Tensor& t) {
  std::vector<uint32_t> out;
  for (float v : t.contiguous().toVector<float>()) out.push_back(std::bit_cast<uint32_t>(v));
  return out;
}

struct Step {
  std::vector<uint32_t> y, gx, gw, gb;
};

enum class Kind { Conv, ConvStrided, Linear };

/// One forward and backward of a fresh layer (same initial weights every time, so the quantizers'
/// stochastic-rounding steps line up) with L = Σ y ⊙ R.
Step trainStep(Kind kind, const FormatPolicy& policy, bool tiny) {
  Rng rng(21);
  std::shared_ptr<nn::Module> layer;
  Shape xShape;
  if (kind == Kind::Linear) {
    layer = std::make_shared<nn::Linear>(70, 33, rng);
    xShape = {5, 70};
  } else if (kind == Kind::Conv) {
    layer = std::make_shared<nn::Conv2d>(6, 8, 3, rng, nn::Conv2dOptions{.padding = 1});
    xShape = {4, 6, 9, 9};  // runs of 81: N, H, W blocks straddle images
  } else {
    layer = std::make_shared<nn::Conv2d>(6, 4, 3, rng,
                                         nn::Conv2dOptions{.stride = 2, .padding = 1, .groups = 2});
    xShape = {3, 6, 11, 11};
  }
  layer->setPolicy(policy);
  Tensor x = Tensor::randn(xShape, rng);
  if (tiny) {
    // The first image far below 2^-126: its blocks quantize to FP32 subnormals (the operands
    // are not exact and those GEMMs run in FP32 on the same values).
    float* p = x.data<float>();
    for (int64_t i = 0; i < x.numel() / xShape[0]; ++i) p[i] = std::ldexp(p[i], -128);
  }
  x.requiresGrad();
  Tensor y = layer->forward(x);
  Tensor r = Tensor::rand(y.shape(), rng, -1.f, 1.f);
  sum(mul(y, r)).backward();
  Step s;
  s.y = bitsOf(y);
  s.gx = bitsOf(x.grad());
  for (auto& [name, t] : layer->namedParameters()) {
    (name == "weight" ? s.gw : s.gb) = bitsOf(t.grad());
  }
  return s;
}

struct Formats {
  const char* recipe;
  const char* weight;
  const char* activation;
  const char* error;
};

const Formats kFormats[] = {
    {"hbfp8", "hbfp8", "hbfp8", "hbfp8"},
    {"hbfp8", "hbfp8:round=stochastic", "hbfp8", "hbfp8:round=stochastic"},
    {"boosters", "hbfp4", "hbfp4", "hbfp4"},
    {"boosters", "hbfp6", "hbfp6", "hbfp6"},  // the first and last layers of the schedule
    {"boosters", "hbfp4:round=stochastic", "hbfp6", "hbfp4:round=stochastic"},
};

/// Restores a process-wide switch on scope exit.
class Switches {
 public:
  Switches(bool bf16Path, bool int8Path) : bf16_(bf16GemmEnabled()), int8_(int8BfpEnabled()) {
    setBf16GemmEnabled(bf16Path);
    setInt8BfpEnabled(int8Path);
  }
  ~Switches() {
    setBf16GemmEnabled(bf16_);
    setInt8BfpEnabled(int8_);
  }

 private:
  bool bf16_, int8_;
};

}  // namespace

TEST_CASE(
    "DotProduct: fused bf16 quantizing leaves a Conv2d and a Linear training step bit-identical") {
  Switches sw(true, false);
  const bool bf16Path = bf16GemmEnabled();  // false on CPUs without AVX-512 BF16
  for (Kind kind : {Kind::Conv, Kind::ConvStrided, Kind::Linear}) {
    for (const Formats& f : kFormats) {
      for (bool tiny : {false, true}) {
        CAPTURE(static_cast<int>(kind));
        const std::string formats = std::string(f.weight) + " " + f.activation + " " + f.error;
        CAPTURE(formats);
        CAPTURE(tiny);
        int fusedCalls = 0, unfusedCalls = 0;
        resetBf16GemmStats();
        const Step real = trainStep(
            kind, policyOf(f.recipe, f.weight, f.activation, f.error, Mode::Real, nullptr), tiny);
        const Bf16GemmStats stats = bf16GemmStats();
        const Step fused = trainStep(
            kind, policyOf(f.recipe, f.weight, f.activation, f.error, Mode::Fused, &fusedCalls),
            tiny);
        const Step unfused = trainStep(
            kind, policyOf(f.recipe, f.weight, f.activation, f.error, Mode::Unfused, &unfusedCalls),
            tiny);
        for (const Step* s : {&fused, &unfused}) {
          CHECK(s->y == real.y);
          CHECK(s->gx == real.gx);
          CHECK(s->gw == real.gw);
          CHECK(s->gb == real.gb);
        }
        CHECK(fusedCalls == unfusedCalls);
        if (bf16Path) {
          // All six operands (x, w twice each, the error twice) are converted.
          CHECK(fusedCalls == 6);
          CHECK(stats.bf16 + stats.inexact + stats.noKernel == 3);
          if (!tiny) CHECK(stats.inexact == 0);
          if (tiny) CHECK(stats.inexact >= 1);
        } else {
          CHECK(fusedCalls == 0);
        }
      }
    }
  }
}

TEST_CASE("DotProduct: no bf16 quantizing where the int8 path or FP32 takes the GEMM") {
  SUBCASE("bf16 path off") {
    Switches sw(false, false);
    int calls = 0;
    trainStep(Kind::Linear, policyOf("hbfp8", "hbfp8", "hbfp8", "hbfp8", Mode::Fused, &calls),
              false);
    CHECK(calls == 0);
  }
  SUBCASE("int8 block-FP path on: Linear runs its three GEMMs on it, nothing is converted") {
    // The int8 path needs the formats themselves (it recognises Hbfp), so no probe here: no
    // bf16 GEMM ran or was tried.
    Switches sw(true, true);
    resetInt8BfpStats();
    resetBf16GemmStats();
    trainStep(Kind::Linear, policyOf("hbfp8", "hbfp8", "hbfp8", "hbfp8", Mode::Real, nullptr),
              false);
    const Int8BfpStats i8 = int8BfpStats();
    CHECK(i8.int8 + i8.inexact == 3);
    const Bf16GemmStats b = bf16GemmStats();
    CHECK(b.bf16 + b.inexact + b.noKernel == 0);
  }
}
