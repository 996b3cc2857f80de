// Flexpoint flexN+M: Köster et al., "Flexpoint: An Adaptive Numerical Format for Efficient
// Training of Deep Neural Networks", NIPS 2017; FORMATS.md §2; docs/formats.md "Flexpoint".
// Rounding: RNE (PTX cvt.rni in the reference GPU kernels). Overflow: saturation to the N-bit
// two's-complement range [-2^(N-1), 2^(N-1) - 1]; Autoflex sees it (maxabs >= 2^(N-1) - 1) and
// grows the exponent for the next write, the saturated write itself is kept. No NaN/Inf: a
// non-finite input is an error naming the quantization point.
#include "formats/Flexpoint.h"

#include <charconv>
#include <cmath>
#include <regex>

#include "core/Error.h"
#include "core/parallel/ParallelFor.h"
#include "formats/detail/Factories.h"
#include "formats/detail/FlexpointKernels.h"
#include "formats/detail/KernelIsa.h"

namespace mantissa::formats {

namespace {

/// Shortest text that parses back to the same double ("3", "100", "2.5").
std::string numberText(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, end);
}

double defaultRareMargin(int bits) { return std::ldexp(1.0, bits - 4); }
int defaultDecMax(int exponentBits) { return 1 << exponentBits; }

DType codeType(int bits) { return bits <= 8 ? DType::I8 : bits <= 16 ? DType::I16 : DType::I32; }

void checkInput(const Tensor& x, const std::string& spec, const QuantizeArgs& args) {
  MANTISSA_CHECK(x.dtype() == DType::F32, spec, " at '", args.pointName,
                 "': input must be f32, got ", dtypeName(x.dtype()));
}

void checkFinite(const detail::FlexPass& r, const std::string& spec, const QuantizeArgs& args) {
  MANTISSA_CHECK(r.nonFinite == 0, spec, " at '", args.pointName, "': ", r.nonFinite,
                 " non-finite input value(s) (NaN/Inf); Flexpoint has no NaN or Inf");
}

void addStats(const QuantizeArgs& args, int64_t n, const detail::FlexPass& r) {
  if (!args.stats) return;
  args.stats->count += n;
  args.stats->saturated += r.saturated;
  args.stats->flushed += r.flushed;
  args.stats->nonFinite += r.nonFinite;
}

/// Runs one write: picks the exponent from the state (initialisation search on this tensor if
/// needed), lets `write(dec)` produce the output, then advances the state. The state is only
/// changed when the write succeeded.
template <class Write>
int writeWithAutoflex(const Flexpoint& f, const float* x, int64_t n, const QuantizeArgs& args,
                      FormatState* state, const Write& write) {
  Autoflex* af = nullptr;
  std::unique_ptr<FormatState> scratch;
  if (state) {
    af = dynamic_cast<Autoflex*>(state);
    MANTISSA_CHECK(af != nullptr, f.spec(), " at '", args.pointName,
                   "': the state is not an Autoflex state (use the format's makeState())");
  } else {
    scratch = f.makeState();
    af = static_cast<Autoflex*>(scratch.get());
  }
  const auto isa = detail::bestKernelIsa();
  const int bits = f.mantissaBits();
  if (n == 0) return af->nextDec();  // nothing written: the state does not change
  Autoflex next = *af;  // work on a copy: a failing write leaves the caller's state unchanged
  if (!next.initialized()) {
    detail::FlexPass scan = detail::flexScan(x, n, isa);
    checkFinite(scan, f.spec(), args);
    // In emulation each "rerun" of the search re-quantizes the same values; max|M| at a given
    // exponent follows from the tensor's min and max because RNE is monotone.
    next.initialize([&](int dec) {
      return detail::flexMaxabs(scan.minValue, scan.maxValue, dec, bits);
    });
  }
  int dec = next.nextDec();
  detail::FlexPass r = write(dec);
  checkFinite(r, f.spec(), args);
  next.recordWrite(detail::flexMaxabs(r.minValue, r.maxValue, dec, bits), args.step);
  *af = next;
  addStats(args, n, r);
  return dec;
}

}  // namespace

Flexpoint::Flexpoint(FlexpointOptions options) : options_(options) {
  MANTISSA_CHECK(options_.exponentBits >= 1 && options_.exponentBits <= 6,
                 "flexpoint: exponent bits must be in [1, 6], got ", options_.exponentBits);
  const AutoflexConfig& c = options_.autoflex;
  MANTISSA_CHECK(c.decMin >= -100 && c.decMax <= 100, "flexpoint: dec range [", c.decMin, ", ",
                 c.decMax, "] must lie within [-100, 100]");
  Autoflex check(c);  // validates the remaining constants
}

std::string Flexpoint::spec() const {
  const AutoflexConfig& c = options_.autoflex;
  const AutoflexConfig d{};
  std::string s = "flex" + std::to_string(c.mantissaBits) + "+" +
                  std::to_string(options_.exponentBits);
  std::string keys;
  auto add = [&](const char* key, const std::string& value) {
    if (!keys.empty()) keys.push_back(',');
    keys.append(key).append("=").append(value);
  };
  if (c.history != d.history) add("history", std::to_string(c.history));
  if (c.sigmas != d.sigmas) add("sigmas", numberText(c.sigmas));
  if (c.margin != d.margin) add("margin", numberText(c.margin));
  if (c.rareMargin != defaultRareMargin(c.mantissaBits)) add("rare_margin", numberText(c.rareMargin));
  if (c.initDec != d.initDec) add("init_dec", std::to_string(c.initDec));
  if (c.initTries != d.initTries) add("init_tries", std::to_string(c.initTries));
  if (c.decMin != d.decMin) add("dec_min", std::to_string(c.decMin));
  if (c.decMax != defaultDecMax(options_.exponentBits)) add("dec_max", std::to_string(c.decMax));
  return keys.empty() ? s : s + ":" + keys;
}

double Flexpoint::bitsPerValue(const Shape& shape, int64_t) const {
  int64_t n = numelOf(shape);
  return mantissaBits() + (n > 0 ? static_cast<double>(options_.exponentBits) / n : 0.0);
}

std::unique_ptr<FormatState> Flexpoint::makeState() const {
  return std::make_unique<Autoflex>(options_.autoflex);
}

Tensor Flexpoint::quantize(const Tensor& x, const QuantizeArgs& args, FormatState* state) const {
  checkInput(x, spec(), args);
  Tensor xc = x.contiguous();
  Tensor out = Tensor::uninitialized(x.shape());
  const float* xp = xc.data<float>();
  float* op = out.data<float>();
  const int64_t n = xc.numel();
  writeWithAutoflex(*this, xp, n, args, state, [&](int dec) {
    return detail::flexQuantize(xp, op, n, dec, mantissaBits(), detail::bestKernelIsa());
  });
  return out;
}

Tensor Flexpoint::quantizeWithDec(const Tensor& x, int dec, const QuantizeArgs& args) const {
  checkInput(x, spec(), args);
  MANTISSA_CHECK(dec >= options_.autoflex.decMin && dec <= options_.autoflex.decMax, spec(),
                 ": dec ", dec, " outside [", options_.autoflex.decMin, ", ",
                 options_.autoflex.decMax, "]");
  Tensor xc = x.contiguous();
  Tensor out = Tensor::uninitialized(x.shape());
  detail::FlexPass r = detail::flexQuantize(xc.data<float>(), out.data<float>(), xc.numel(), dec,
                                            mantissaBits(), detail::bestKernelIsa());
  checkFinite(r, spec(), args);
  addStats(args, xc.numel(), r);
  return out;
}

Encoded Flexpoint::encode(const Tensor& x, const QuantizeArgs& args, FormatState* state) const {
  return encodeInto(x, args, state, nullptr);
}

Encoded Flexpoint::encodeWithValues(const Tensor& x, const QuantizeArgs& args, FormatState* state,
                                    Tensor& values) const {
  return encodeInto(x, args, state, &values);
}

Encoded Flexpoint::encodeInto(const Tensor& x, const QuantizeArgs& args, FormatState* state,
                              Tensor* values) const {
  checkInput(x, spec(), args);
  Tensor xc = x.contiguous();
  const float* xp = xc.data<float>();
  const int64_t n = xc.numel();
  Encoded e;
  e.spec = spec();
  e.shape = x.shape();
  e.blockAxis = -1;
  e.codes = Tensor::uninitialized(x.shape(), codeType(mantissaBits()));
  // The values (codes * 2^-dec, as decode computes them) in the same pass when asked for.
  if (values) *values = Tensor::uninitialized(x.shape());
  float* vp = values ? values->data<float>() : nullptr;
  int dec = writeWithAutoflex(*this, xp, n, args, state, [&](int d) {
    const auto isa = detail::bestKernelIsa();
    const int b = mantissaBits();
    switch (e.codes.dtype()) {
      case DType::I8: return detail::flexQuantize(xp, e.codes.data<int8_t>(), n, d, b, isa, vp);
      case DType::I16: return detail::flexQuantize(xp, e.codes.data<int16_t>(), n, d, b, isa, vp);
      default: return detail::flexQuantize(xp, e.codes.data<int32_t>(), n, d, b, isa, vp);
    }
  });
  e.exponents = Tensor::fromInts({dec}, {1}).to(DType::I16);
  // Real widths for packedBytes(): N-bit mantissas, an M-bit exponent (as bitsPerValue counts).
  e.codeBits = mantissaBits();
  e.exponentBits = options_.exponentBits;
  return e;
}

Tensor Flexpoint::decode(const Encoded& e) const {
  MANTISSA_CHECK(e.spec == spec(), "decode: codes of '", e.spec, "' given to ", spec());
  MANTISSA_CHECK(e.codes.defined() && e.codes.dtype() == codeType(mantissaBits()) &&
                     e.codes.numel() == numelOf(e.shape),
                 spec(), " decode: codes must be ", dtypeName(codeType(mantissaBits())), " with ",
                 numelOf(e.shape), " elements");
  MANTISSA_CHECK(e.exponents.defined() && e.exponents.numel() == 1, spec(),
                 " decode: expected one shared exponent");
  int dec = static_cast<int>(e.exponents.at({0}));
  MANTISSA_CHECK(dec >= -100 && dec <= 100, spec(), " decode: dec ", dec, " out of range");
  const float down = std::ldexp(1.0f, -dec);
  Tensor codes = e.codes.contiguous();
  Tensor out = Tensor::uninitialized(e.shape);
  float* op = out.data<float>();
  const int64_t n = codes.numel();
  auto run = [&](const auto* c) {
    parallelFor(0, n, 1 << 16, [&](int64_t b, int64_t e2) {
      for (int64_t i = b; i < e2; ++i) op[i] = static_cast<float>(c[i]) * down;
    });
  };
  switch (codes.dtype()) {
    case DType::I8: run(codes.data<int8_t>()); break;
    case DType::I16: run(codes.data<int16_t>()); break;
    default: run(codes.data<int32_t>()); break;
  }
  return out;
}

namespace detail {

FormatPtr makeFlexpoint(SpecKeys& keys) {
  static const std::regex kHead(R"(flex(\d{1,2})\+(\d{1,2}))");
  std::smatch m;
  const std::string& head = keys.head();
  MANTISSA_CHECK(std::regex_match(head, m, kHead), "format spec '", keys.spec(),
                 "': expected flex<N>+<M> such as flex16+5 (N mantissa bits in [4, 24], M "
                 "exponent bits in [1, 6])");
  int bits = std::stoi(m[1].str()), expBits = std::stoi(m[2].str());
  MANTISSA_CHECK(bits >= 4 && bits <= 24, "format spec '", keys.spec(), "': mantissa width ", bits,
                 " outside [4, 24]");
  MANTISSA_CHECK(expBits >= 1 && expBits <= 6, "format spec '", keys.spec(),
                 "': exponent width ", expBits, " outside [1, 6]");
  FlexpointOptions o;
  o.exponentBits = expBits;
  AutoflexConfig& c = o.autoflex;
  c.mantissaBits = bits;
  c.history = static_cast<int>(keys.getInt("history", c.history, 1, 1024));
  c.sigmas = keys.getDouble("sigmas", c.sigmas, 0.0, 1000.0);
  c.margin = keys.getDouble("margin", c.margin, 0.0, 16777216.0);
  c.rareMargin = keys.getDouble("rare_margin", defaultRareMargin(bits), 0.0, 16777216.0);
  c.initDec = static_cast<int>(keys.getInt("init_dec", c.initDec, -100, 100));
  c.initTries = static_cast<int>(keys.getInt("init_tries", c.initTries, 1, 1000));
  c.decMin = static_cast<int>(keys.getInt("dec_min", c.decMin, -100, 100));
  c.decMax = static_cast<int>(keys.getInt("dec_max", defaultDecMax(expBits), -100, 100));
  keys.finish({"history", "sigmas", "margin", "rare_margin", "init_dec", "init_tries", "dec_min",
               "dec_max"});
  MANTISSA_CHECK(c.decMin <= c.decMax, "format spec '", keys.spec(), "': dec_min ", c.decMin,
                 " > dec_max ", c.decMax);
  return std::make_shared<Flexpoint>(o);
}

}  // namespace detail

}  // namespace mantissa::formats
