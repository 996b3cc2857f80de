// FFP8, the "all-you-can-fit" flexible 8-bit float (docs/formats.md "ffp8"; Huang, Chen and
// Huang 2021, arXiv 2104.07329; FORMATS.md A.1, A.4 and Part B §5). Layout [s][e][f] with any
// bias; no Inf/NaN. Rounding: RNE on the shared grid. Overflow: saturating to ±max (the paper's
// choice); unsigned formats clamp negative inputs to 0. Non-finite input is an error (A.5).
// The bias range is limited to what FP32 can emulate exactly (min normal >= 2^-126, max < 2^128).
#include "formats/Ffp8.h"

#include <cmath>
#include <mutex>
#include <sstream>

#include "core/parallel/ParallelFor.h"
#include "formats/detail/Factories.h"

namespace mantissa::formats {

// ---- parameters -------------------------------------------------------------------------------

std::string Ffp8Params::spec() const {
  return "ffp8:e=" + std::to_string(e) + ",f=" + std::to_string(f) + ",b=" + std::to_string(b) +
         ",s=" + std::to_string(s);
}

detail::MiniFloat Ffp8Params::layout() const {
  return detail::MiniFloat{s, e, f, b, detail::Specials::None};
}

float Ffp8Params::maxValue() const { return layout().maxFinite(); }

std::pair<int, int> Ffp8Params::biasRange(int e) {
  return {e >= 1 ? (1 << e) - 128 : -126, 127};
}

void Ffp8Params::validate(const std::string& context) const {
  MANTISSA_CHECK(s == 0 || s == 1, context, ": s=", s, " must be 0 or 1");
  MANTISSA_CHECK(e >= 0 && e <= 7, context, ": e=", e, " out of range (allowed: 0..7)");
  MANTISSA_CHECK(f >= 0 && s + e + f == 8, context, ": s + e + f must be 8 (s=", s, ", e=", e,
                 ", f=", f, " gives ", s + e + f, ")");
  auto [lo, hi] = biasRange(e);
  MANTISSA_CHECK(b >= lo && b <= hi, context, ": b=", b, " out of range for e=", e,
                 " (allowed: integer in [", lo, ", ", hi, "], the biases FP32 can emulate)");
}

// ---- fixed format -----------------------------------------------------------------------------

namespace {
Ffp8Params validated(Ffp8Params p) {
  p.validate(p.spec());
  return p;
}
}  // namespace

Ffp8::Ffp8(Ffp8Params params)
    : GridFormat(validated(params).layout().grid(true), Rounding::NearestEven), params_(params) {}

Encoded Ffp8::encode(const Tensor& x, const QuantizeArgs& args, FormatState* state) const {
  Tensor q;
  return encodeWithValues(x, args, state, q);
}

Encoded Ffp8::encodeWithValues(const Tensor& x, const QuantizeArgs& args, FormatState* state,
                               Tensor& q) const {
  q = quantize(x, args, state);
  Tensor codes = Tensor::uninitialized(q.shape(), DType::U8);
  detail::encodeMiniFloat(q.data<float>(), codes.data<uint8_t>(), q.numel(), params_.layout());
  return detail::elementwiseEncoded(spec(), q.shape(), codes);
}

Tensor Ffp8::decodeBf16(const Encoded& e) const {
  detail::checkEncoded(e, spec(), DType::U8);
  Tensor codes = e.codes.contiguous();
  Tensor out = Tensor::uninitialized(e.shape, DType::U16);
  detail::decodeMiniFloatBf16(codes.data<uint8_t>(), out.data<uint16_t>(), out.numel(),
                              params_.layout());
  return out;
}

Tensor Ffp8::decode(const Encoded& e) const {
  detail::checkEncoded(e, spec(), DType::U8);
  Tensor codes = e.codes.contiguous();
  Tensor out = Tensor::uninitialized(e.shape);
  detail::decodeMiniFloat(codes.data<uint8_t>(), out.data<float>(), out.numel(),
                          params_.layout());
  return out;
}

// ---- calibration (A.4) ------------------------------------------------------------------------

namespace {

// Largest bias whose max representable value covers maxAbs (a larger bias means a finer grid),
// clamped to the emulable range; an all-zero tensor gets the finest grid.
int coveringBias(int s, int e, int f, double maxAbs) {
  auto [lo, hi] = Ffp8Params::biasRange(e);
  for (int b = hi; b >= lo; --b) {
    if (static_cast<double>(Ffp8Params{s, e, f, b}.maxValue()) >= maxAbs) return b;
  }
  return lo;
}

double meanSquaredError(const std::vector<float>& v, const Ffp8Params& p) {
  std::vector<float> q(v.size());
  detail::quantizeGrid(v.data(), q.data(), static_cast<int64_t>(v.size()), p.layout().grid(true),
                       Rounding::NearestEven, 0, 0, 0, nullptr);
  double total = 0.0;
  std::mutex mu;
  parallelFor(0, static_cast<int64_t>(v.size()), 1 << 15, [&](int64_t b, int64_t e) {
    double acc = 0.0;
    for (int64_t i = b; i < e; ++i) {
      double d = static_cast<double>(q[i]) - static_cast<double>(v[i]);
      acc += d * d;
    }
    std::lock_guard<std::mutex> lock(mu);
    total += acc;
  });
  return v.empty() ? 0.0 : total / static_cast<double>(v.size());
}

}  // namespace

Ffp8Calibration calibrateFfp8(const std::vector<Tensor>& samples) {
  MANTISSA_CHECK(!samples.empty(), "calibrateFfp8: no sample tensors");
  std::vector<float> values;
  for (size_t i = 0; i < samples.size(); ++i) {
    const Tensor& t = samples[i];
    MANTISSA_CHECK(t.defined() && t.dtype() == DType::F32, "calibrateFfp8: sample ", i,
                   " is not an f32 tensor");
    std::vector<float> v = t.toVector<float>();
    for (float x : v) {
      MANTISSA_CHECK(std::isfinite(x), "calibrateFfp8: sample ", i,
                     " holds a non-finite value (", x, "); FFP8 has no Inf/NaN");
    }
    values.insert(values.end(), v.begin(), v.end());
  }
  MANTISSA_CHECK(!values.empty(), "calibrateFfp8: the samples hold no values");

  Ffp8Calibration cal;
  cal.count = static_cast<int64_t>(values.size());
  cal.nonNegative = true;
  for (float x : values) {
    cal.nonNegative = cal.nonNegative && !(x < 0.f);
    cal.maxAbs = std::max(cal.maxAbs, static_cast<double>(std::fabs(x)));
  }
  // Huang et al.: a tensor known to be non-negative (post-ReLU) gives its sign bit to the
  // fraction.
  int s = cal.nonNegative ? 0 : 1;
  for (int e = 1; e <= 7; ++e) {
    int f = 8 - s - e;
    Ffp8Params p{s, e, f, coveringBias(s, e, f, cal.maxAbs)};
    cal.candidates.push_back({p, meanSquaredError(values, p)});
  }
  cal.best = cal.candidates.front().params;
  cal.mse = cal.candidates.front().mse;
  for (const auto& c : cal.candidates) {
    if (c.mse < cal.mse) {  // strict: ties keep the configuration with more fraction bits
      cal.best = c.params;
      cal.mse = c.mse;
    }
  }
  return cal;
}

// ---- ffp8:auto --------------------------------------------------------------------------------

std::unique_ptr<FormatState> Ffp8AutoState::clone() const {
  return std::make_unique<Ffp8AutoState>(*this);
}

void Ffp8AutoState::saveState(io::StateDict& out, const std::string& prefix) const {
  Ffp8Params p = chosen.value_or(Ffp8Params{});
  out.tensors[prefix + "ffp8_params"] =
      Tensor::fromInts({chosen.has_value() ? 1 : 0, p.s, p.e, p.f, p.b}, {5});
  out.tensors[prefix + "ffp8_mse"] = Tensor::full({1}, mse, DType::F64);
}

void Ffp8AutoState::loadState(const io::StateDict& in, const std::string& prefix) {
  const Tensor& t = in.tensor(prefix + "ffp8_params");
  MANTISSA_CHECK(t.numel() == 5, "ffp8:auto state '", prefix, "ffp8_params': expected 5 values, got ",
                 t.numel());
  std::vector<int64_t> v = t.toVector<int64_t>();
  if (v[0] != 0) {
    Ffp8Params p{static_cast<int>(v[1]), static_cast<int>(v[2]), static_cast<int>(v[3]),
                 static_cast<int>(v[4])};
    p.validate("ffp8:auto state '" + prefix + "ffp8_params'");
    chosen = p;
  } else {
    chosen.reset();
  }
  mse = in.tensor(prefix + "ffp8_mse").item<double>();
}

std::string Ffp8AutoState::describe() const {
  if (!chosen) return "not calibrated yet";
  std::ostringstream os;
  os << chosen->spec() << " mse=" << mse;
  return os.str();
}

std::vector<std::pair<std::string, double>> Ffp8AutoState::metrics() const {
  if (!chosen) return {{"calibrated", 0.0}};
  return {{"calibrated", 1.0}, {"sign_bits", chosen->s}, {"exponent_bits", chosen->e},
          {"fraction_bits", chosen->f}, {"bias", chosen->b}, {"mse", mse}};
}

std::unique_ptr<FormatState> Ffp8Auto::makeState() const {
  return std::make_unique<Ffp8AutoState>();
}

Ffp8 Ffp8Auto::resolve(const Tensor& x, const QuantizeArgs& args, FormatState* state) const {
  auto* st = dynamic_cast<Ffp8AutoState*>(state);
  MANTISSA_CHECK(st != nullptr, "ffp8:auto at ", detail::pointLabel(args),
                 " needs the state from makeState() (it stores the calibrated configuration)");
  if (!st->chosen) {
    Tensor in = detail::checkedInput(x, spec(), args);
    const float* p = in.data<float>();
    for (int64_t i = 0; i < in.numel(); ++i) {
      MANTISSA_CHECK(std::isfinite(p[i]), "ffp8:auto: non-finite input value at ",
                     detail::pointLabel(args), " (the format has no Inf/NaN)");
    }
    Ffp8Calibration cal = calibrateFfp8({in});
    st->chosen = cal.best;
    st->mse = cal.mse;
  }
  return Ffp8(*st->chosen);
}

Tensor Ffp8Auto::quantize(const Tensor& x, const QuantizeArgs& args, FormatState* state) const {
  // An empty tensor has nothing to calibrate on; it must not fix the configuration.
  if (x.defined() && x.numel() == 0) return detail::checkedInput(x, spec(), args).clone();
  return resolve(x, args, state).quantize(x, args);
}

Encoded Ffp8Auto::encode(const Tensor& x, const QuantizeArgs& args, FormatState* state) const {
  if (x.defined() && x.numel() == 0) {
    return detail::elementwiseEncoded(spec(), x.shape(), Tensor::uninitialized(x.shape(), DType::U8));
  }
  return resolve(x, args, state).encode(x, args);
}

Encoded Ffp8Auto::encodeWithValues(const Tensor& x, const QuantizeArgs& args, FormatState* state,
                                   Tensor& values) const {
  if (x.defined() && x.numel() == 0) {
    values = quantize(x, args, state);
    return encode(x, args, state);
  }
  return resolve(x, args, state).encodeWithValues(x, args, nullptr, values);
}

Tensor Ffp8Auto::decode(const Encoded& e) const {
  if (e.spec == spec() && numelOf(e.shape) == 0) return Tensor::uninitialized(e.shape);
  FormatPtr f = parse(e.spec);
  auto* fixed = dynamic_cast<const Ffp8*>(f.get());
  MANTISSA_CHECK(fixed != nullptr, "ffp8:auto: cannot decode codes produced by '", e.spec,
                 "' (expected a fixed ffp8 spec)");
  return fixed->decode(e);
}

Tensor Ffp8Auto::decodeBf16(const Encoded& e) const {
  if (e.spec == spec() && numelOf(e.shape) == 0) return Tensor::uninitialized(e.shape, DType::U16);
  FormatPtr f = parse(e.spec);
  auto* fixed = dynamic_cast<const Ffp8*>(f.get());
  MANTISSA_CHECK(fixed != nullptr, "ffp8:auto: cannot decode codes produced by '", e.spec,
                 "' (expected a fixed ffp8 spec)");
  return fixed->decodeBf16(e);
}

namespace detail {
FormatPtr makeFfp8(SpecKeys& keys) {
  if (keys.takeFlag("auto")) {
    keys.finish({"auto"});
    return std::make_shared<Ffp8Auto>();
  }
  MANTISSA_CHECK(keys.has("e") && keys.has("b"), "format spec '", keys.spec(),
                 "': ffp8 needs e=<exponent bits> and b=<bias> (keys: e, f, b, s; f defaults to "
                 "8 - s - e, s to 1), or 'ffp8:auto'");
  int s = static_cast<int>(keys.getInt("s", 1, 0, 1));
  int e = static_cast<int>(keys.getInt("e", 4, 0, 8 - s == 8 ? 7 : 8 - s));
  int f = static_cast<int>(keys.getInt("f", 8 - s - e, 0, 8 - s));
  auto [lo, hi] = Ffp8Params::biasRange(e);
  int b = static_cast<int>(keys.getInt("b", 0, lo, hi));
  keys.finish({"e", "f", "b", "s", "auto"});
  Ffp8Params p{s, e, f, b};
  p.validate("format spec '" + keys.spec() + "'");
  return std::make_shared<Ffp8>(p);
}
}  // namespace detail

}  // namespace mantissa::formats
