// S2FP8: Cambier et al., "Shifted and Squeezed 8-bit Floating Point Format for Low-Precision
// Training of Deep Neural Networks", ICLR 2020; FORMATS.md §4, §10.5; docs/formats.md "S2FP8".
// Rounding: RNE of the exact map 2^beta |x|^alpha onto E5M2 (max 57344, subnormals down to
// 2^-16). Overflow cannot happen: the largest magnitude maps to 2^15. Small magnitudes may
// round to zero (counted as flushed). NaN stays NaN and ±Inf stays ±Inf (A.5: E5M2 has both).
#include "formats/S2fp8.h"

#include <array>
#include <cmath>
#include <sstream>

#include "core/Error.h"
#include "formats/detail/Factories.h"
#include "formats/detail/Grid.h"
#include "formats/detail/S2fp8Kernels.h"

namespace mantissa::formats {

namespace {

/// Below this spread of log2 magnitudes the statistics cannot tell the values apart (the mean is
/// accurate to ~1e-7), so the tensor is treated as constant magnitude.
constexpr double kMinSpread = 0x1p-20;

S2fp8Params paramsFromScan(const detail::S2fp8Scan& s) {
  S2fp8Params p;
  p.count = s.count;
  if (s.count == 0) return p;  // all zero (or non-finite): alpha = 1, beta = 0
  p.meanLog2 = s.meanLog2();
  p.maxLog2 = std::log2(static_cast<double>(s.maxAbs));
  double spread = p.maxLog2 - p.meanLog2;
  if (!(spread >= kMinSpread) || s.minAbs == s.maxAbs) {
    p.alpha = 1.0f;
    p.beta = static_cast<float>(-p.maxLog2);
    return p;
  }
  double alpha = 15.0 / spread;
  p.alpha = static_cast<float>(alpha);
  p.beta = static_cast<float>(-alpha * p.meanLog2);
  return p;
}

void checkInput(const Tensor& x, const QuantizeArgs& args) {
  MANTISSA_CHECK(x.dtype() == DType::F32, "s2fp8 at '", args.pointName,
                 "': input must be f32, got ", dtypeName(x.dtype()));
}

S2fp8State* stateOf(FormatState* state, const QuantizeArgs& args) {
  if (!state) return nullptr;
  auto* s = dynamic_cast<S2fp8State*>(state);
  MANTISSA_CHECK(s != nullptr, "s2fp8 at '", args.pointName,
                 "': the state is not an S2FP8 state (use the format's makeState())");
  return s;
}

Tensor scalarF64(double v) {
  Tensor t = Tensor::uninitialized({1}, DType::F64);
  t.data<double>()[0] = v;
  return t;
}

double readScalar(const io::StateDict& in, const std::string& key) {
  const Tensor& t = in.tensor(key);
  MANTISSA_CHECK(t.numel() == 1, "state: '", key, "' must hold one value, got ", t.numel());
  return t.at(std::vector<int64_t>(t.shape().size(), 0));
}

}  // namespace

void S2fp8State::record(const S2fp8Params& p) {
  last_ = p;
  conversions_ += 1;
}

std::unique_ptr<FormatState> S2fp8State::clone() const { return std::make_unique<S2fp8State>(*this); }

void S2fp8State::saveState(io::StateDict& out, const std::string& prefix) const {
  out.tensors[prefix + "alpha"] = scalarF64(last_.alpha);
  out.tensors[prefix + "beta"] = scalarF64(last_.beta);
  out.tensors[prefix + "mean_log2"] = scalarF64(last_.meanLog2);
  out.tensors[prefix + "max_log2"] = scalarF64(last_.maxLog2);
  out.tensors[prefix + "count"] = Tensor::fromInts({last_.count}, {1});
  out.tensors[prefix + "conversions"] = Tensor::fromInts({conversions_}, {1});
}

void S2fp8State::loadState(const io::StateDict& in, const std::string& prefix) {
  S2fp8Params p;
  p.alpha = static_cast<float>(readScalar(in, prefix + "alpha"));
  p.beta = static_cast<float>(readScalar(in, prefix + "beta"));
  p.meanLog2 = readScalar(in, prefix + "mean_log2");
  p.maxLog2 = readScalar(in, prefix + "max_log2");
  p.count = static_cast<int64_t>(readScalar(in, prefix + "count"));
  MANTISSA_CHECK(std::isfinite(p.alpha) && p.alpha > 0 && std::isfinite(p.beta), "state: '",
                 prefix, "': invalid S2FP8 alpha ", p.alpha, " / beta ", p.beta);
  last_ = p;
  conversions_ = static_cast<int64_t>(readScalar(in, prefix + "conversions"));
}

std::string S2fp8State::describe() const {
  std::ostringstream os;
  os << "alpha=" << last_.alpha << " beta=" << last_.beta << " conversions=" << conversions_;
  return os.str();
}

std::vector<std::pair<std::string, double>> S2fp8State::metrics() const {
  return {{"alpha", last_.alpha},
          {"beta", last_.beta},
          {"mean_log2", last_.meanLog2},
          {"max_log2", last_.maxLog2}};
}

double S2fp8::bitsPerValue(const Shape& shape, int64_t) const {
  int64_t n = numelOf(shape);
  return 8.0 + (n > 0 ? 64.0 / static_cast<double>(n) : 0.0);
}

std::unique_ptr<FormatState> S2fp8::makeState() const { return std::make_unique<S2fp8State>(); }

S2fp8Params S2fp8::paramsFor(const Tensor& x) {
  MANTISSA_CHECK(x.dtype() == DType::F32, "s2fp8: input must be f32, got ", dtypeName(x.dtype()));
  Tensor xc = x.contiguous();
  return paramsFromScan(detail::s2fp8Scan(xc.data<float>(), xc.numel(), detail::bestKernelIsa()));
}

S2fp8Params S2fp8::convert(const Tensor& x, const QuantizeArgs& args, FormatState* state,
                           Tensor* values, Tensor* codes) const {
  checkInput(x, args);
  S2fp8State* st = stateOf(state, args);
  Tensor xc = x.contiguous();
  const auto isa = detail::bestKernelIsa();
  detail::S2fp8Scan scan = detail::s2fp8Scan(xc.data<float>(), xc.numel(), isa);
  S2fp8Params p = paramsFromScan(scan);
  detail::S2fp8Tables t = detail::s2fp8Tables(p.alpha, p.beta);
  // Codes and values in the same pass: the map writes both bit for bit as decode would.
  if (values) *values = Tensor::uninitialized(x.shape());
  if (codes) *codes = Tensor::uninitialized(x.shape(), DType::U8);
  int64_t nonZero = detail::s2fp8Map(xc.data<float>(), values ? values->data<float>() : nullptr,
                                     codes ? codes->data<uint8_t>() : nullptr, xc.numel(), t, isa,
                                     scan.nonFinite > 0);
  if (st) st->record(p);
  if (args.stats) {
    args.stats->count += xc.numel();
    args.stats->flushed += detail::s2fp8Flushed(scan, nonZero);
    args.stats->nonFinite += scan.nonFinite;
  }
  return p;
}

Tensor S2fp8::quantize(const Tensor& x, const QuantizeArgs& args, FormatState* state) const {
  Tensor out;
  convert(x, args, state, &out, nullptr);
  return out;
}

Encoded S2fp8::encode(const Tensor& x, const QuantizeArgs& args, FormatState* state) const {
  return encodeInto(x, args, state, nullptr);
}

Encoded S2fp8::encodeWithValues(const Tensor& x, const QuantizeArgs& args, FormatState* state,
                                Tensor& values) const {
  return encodeInto(x, args, state, &values);
}

Encoded S2fp8::encodeInto(const Tensor& x, const QuantizeArgs& args, FormatState* state,
                          Tensor* values) const {
  Encoded e;
  e.spec = spec();
  e.shape = x.shape();
  S2fp8Params p = convert(x, args, state, values, &e.codes);
  e.scalars = {p.alpha, p.beta};
  return e;
}

Tensor S2fp8::decode(const Encoded& e) const {
  MANTISSA_CHECK(e.spec == spec(), "decode: codes of '", e.spec, "' given to s2fp8");
  MANTISSA_CHECK(e.codes.defined() && e.codes.dtype() == DType::U8 &&
                     e.codes.numel() == numelOf(e.shape),
                 "s2fp8 decode: codes must be u8 with ", numelOf(e.shape), " elements");
  MANTISSA_CHECK(e.scalars.size() == 2, "s2fp8 decode: expected scalars {alpha, beta}, got ",
                 e.scalars.size());
  float alpha = static_cast<float>(e.scalars[0]), beta = static_cast<float>(e.scalars[1]);
  MANTISSA_CHECK(std::isfinite(alpha) && alpha > 0 && std::isfinite(beta),
                 "s2fp8 decode: invalid alpha ", e.scalars[0], " / beta ", e.scalars[1]);
  detail::S2fp8Tables t = detail::s2fp8Tables(alpha, beta);
  // All 256 codes: sign bit, then magnitude code; 0x7C = Inf, 0x7D..0x7F = NaN.
  std::array<float, 256> table;
  for (int c = 0; c < 256; ++c) {
    int mag = c & 0x7f;
    float v = mag < detail::kE5M2FiniteCodes ? t.values[mag] : mag == 0x7c ? INFINITY : NAN;
    table[c] = (c & 0x80) ? -v : v;
  }
  Tensor codes = e.codes.contiguous();
  Tensor out = Tensor::uninitialized(e.shape);
  detail::decodeTable(codes.data<uint8_t>(), out.data<float>(), codes.numel(), table);
  return out;
}

namespace detail {

FormatPtr makeS2fp8(SpecKeys& keys) {
  MANTISSA_CHECK(keys.head() == "s2fp8", "format spec '", keys.spec(), "': expected s2fp8");
  keys.finish({});
  return std::make_shared<S2fp8>();
}

}  // namespace detail

}  // namespace mantissa::formats
