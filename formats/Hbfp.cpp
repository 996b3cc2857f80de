// HBFP hbfpN: Drumond et al., "Training DNNs with Hybrid Block Floating Point", NeurIPS 2018
// (parsa-epfl/HBFPEmulator); Harma et al., "Accuracy Boosters" (hbfp4/hbfp6); FORMATS.md A.3,
// §3; docs/formats.md "HBFP". Rounding: RNE (emulator "determ") or stochastic
// floor(x/ulp + U). Overflow: the mantissa saturates to ±(2^(N-1) - 1) (a block max that is an
// exact power of two becomes 2^e - ulp). Deviation from the emulator: no eps in the exponent
// (A.3); instead the 8-bit shared exponent is clamped below at -126. No NaN/Inf.
#include "formats/Hbfp.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <optional>
#include <regex>
#include <type_traits>
#include <vector>

#include "core/Error.h"
#include "core/ops/detail/Bf16.h"
#include "core/parallel/ParallelFor.h"
#include "formats/detail/Factories.h"
#include "formats/detail/HbfpKernels.h"

namespace mantissa::formats {

namespace {

DType codeType(int bits) { return bits <= 8 ? DType::I8 : bits <= 16 ? DType::I16 : DType::I32; }

detail::HbfpLayout layoutOf(const Shape& shape, int64_t blockAxis, int64_t block) {
  detail::HbfpLayout L;
  L.block = block;
  if (shape.empty()) return L;  // a scalar is one block of one value
  const int64_t rank = static_cast<int64_t>(shape.size());
  int64_t ax = normalizeAxis(blockAxis, rank, "HBFP block axis");
  L.outer = 1;
  for (int64_t d = 0; d < ax; ++d) L.outer *= shape[d];
  L.axis = shape[ax];
  L.inner = 1;
  for (int64_t d = ax + 1; d < rank; ++d) L.inner *= shape[d];
  return L;
}

Shape exponentShape(const Shape& shape, int64_t blockAxis, int64_t block) {
  if (shape.empty()) return {1};
  Shape s = shape;
  int64_t ax = normalizeAxis(blockAxis, static_cast<int64_t>(shape.size()), "HBFP block axis");
  s[ax] = (s[ax] + block - 1) / block;
  return s;
}

/// args.blockAxes normalised (in order); an axis given twice is an error.
std::vector<int64_t> normalizedAxes(const Hbfp& f, const QuantizeArgs& args, int64_t rank) {
  std::vector<int64_t> axes;
  for (int64_t a : args.blockAxes) {
    int64_t n = normalizeAxis(a, rank, "HBFP block axes");
    MANTISSA_CHECK(std::find(axes.begin(), axes.end(), n) == axes.end(), f.spec(), " at '",
                   args.pointName, "': block axis ", a, " given twice");
    axes.push_back(n);
  }
  return axes;
}

/// Blocks along the flattened `axes` (two or more): the other axes in order, then the block
/// axes in order (the permutation that makes every line contiguous); its inverse; the exponents'
/// shape [other axes..., blocks of a line].
struct Lines {
  std::vector<int64_t> perm, inverse;
  Shape moved, exponents;
  int64_t length = 1;
};

Lines linesOf(const Shape& shape, const std::vector<int64_t>& axes, int64_t block) {
  const auto rank = static_cast<int64_t>(shape.size());
  Lines l;
  l.inverse.resize(static_cast<size_t>(rank));
  for (int64_t d = 0; d < rank; ++d) {
    if (std::find(axes.begin(), axes.end(), d) == axes.end()) {
      l.perm.push_back(d);
      l.exponents.push_back(shape[d]);
    }
  }
  l.perm.insert(l.perm.end(), axes.begin(), axes.end());
  for (size_t i = 0; i < l.perm.size(); ++i) {
    l.inverse[l.perm[i]] = static_cast<int64_t>(i);
    l.moved.push_back(shape[l.perm[i]]);
  }
  for (int64_t a : axes) l.length *= shape[a];
  l.exponents.push_back((l.length + block - 1) / block);
  return l;
}

/// Counters of one pass into the caller's stats; a non-finite input is an error.
void finishPass(const Hbfp& f, const QuantizeArgs& args, int64_t count,
                const detail::HbfpPass& r) {
  MANTISSA_CHECK(r.nonFinite == 0, f.spec(), " at '", args.pointName, "': ", r.nonFinite,
                 " non-finite input value(s) (NaN/Inf); HBFP has no NaN or Inf");
  if (args.stats) {
    args.stats->count += count;
    args.stats->saturated += r.saturated;
    args.stats->flushed += r.flushed;
  }
}

/// Where blocks along the flattened `axes` (normalised, in order) of a contiguous tensor of
/// `shape` lie, read in place: possible when the other axes merge into one strided line index
/// and the block axes into at most two levels with a contiguous innermost one (x[N, C, H, W]
/// blocked along (N, H, W): lines C, runs N x H*W). Empty when the layout does not fit.
std::optional<detail::HbfpGatherLayout> gatherLayout(const Shape& shape,
                                                     const std::vector<int64_t>& axes,
                                                     int64_t block) {
  struct Dim {
    int64_t size, stride;
  };
  const int64_t rank = static_cast<int64_t>(shape.size());
  std::vector<int64_t> strides(static_cast<size_t>(rank), 1);
  for (int64_t d = rank - 2; d >= 0; --d) strides[d] = strides[d + 1] * shape[d + 1];
  // Size-1 axes vanish; an axis merges into the previous one when they are adjacent in memory.
  auto merge = [&](const std::vector<int64_t>& dims) {
    std::vector<Dim> out;
    for (int64_t d : dims) {
      if (shape[d] == 1) continue;
      if (!out.empty() && out.back().stride == shape[d] * strides[d]) {
        out.back() = {out.back().size * shape[d], strides[d]};
      } else {
        out.push_back({shape[d], strides[d]});
      }
    }
    return out;
  };
  std::vector<int64_t> keptAxes;
  for (int64_t d = 0; d < rank; ++d) {
    if (std::find(axes.begin(), axes.end(), d) == axes.end()) keptAxes.push_back(d);
  }
  std::vector<Dim> kept = merge(keptAxes), red = merge(axes);
  if (kept.size() > 1 || red.size() > 2 || (!red.empty() && red.back().stride != 1)) return {};
  detail::HbfpGatherLayout L;
  L.block = block;
  if (!kept.empty()) L = {.rows = kept[0].size, .rowStride = kept[0].stride, .block = block};
  if (red.size() == 2) {
    L.segments = red[0].size;
    L.segmentStride = red[0].stride;
  }
  if (!red.empty()) L.segment = red.back().size;
  return L;
}

/// The one quantizing pass behind quantize and quantizeBf16: a new tensor of x's shape holding
/// the values (`Out` = float, F32) or their bf16 patterns (detail::Bf16Bits, U16), blocked along
/// args.blockAxes (two or more) or args.blockAxis. Adds the kernels' counters to `pass`; the
/// caller checks and books them once (finishPass).
template <class Out>
Tensor quantizePass(const Hbfp& f, const Tensor& x, const QuantizeArgs& args,
                    detail::HbfpPass& pass) {
  constexpr bool kBf16 = std::is_same_v<Out, detail::Bf16Bits>;
  const HbfpOptions& o = f.options();
  const detail::HbfpParams p{o.bits, o.rounding, args.seed, args.stream, args.step};
  const auto isa = detail::bestKernelIsa();
  Tensor xc = x.detach().contiguous();
  Tensor out = Tensor::uninitialized(x.shape(), kBf16 ? DType::U16 : DType::F32);
  Out* op;
  if constexpr (kBf16) {
    op = reinterpret_cast<Out*>(out.data<uint16_t>());
  } else {
    op = out.data<float>();
  }
  auto add = [&pass](const detail::HbfpPass& r) {
    pass.nonFinite += r.nonFinite;
    pass.saturated += r.saturated;
    pass.flushed += r.flushed;
    pass.minMagnitude = std::min(pass.minMagnitude, r.minMagnitude);
  };
  if (args.blockAxes.size() < 2) {
    detail::HbfpLayout L = layoutOf(x.shape(), args.blockAxis, o.block);
    add(detail::hbfpQuantize(xc.data<float>(), op, nullptr, L, p, isa));
    return out;
  }
  const int64_t rank = x.dim();
  const std::vector<int64_t> axes = normalizedAxes(f, args, rank);
  if (auto L = gatherLayout(x.shape(), axes, o.block)) {
    if (xc.numel() > 0)
      add(detail::hbfpQuantizeGathered(xc.data<float>(), op, nullptr, *L, p, isa));
    return out;
  }
  // Any other layout: move the block axes last, merge them, block along the last axis and move
  // them back (two copies; the gathered index is the same, so are the stochastic bits).
  std::vector<int64_t> perm, inverse(static_cast<size_t>(rank));
  Shape kept;
  for (int64_t d = 0; d < rank; ++d) {
    if (std::find(axes.begin(), axes.end(), d) == axes.end()) {
      perm.push_back(d);
      kept.push_back(x.shape()[d]);
    }
  }
  perm.insert(perm.end(), axes.begin(), axes.end());
  for (size_t i = 0; i < perm.size(); ++i) inverse[perm[i]] = static_cast<int64_t>(i);
  Tensor moved = xc.permute(perm).contiguous();
  int64_t length = 1;
  for (int64_t a : axes) length *= x.shape()[a];
  kept.push_back(length);
  QuantizeArgs last = args;
  last.blockAxes = {};
  last.blockAxis = -1;
  Tensor blocked = quantizePass<Out>(f, moved.reshape(kept), last, pass);
  return blocked.reshape(moved.shape()).permute(inverse).contiguous();
}

}  // namespace

Hbfp::Hbfp(HbfpOptions options) : options_(options) {
  MANTISSA_CHECK(options_.bits >= 2 && options_.bits <= 24, "hbfp: mantissa width ",
                 options_.bits, " outside [2, 24]");
  MANTISSA_CHECK(options_.block >= 1 && options_.block <= 65536, "hbfp: block ", options_.block,
                 " outside [1, 65536]");
}

std::string Hbfp::spec() const {
  std::string s = "hbfp" + std::to_string(options_.bits);
  std::string keys;
  if (options_.block != 64) keys += "block=" + std::to_string(options_.block);
  if (options_.rounding == Rounding::Stochastic) keys += std::string(keys.empty() ? "" : ",") + "round=stochastic";
  return keys.empty() ? s : s + ":" + keys;
}

double Hbfp::bitsPerValue(const Shape& shape, int64_t blockAxis) const {
  int64_t n = numelOf(shape);
  if (n == 0) return options_.bits;
  int64_t blocks = numelOf(exponentShape(shape, blockAxis, options_.block));
  return options_.bits + 8.0 * static_cast<double>(blocks) / static_cast<double>(n);
}

Tensor Hbfp::quantize(const Tensor& x, const QuantizeArgs& args, FormatState*) const {
  MANTISSA_CHECK(x.dtype() == DType::F32, spec(), " at '", args.pointName,
                 "': input must be f32, got ", dtypeName(x.dtype()));
  detail::HbfpPass r;
  Tensor out = quantizePass<float>(*this, x, args, r);
  finishPass(*this, args, x.numel(), r);
  return out;
}

Bf16Quantized Hbfp::quantizeBf16(const Tensor& x, const QuantizeArgs& args,
                                 FormatState* state) const {
  // Above 8 significant bits the patterns cannot hold the values: quantize, then convert.
  if (significandBits() > 8) return Format::quantizeBf16(x, args, state);
  MANTISSA_CHECK(x.dtype() == DType::F32, spec(), " at '", args.pointName,
                 "': input must be f32, got ", dtypeName(x.dtype()));
  detail::HbfpPass r;
  Tensor bits = quantizePass<detail::Bf16Bits>(*this, x, args, r);
  finishPass(*this, args, x.numel(), r);
  Bf16Quantized q;
  q.minExponent = r.minMagnitude == UINT32_MAX ? ops::detail::kNoNonZero : r.minMagnitude >> 23;
  // Every value has at most 8 significant bits, so its low half is zero unless it is an FP32
  // subnormal: toBf16Exact's verdict is "exact" exactly when no value is a subnormal.
  if (q.minExponent >= 1) {
    q.bits = std::move(bits);
    return q;
  }
  // Not exact for the hardware. For N <= 8 the patterns still hold every value (multiples of
  // ulp >= 2^-133 have zero low halves); an hbfp9 subnormal may be an odd multiple of 2^-134,
  // so hbfp9 quantizes again (same arguments, so the same values; counted once).
  if (options_.bits <= 8) {
    q.values = ops::detail::widenBf16(bits);
  } else {
    QuantizeArgs again = args;
    again.stats = nullptr;
    q.values = quantize(x, again, state);
  }
  return q;
}

Encoded Hbfp::encode(const Tensor& x, const QuantizeArgs& args, FormatState*) const {
  MANTISSA_CHECK(x.dtype() == DType::F32, spec(), " at '", args.pointName,
                 "': input must be f32, got ", dtypeName(x.dtype()));
  Tensor xc = x.contiguous();
  Encoded e;
  e.spec = spec();
  e.shape = x.shape();
  e.codes = Tensor::uninitialized(x.shape(), codeType(options_.bits));
  e.codeBits = options_.bits;  // real widths for packedBytes(): N-bit mantissas, 8-bit exponents
  e.exponentBits = 8;
  detail::HbfpParams p{options_.bits, options_.rounding, args.seed, args.stream, args.step};
  const auto isa = detail::bestKernelIsa();
  detail::HbfpPass r;
  // One pass of hbfpQuantize (`gathered` false) or hbfpQuantizeGathered on the code type.
  auto pass = [&](const float* src, Tensor& codes, int16_t* exps, const auto& layout) {
    auto call = [&](auto* out) {
      if constexpr (std::is_same_v<std::decay_t<decltype(layout)>, detail::HbfpLayout>) {
        return detail::hbfpQuantize(src, out, exps, layout, p, isa);
      } else {
        return detail::hbfpQuantizeGathered(src, out, exps, layout, p, isa);
      }
    };
    switch (codes.dtype()) {
      case DType::I8:
        return call(codes.data<int8_t>());
      case DType::I16:
        return call(codes.data<int16_t>());
      default:
        return call(codes.data<int32_t>());
    }
  };
  if (args.blockAxes.size() < 2) {
    e.blockAxis = x.dim() == 0 ? -1 : normalizeAxis(args.blockAxis, x.dim(), "HBFP block axis");
    e.exponents =
        Tensor::uninitialized(exponentShape(x.shape(), args.blockAxis, options_.block), DType::I16);
    r = pass(xc.data<float>(), e.codes, e.exponents.data<int16_t>(),
             layoutOf(x.shape(), args.blockAxis, options_.block));
  } else {
    // The blocks and stochastic bits of quantize along these axes (quantizePass): read in place
    // when the layout allows, else the lines made contiguous, encoded along the last axis and
    // the codes moved back (the exponents are already in line order).
    e.blockAxes = normalizedAxes(*this, args, x.dim());
    const Lines l = linesOf(x.shape(), e.blockAxes, options_.block);
    e.exponents = Tensor::uninitialized(l.exponents, DType::I16);
    if (auto G = gatherLayout(x.shape(), e.blockAxes, options_.block)) {
      if (xc.numel() > 0) r = pass(xc.data<float>(), e.codes, e.exponents.data<int16_t>(), *G);
    } else {
      Tensor moved = xc.permute(l.perm).contiguous();
      Tensor codes = Tensor::uninitialized(l.moved, e.codes.dtype());
      detail::HbfpLayout L;
      L.outer = numelOf(l.moved) / std::max<int64_t>(l.length, 1);
      L.axis = l.length;
      L.block = options_.block;
      if (xc.numel() > 0) r = pass(moved.data<float>(), codes, e.exponents.data<int16_t>(), L);
      e.codes = codes.permute(l.inverse).contiguous();
    }
  }
  finishPass(*this, args, xc.numel(), r);
  return e;
}

Tensor Hbfp::decode(const Encoded& e) const {
  MANTISSA_CHECK(e.spec == spec(), "decode: codes of '", e.spec, "' given to ", spec());
  const DType ct = codeType(options_.bits);
  MANTISSA_CHECK(e.codes.defined() && e.codes.dtype() == ct && e.codes.numel() == numelOf(e.shape),
                 spec(), " decode: codes must be ", dtypeName(ct), " with ", numelOf(e.shape),
                 " elements");
  if (!e.blockAxes.empty()) {
    // Several block axes: decode the lines made contiguous (blocks along the last axis), then
    // move the values back.
    const Lines l = linesOf(e.shape, e.blockAxes, options_.block);
    MANTISSA_CHECK(e.exponents.defined() && e.exponents.shape() == l.exponents, spec(),
                   " decode: exponents must be i16 of shape ", toString(l.exponents));
    Encoded lines;
    lines.spec = e.spec;
    lines.shape = l.exponents;
    lines.shape.back() = l.length;
    lines.blockAxis = static_cast<int64_t>(lines.shape.size()) - 1;
    lines.codes = e.codes.contiguous().permute(l.perm).contiguous().reshape(lines.shape);
    lines.exponents = e.exponents;
    return decode(lines).reshape(l.moved).permute(l.inverse).contiguous();
  }
  Shape es = exponentShape(e.shape, e.blockAxis, options_.block);
  MANTISSA_CHECK(e.exponents.defined() && e.exponents.dtype() == DType::I16 &&
                     e.exponents.shape() == es,
                 spec(), " decode: exponents must be i16 of shape ", toString(es));
  detail::HbfpLayout L = layoutOf(e.shape, e.blockAxis, options_.block);
  Tensor codes = e.codes.contiguous(), exps = e.exponents.contiguous();
  const int16_t* ep = exps.data<int16_t>();
  for (int64_t i = 0; i < exps.numel(); ++i) {
    MANTISSA_CHECK(ep[i] >= detail::kHbfpMinExponent && ep[i] <= detail::kHbfpMaxExponent, spec(),
                   " decode: block exponent ", ep[i], " outside [", detail::kHbfpMinExponent,
                   ", ", detail::kHbfpMaxExponent, "]");
  }
  Tensor out = Tensor::uninitialized(e.shape);
  float* op = out.data<float>();
  const int64_t nb = L.numBlocks();
  auto run = [&](const auto* c) {
    parallelFor(0, L.outer * L.axis, 64, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        int64_t o = r / L.axis, a = r % L.axis, b = a / L.block;
        const int16_t* er = ep + (o * nb + b) * L.inner;
        for (int64_t i = 0; i < L.inner; ++i) {
          // 2^(e-(N-1)) as two normal factors (it can be an fp32 subnormal).
          int s = options_.bits - 1 - er[i];
          int s1 = s >> 1, s2 = s - s1;
          float g1 = std::bit_cast<float>(static_cast<uint32_t>(127 - s1) << 23);
          float g2 = std::bit_cast<float>(static_cast<uint32_t>(127 - s2) << 23);
          op[r * L.inner + i] = (static_cast<float>(c[r * L.inner + i]) * g1) * g2;
        }
      }
    });
  };
  switch (ct) {
    case DType::I8: run(codes.data<int8_t>()); break;
    case DType::I16: run(codes.data<int16_t>()); break;
    default: run(codes.data<int32_t>()); break;
  }
  return out;
}

namespace detail {

FormatPtr makeHbfp(SpecKeys& keys) {
  static const std::regex kHead(R"(hbfp(\d{1,2}))");
  std::smatch m;
  const std::string& head = keys.head();
  MANTISSA_CHECK(std::regex_match(head, m, kHead), "format spec '", keys.spec(),
                 "': expected hbfp<N> with N in [2, 24] (mantissa width including the sign), "
                 "e.g. hbfp8");
  int bits = std::stoi(m[1].str());
  MANTISSA_CHECK(bits >= 2 && bits <= 24, "format spec '", keys.spec(), "': HBFP width ", bits,
                 " outside [2, 24]");
  HbfpOptions o;
  o.bits = bits;
  o.block = keys.getInt("block", 64, 1, 65536);
  std::string round = keys.getChoice("round", "nearest", {"nearest", "stochastic"});
  o.rounding = round == "stochastic" ? Rounding::Stochastic : Rounding::NearestEven;
  keys.finish({"block", "round"});
  return std::make_shared<Hbfp>(o);
}

}  // namespace detail

}  // namespace mantissa::formats
