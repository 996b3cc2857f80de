// The one explicit table of formats (docs/formats.md "Spellings"; FORMATS.md A.1). A spec's
// head picks the row; the row's factory consumes the keys. Unknown heads list every row, so the
// error message doubles as the list of what exists.
#include <algorithm>
#include <array>

#include "core/Error.h"
#include "formats/Format.h"
#include "formats/detail/Factories.h"
#include "formats/detail/Spec.h"

namespace mantissa::formats {
namespace {

struct Row {
  const char* head;      // exact head, or the prefix of a parameterised family ("hbfp")
  bool family;           // head is a prefix followed by parameters (flexN+M, hbfpN)
  const char* pattern;   // how to spell it, for messages
  const char* example;   // a representative, parseable spelling
  const char* description;
  FormatPtr (*make)(detail::SpecKeys&);
};

constexpr std::array kRows = {
    Row{"fp32", false, "fp32", "fp32", "FP32 identity (no rounding)", detail::makeFp32},
    Row{"bf16", false, "bf16[:round=nearest|stochastic]", "bf16",
        "bfloat16: 8-bit exponent, 7-bit mantissa, RNE, subnormals kept, overflow to Inf",
        detail::makeBf16},
    Row{"fp16", false, "fp16[:round=nearest|stochastic]", "fp16",
        "IEEE half: 5-bit exponent, 10-bit mantissa, RNE, subnormals kept, overflow to Inf",
        detail::makeFp16},
    Row{"e4m3", false, "e4m3[:sat=0|1,round=nearest|stochastic]", "e4m3",
        "OCP FP8 E4M3 (bias 7, max 448), RNE, saturating unless sat=0 (then NaN)",
        detail::makeFp8},
    Row{"e5m2", false, "e5m2[:sat=0|1,round=nearest|stochastic]", "e5m2",
        "OCP FP8 E5M2 (bias 15, max 57344), RNE, saturating unless sat=0 (then Inf)",
        detail::makeFp8},
    Row{"flex", true, "flexN+M[:history=..,sigmas=..,margin=..]", "flex16+5",
        "Flexpoint: N-bit integer mantissas, one M-bit shared exponent per tensor (Autoflex)",
        detail::makeFlexpoint},
    Row{"hbfp", true, "hbfpN[:block=..,round=nearest|stochastic]", "hbfp8",
        "HBFP block floating point: N-bit mantissas (incl. sign), one exponent per block",
        detail::makeHbfp},
    Row{"s2fp8", false, "s2fp8", "s2fp8",
        "S2FP8: E5M2 payload with per-tensor squeeze alpha and shift beta", detail::makeS2fp8},
    Row{"ffp8", false, "ffp8:e=..,f=..,b=..,s=.. | ffp8:auto", "ffp8:e=4,f=3,b=7,s=1",
        "FFP8: s+e+f = 8, any bias, no Inf/NaN, RNE, saturating; ffp8:auto calibrates per tensor",
        detail::makeFfp8},
};

const Row* findRow(const std::string& head) {
  for (const Row& r : kRows) {
    if (r.family ? head.rfind(r.head, 0) == 0 : head == r.head) return &r;
  }
  return nullptr;
}

}  // namespace

FormatPtr parse(std::string_view spec) {
  detail::SpecKeys keys(spec);
  const Row* row = findRow(keys.head());
  if (row == nullptr) {
    std::string known;
    for (const Row& r : kRows) known += (known.empty() ? "" : ", ") + std::string(r.pattern);
    MANTISSA_CHECK(false, "format spec '", spec, "': unknown format '", keys.head(),
                   "' (known formats: ", known, ")");
  }
  return row->make(keys);
}

std::vector<std::pair<std::string, std::string>> knownFormats() {
  std::vector<std::pair<std::string, std::string>> out;
  for (const Row& r : kRows) out.emplace_back(r.example, r.description);
  out.emplace_back("ffp8:auto", "FFP8 with (s, e, f, bias) calibrated on the first tensor seen");
  return out;
}

namespace {
constexpr std::array<std::pair<Role, const char*>, 5> kRoles = {{
    {Role::Weight, "weight"},
    {Role::Activation, "activation"},
    {Role::Error, "error"},
    {Role::WeightGrad, "weight_grad"},
    {Role::Master, "master"},
}};
}  // namespace

std::string roleName(Role r) {
  for (const auto& [role, name] : kRoles) {
    if (role == r) return name;
  }
  MANTISSA_CHECK(false, "roleName: invalid role value ", static_cast<int>(r));
}

Role parseRole(std::string_view name) {
  std::string allowed;
  for (const auto& [role, n] : kRoles) {
    if (name == n) return role;
    allowed += (allowed.empty() ? "" : ", ") + std::string(n);
  }
  MANTISSA_CHECK(false, "unknown role '", name, "' (allowed: ", allowed, ")");
}

size_t Encoded::packedBytes() const {
  // Codes and exponents at their real widths, bit-packed and rounded up to whole bytes; per-tensor
  // scalars as FP32, the width the papers keep them in.
  auto packed = [](const Tensor& t, int bits) -> size_t {
    if (!t.defined()) return 0;
    int width = bits > 0 ? bits : static_cast<int>(elementSize(t.dtype()) * 8);
    return (static_cast<size_t>(t.numel()) * static_cast<size_t>(width) + 7) / 8;
  };
  return packed(codes, codeBits) + packed(exponents, exponentBits) + 4 * scalars.size();
}

}  // namespace mantissa::formats
