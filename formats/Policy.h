#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "formats/Format.h"

namespace mantissa::formats {

/// The formats of the five roles of a dot-product layer (FORMATS.md A.2): its weight operand,
/// its input activation, the error (gradient of its output) entering the backward GEMMs, the
/// weight gradient leaving it, and the master copy of the weight kept by the optimizer.
struct FormatPolicy {
  FormatPtr weight, activation, error, weightGrad, master;

  /// Every role in `f`.
  static FormatPolicy uniform(FormatPtr f);
  /// All roles fp32.
  static FormatPolicy fp32();
  /// One row of the A.2 recipe table (`fp32`, `flexpoint`, `hbfp8`, `boosters`, `s2fp8`, `fp8`,
  /// `bf16`); `boosters` gives its base policy (hbfp4). Unknown names list the recipes.
  static FormatPolicy recipe(std::string_view name);

  const FormatPtr& get(Role r) const;
  void set(Role r, FormatPtr f);
  /// "weight=hbfp8 activation=hbfp8 error=hbfp8 weight_grad=fp32 master=hbfp16".
  std::string describe() const;
  bool operator==(const FormatPolicy& other) const;
};

/// Recipe names with a one-line description each.
std::vector<std::pair<std::string, std::string>> recipes();

}  // namespace mantissa::formats
