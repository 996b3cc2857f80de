// Shared plumbing of the elementwise grid formats (docs/formats.md "Rounding"): argument
// checks, the round= option and the NaN/Inf policy of formats that have no NaN (FORMATS.md A.5:
// a non-finite input is an error of the run, not something to hide).
#include "formats/detail/GridFormat.h"

#include "core/Error.h"

namespace mantissa::formats::detail {

Rounding takeRounding(SpecKeys& keys) {
  return keys.getChoice("round", "nearest", {"nearest", "stochastic"}) == "stochastic"
             ? Rounding::Stochastic
             : Rounding::NearestEven;
}

std::string roundingSuffix(Rounding r, bool first) {
  if (r == Rounding::NearestEven) return "";
  return std::string(first ? ":" : ",") + "round=stochastic";
}

std::string pointLabel(const QuantizeArgs& args) {
  if (args.pointName.empty()) return "(unnamed quantization point)";
  std::string s(1, '\'');
  s.append(args.pointName);
  s.push_back('\'');
  return s;
}

Tensor checkedInput(const Tensor& x, const std::string& spec, const QuantizeArgs& args) {
  MANTISSA_CHECK(x.defined(), spec, ": undefined tensor at ", pointLabel(args));
  MANTISSA_CHECK(x.dtype() == DType::F32, spec, ": expected an f32 tensor at ", pointLabel(args),
                 ", got ", dtypeName(x.dtype()));
  return x.contiguous();
}

Encoded elementwiseEncoded(std::string spec, const Shape& shape, Tensor codes) {
  Encoded e;
  e.spec = std::move(spec);
  e.shape = shape;
  e.codes = std::move(codes);
  return e;
}

void checkEncoded(const Encoded& e, const std::string& spec, DType dtype) {
  MANTISSA_CHECK(e.spec == spec, spec, ": cannot decode codes produced by '", e.spec, "'");
  MANTISSA_CHECK(e.codes.defined() && e.codes.dtype() == dtype, spec, ": codes must be ",
                 dtypeName(dtype), ", got ",
                 e.codes.defined() ? dtypeName(e.codes.dtype()) : std::string("none"));
  MANTISSA_CHECK(e.codes.numel() == numelOf(e.shape), spec, ": ", e.codes.numel(),
                 " codes for a tensor of shape ", toString(e.shape));
}

Tensor GridFormat::quantize(const Tensor& x, const QuantizeArgs& args, FormatState*) const {
  std::string s = spec();
  Tensor in = checkedInput(x, s, args);
  Tensor out = Tensor::uninitialized(in.shape());
  int64_t bad = quantizeGrid(in.data<float>(), out.data<float>(), in.numel(), grid_, rounding_,
                             args.seed, args.stream, args.step, args.stats);
  MANTISSA_CHECK(grid_.hasNan || bad == 0, s, ": ", bad, " non-finite input value(s) at ",
                 pointLabel(args), " (the format has no Inf/NaN)");
  return out;
}

}  // namespace mantissa::formats::detail
