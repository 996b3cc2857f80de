#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "formats/Policy.h"

namespace mantissa::formats {

/// True when the dot-product layer `name` (number `index` of `count`, in registration order)
/// matches `selector`: alternatives separated by '|', each a dotted name, a glob ('*' matches
/// any run of characters including dots, '?' one character), `first` or `last`.
bool matchesSelector(std::string_view selector, std::string_view name, int64_t index,
                     int64_t count);

/// The `--precision` grammar (docs/precision.md): a recipe followed by override rules.
///
///   SCHEDULE := [RECIPE] (';' RULE)*          RECIPE := fp32 | flexpoint | hbfp8 | s2fp8 |
///   RULE     := [LAYERS] ['/' ROLES] '=' VALUE ['@' EPOCHS]      fp8 | bf16 | boosters[:boost=K]
///   LAYERS   := selector (see matchesSelector); omitted = every dot-product layer
///   ROLES    := role (',' role)* | '*'; omitted = weight,activation,error
///   VALUE    := a format spec, or a recipe name (its formats for those roles)
///   EPOCHS   := N | N-M | N- | -M | last | lastK   (0-based, inclusive; lastK = final K epochs)
///
/// Later rules win. Example, Accuracy Boosters spelled out:
///   `hbfp8; *=hbfp4; first|last=hbfp6; *=hbfp6@last` (weight_grad fp32, master hbfp16 from hbfp8).
class PrecisionSchedule {
 public:
  /// Parses; errors name the offending rule and list what is allowed there.
  static PrecisionSchedule parse(std::string_view text);
  /// fp32 everywhere.
  PrecisionSchedule();

  /// The text this schedule was parsed from (recorded in checkpoints and logs).
  const std::string& text() const { return text_; }
  /// The recipe name (or "fp32" when the schedule starts with a rule).
  const std::string& recipeName() const { return recipe_; }

  /// Policy of dot-product layer `name` (number `index` of `count`) during `epoch` of
  /// `numEpochs` (numEpochs <= 0: epoch ranges relative to the end never match).
  FormatPolicy policyFor(std::string_view name, int64_t index, int64_t count, int64_t epoch,
                         int64_t numEpochs) const;

 private:
  struct Rule {
    std::string text;
    std::string layers;            // empty = all
    std::vector<Role> roles;
    FormatPolicy value;            // only `roles` are meaningful
    int64_t first = 0, last = -1;  // epoch range; last = -1: open
    int64_t fromEnd = 0;           // > 0: the final `fromEnd` epochs (overrides first/last)
  };

  std::string text_;
  std::string recipe_ = "fp32";
  FormatPolicy base_;
  std::vector<Rule> rules_;
};

}  // namespace mantissa::formats
