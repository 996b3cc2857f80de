#include "formats/Policy.h"

#include <array>

#include "core/Error.h"

namespace mantissa::formats {

namespace {

struct RecipeRow {
  const char* name;
  const char* weight;
  const char* activation;
  const char* error;
  const char* weightGrad;
  const char* master;
  const char* description;
};

// FORMATS.md A.2, verbatim. `boosters` is its base row; the schedule adds the hbfp6 layers
// and epochs (PrecisionSchedule).
constexpr std::array<RecipeRow, 7> kRecipes{{
    {"fp32", "fp32", "fp32", "fp32", "fp32", "fp32", "FP32 baseline"},
    {"flexpoint", "flex16+5", "flex16+5", "flex16+5", "flex16+5", "flex16+5",
     "Flexpoint flex16+5 on every tensor, Autoflex per tensor, no FP32 master (Koster et al. 2017)"},
    {"hbfp8", "hbfp8", "hbfp8", "hbfp8", "fp32", "hbfp16",
     "HBFP: 8-bit block floating point dot products, wide hbfp16 weights (Drumond et al. 2018)"},
    {"boosters", "hbfp4", "hbfp4", "hbfp4", "fp32", "hbfp16",
     "Accuracy Boosters: hbfp4, hbfp6 in the first/last layers and last epoch(s) (Harma et al.)"},
    {"s2fp8", "s2fp8", "s2fp8", "s2fp8", "fp32", "fp32",
     "S2FP8: shifted and squeezed FP8, FP32 master weights (Cambier et al. 2020)"},
    {"fp8", "e4m3", "e4m3", "e5m2", "fp32", "fp32",
     "plain FP8 (E4M3 forward, E5M2 backward) without loss scaling"},
    {"bf16", "bf16", "bf16", "bf16", "fp32", "fp32", "bfloat16 dot products, FP32 master"},
}};

}  // namespace

FormatPolicy FormatPolicy::uniform(FormatPtr f) {
  MANTISSA_CHECK(f != nullptr, "FormatPolicy::uniform: null format");
  return {f, f, f, f, f};
}

FormatPolicy FormatPolicy::fp32() { return uniform(parse("fp32")); }

FormatPolicy FormatPolicy::recipe(std::string_view name) {
  for (const RecipeRow& r : kRecipes) {
    if (name == r.name) {
      return {parse(r.weight), parse(r.activation), parse(r.error), parse(r.weightGrad),
              parse(r.master)};
    }
  }
  std::string allowed;
  for (const RecipeRow& r : kRecipes) allowed += std::string(allowed.empty() ? "" : ", ") + r.name;
  MANTISSA_CHECK(false, "unknown precision recipe '", name, "' (recipes: ", allowed, ")");
}

const FormatPtr& FormatPolicy::get(Role r) const {
  switch (r) {
    case Role::Weight: return weight;
    case Role::Activation: return activation;
    case Role::Error: return error;
    case Role::WeightGrad: return weightGrad;
    case Role::Master: return master;
  }
  return weight;
}

void FormatPolicy::set(Role r, FormatPtr f) {
  switch (r) {
    case Role::Weight: weight = std::move(f); break;
    case Role::Activation: activation = std::move(f); break;
    case Role::Error: error = std::move(f); break;
    case Role::WeightGrad: weightGrad = std::move(f); break;
    case Role::Master: master = std::move(f); break;
  }
}

std::string FormatPolicy::describe() const {
  std::string s;
  for (Role r : {Role::Weight, Role::Activation, Role::Error, Role::WeightGrad, Role::Master}) {
    const FormatPtr& f = get(r);
    if (!s.empty()) s += ' ';
    s += roleName(r);
    s += '=';
    s += f ? f->spec() : std::string("fp32");
  }
  return s;
}

bool FormatPolicy::operator==(const FormatPolicy& o) const { return describe() == o.describe(); }

std::vector<std::pair<std::string, std::string>> recipes() {
  std::vector<std::pair<std::string, std::string>> out;
  for (const RecipeRow& r : kRecipes) out.emplace_back(r.name, r.description);
  return out;
}

}  // namespace mantissa::formats
