#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/Tensor.h"
#include "core/io/StateDict.h"

namespace mantissa::formats {

/// Where a tensor sits in training (FORMATS.md A.2). Used by policies and by formats whose
/// behaviour depends on it (e.g. the error role of a GEMM).
enum class Role : uint8_t { Weight, Activation, Error, WeightGrad, Master };

/// "weight", "activation", "error", "weight_grad", "master".
std::string roleName(Role r);
/// Inverse of roleName; throws listing the allowed names.
Role parseRole(std::string_view name);

enum class Rounding : uint8_t { NearestEven, Stochastic };

/// Counters a quantizer fills when asked (for `--stats`, logs and tests).
struct QuantStats {
  int64_t count = 0;       // elements quantized
  int64_t saturated = 0;   // clamped to the largest magnitude (or overflowed to Inf)
  int64_t flushed = 0;     // non-zero inputs that became zero
  int64_t nonFinite = 0;   // NaN/Inf inputs
};

/// Per-call arguments of a quantizer.
struct QuantizeArgs {
  Role role = Role::Activation;
  /// HBFP: the axis along which blocks run (the reduction axis of the consuming GEMM);
  /// negative counts from the end. Ignored by per-tensor and elementwise formats.
  int64_t blockAxis = -1;
  /// Blocked formats, when it holds two or more axes: blocks run along these axes flattened in
  /// this order (as if they were moved last and merged into one), and blockAxis is ignored. The
  /// weight-gradient GEMM of a convolution reduces over (N, H, W) of an NCHW tensor.
  std::span<const int64_t> blockAxes = {};
  /// Stochastic rounding draws from philox(seed, stream, step, element): reproducible runs.
  uint64_t seed = 0;
  uint64_t stream = 0;  // identifies the quantization point (hash of its dotted name)
  uint64_t step = 0;
  /// Name used in error messages ("layer1.0.conv1.activation").
  std::string_view pointName = {};
  /// When non-null, the quantizer adds its counters here.
  QuantStats* stats = nullptr;
};

/// Adaptive per-tensor state (Autoflex history and exponent, S2FP8 statistics, ...). Lives in
/// the quantization point that owns the tensor, never in the format.
class FormatState {
 public:
  virtual ~FormatState() = default;
  virtual std::unique_ptr<FormatState> clone() const = 0;
  /// Complete state under `prefix` (so a resumed run continues bit-identically).
  virtual void saveState(io::StateDict& out, const std::string& prefix) const = 0;
  virtual void loadState(const io::StateDict& in, const std::string& prefix) = 0;
  /// One line for logs: "dec=12 overflows=0 history=16".
  virtual std::string describe() const = 0;
  /// Named scalar statistics for metrics logs ("exponent", "overflows", "alpha", "beta").
  virtual std::vector<std::pair<std::string, double>> metrics() const { return {}; }
};

/// Packed representation of a quantized tensor: what a checkpoint or a memory figure counts.
struct Encoded {
  std::string spec;      // canonical spec of the format that produced it
  Shape shape;           // logical shape of the tensor
  int64_t blockAxis = -1;
  /// Blocks along the flattened axes (two or more, normalised, in order; QuantizeArgs::blockAxes)
  /// instead of blockAxis; empty otherwise. HBFP's exponents are then [the other axes in order...,
  /// blocks of the flattened line].
  std::vector<int64_t> blockAxes;
  Tensor codes;          // one code per element (U8 for 8-bit formats, I16/U16 for 16-bit, ...)
  Tensor exponents;      // shared exponents (per block or per tensor), if any
  std::vector<double> scalars;  // per-tensor parameters (S2FP8 alpha, beta; flex scale), if any
  /// Real width of one code when narrower than its dtype (hbfp4 codes held in I8: 4); 0 = the
  /// dtype's full width.
  int codeBits = 0;
  /// Real width of one shared exponent (HBFP: 8); 0 = the dtype's full width.
  int exponentBits = 0;
  /// Bytes of the packed form: codes and exponents bit-packed at their real widths (each
  /// rounded up to whole bytes) plus 4 bytes (FP32) per scalar.
  size_t packedBytes() const;
};

/// quantize(x) as an operand of the bf16 GEMM path (docs/ops.md "bf16 GEMM path";
/// Format::quantizeBf16): what ops::detail::toBf16Exact(quantize(x)) gives, and the FP32 values
/// wherever the bf16 patterns cannot stand in for them.
struct Bf16Quantized {
  /// bf16 bit patterns (U16, x's shape, contiguous) of quantize(x); defined only when the
  /// conversion is exact for the hardware: every low half zero and no FP32 subnormal.
  Tensor bits;
  /// FP32 exponent field of the smallest non-zero |value| (255 when all are zero).
  uint32_t minExponent = 255;
  /// quantize(x) in F32: always defined when `bits` is not; may be left undefined when it is
  /// (widening the patterns gives the values bit for bit).
  Tensor values;
};

/// A number format: immutable and shareable (hold it as FormatPtr). `quantize` snaps an F32
/// tensor onto the format's grid and returns F32 values that are exactly representable;
/// `encode`/`decode` give the packed codes and back. Formats never record autograd.
class Format {
 public:
  virtual ~Format() = default;

  /// Canonical spelling; `parse(f.spec())->spec() == f.spec()`.
  virtual std::string spec() const = 0;
  /// Storage bits per element with shared exponents and scalars amortised, for a tensor of
  /// `shape` blocked along `blockAxis`.
  virtual double bitsPerValue(const Shape& shape, int64_t blockAxis = -1) const = 0;
  /// True for fp32 (quantize returns its input unchanged).
  virtual bool isIdentity() const { return false; }
  /// True when the result depends on `QuantizeArgs::blockAxis` (HBFP). Layers re-quantize such
  /// operands for each GEMM along that GEMM's reduction axis; other formats are quantized once.
  virtual bool isBlocked() const { return false; }
  /// Upper bound on the significant bits (implicit bit included) of any value `quantize`
  /// returns: 8 for bf16 and for every 8-bit float/FFP8 and hbfpN with N <= 9, whose values
  /// bf16 therefore holds exactly within its exponent range (the bf16 GEMM path, docs/ops.md).
  /// 24 (no bound below FP32) unless a format says otherwise.
  virtual int significandBits() const { return 24; }
  /// Fresh adaptive state, or null for stateless formats.
  virtual std::unique_ptr<FormatState> makeState() const { return nullptr; }
  /// Snaps `x` onto the grid. `state` must be the result of makeState() (null if none) and is
  /// advanced by adaptive formats. Throws naming `args.pointName` on NaN/Inf input for formats
  /// that cannot represent it.
  virtual Tensor quantize(const Tensor& x, const QuantizeArgs& args,
                          FormatState* state = nullptr) const = 0;
  /// quantize(x) for the bf16 GEMM path, with the same arguments, state, statistics and errors:
  /// bits, minExponent and exactness bit for bit those of ops::detail::toBf16Exact(quantize(x)),
  /// `values` bit for bit quantize(x). The default runs exactly that; HBFP with N <= 9 writes the
  /// bf16 patterns in its quantizing pass instead (2 bytes a value, no second pass over FP32).
  virtual Bf16Quantized quantizeBf16(const Tensor& x, const QuantizeArgs& args,
                                     FormatState* state = nullptr) const;
  /// Packs `x` (quantizing it first, exactly as `quantize` would).
  virtual Encoded encode(const Tensor& x, const QuantizeArgs& args,
                         FormatState* state = nullptr) const = 0;
  /// Unpacks; `decode(encode(x)) == quantize(x)` bit for bit.
  virtual Tensor decode(const Encoded& e) const = 0;
  /// encode(x) that also sets `values` to the quantized values (bit for bit decode() of the
  /// result, i.e. quantize(x)), for callers that need both: the dot-product layers multiply with
  /// the values and keep the codes for backward. The default decodes the codes; formats that
  /// compute the values on the way (the grid formats, S2FP8) return them without another pass.
  virtual Encoded encodeWithValues(const Tensor& x, const QuantizeArgs& args, FormatState* state,
                                   Tensor& values) const {
    Encoded e = encode(x, args, state);
    values = decode(e);
    return e;
  }
  /// The high 16 bits of every value of decode(e) (U16 bfloat16 patterns, the operands of the
  /// bf16 GEMM path) straight from the codes, for formats that offer it (the 8-bit floats, bf16);
  /// an undefined tensor otherwise. Exact only where decode's values have zero low halves;
  /// callers check that on the values first (the dot-product layers did in forward).
  virtual Tensor decodeBf16(const Encoded& e) const { return {}; }
};

using FormatPtr = std::shared_ptr<const Format>;

/// Parses the one grammar of FORMATS.md A.1 (`fp32`, `bf16`, `e4m3:sat=0`, `flex16+5:history=16`,
/// `hbfp8:block=64,round=stochastic`, `s2fp8`, `ffp8:e=4,f=3,b=7,s=1`, ...). Errors name the bad
/// token and list what is allowed.
FormatPtr parse(std::string_view spec);

/// The spellings the registry knows, with a one-line description each (for `--help`).
std::vector<std::pair<std::string, std::string>> knownFormats();

}  // namespace mantissa::formats
