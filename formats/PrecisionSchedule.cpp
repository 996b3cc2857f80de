#include "formats/PrecisionSchedule.h"

#include <cctype>
#include <charconv>

#include "core/Error.h"
#include "formats/detail/Spec.h"

namespace mantissa::formats {

namespace {

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == sep) {
      out.push_back(trim(s.substr(start, i - start)));
      start = i + 1;
    }
  }
  return out;
}

// Iterative glob with backtracking to the last '*': linear in practice, no recursion.
bool glob(std::string_view pat, std::string_view s) {
  size_t p = 0, i = 0, star = std::string_view::npos, mark = 0;
  while (i < s.size()) {
    if (p < pat.size() && (pat[p] == '?' || pat[p] == s[i])) {
      ++p;
      ++i;
    } else if (p < pat.size() && pat[p] == '*') {
      star = p++;
      mark = i;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      i = ++mark;
    } else {
      return false;
    }
  }
  while (p < pat.size() && pat[p] == '*') ++p;
  return p == pat.size();
}

bool isRecipe(std::string_view name) {
  for (auto& [r, d] : recipes()) {
    if (r == name) return true;
  }
  return false;
}

std::string recipeList() {
  std::string s;
  for (auto& [r, d] : recipes()) s += (s.empty() ? "" : ", ") + r;
  return s;
}

int64_t parseInt(std::string_view s, std::string_view rule) {
  int64_t v = -1;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  MANTISSA_CHECK(ec == std::errc() && ptr == s.data() + s.size() && v >= 0,
                 "precision rule '", rule, "': bad epoch '", s,
                 "' (allowed: N, N-M, N-, -M, last, lastK with 0-based epochs)");
  return v;
}

}  // namespace

bool matchesSelector(std::string_view selector, std::string_view name, int64_t index,
                     int64_t count) {
  for (const std::string& alt : split(selector, '|')) {
    if (alt.empty()) continue;
    if (alt == "first" && index == 0) return true;
    if (alt == "last" && index == count - 1) return true;
    if (alt != "first" && alt != "last" && glob(alt, name)) return true;
  }
  return false;
}

PrecisionSchedule::PrecisionSchedule() : text_("fp32"), base_(FormatPolicy::fp32()) {}

PrecisionSchedule PrecisionSchedule::parse(std::string_view textIn) {
  PrecisionSchedule s;
  s.text_ = trim(textIn);
  MANTISSA_CHECK(!s.text_.empty(), "empty precision schedule (recipes: ", recipeList(), ")");
  std::vector<std::string> parts = split(s.text_, ';');
  size_t first = 0;
  std::vector<std::string> expanded;
  if (parts[0].find('=') == std::string::npos || parts[0].rfind("boosters:", 0) == 0) {
    // A leading recipe. `boosters[:boost=K]` expands to its documented rules.
    detail::SpecKeys head(parts[0]);
    if (head.head() == "boosters") {
      int64_t k = head.getInt("boost", 1, 1, 1000000);
      head.finish({"boost"});
      s.recipe_ = "boosters";
      s.base_ = FormatPolicy::recipe("boosters");
      expanded.push_back("first|last=hbfp6");
      expanded.push_back("*=hbfp6@last" + (k == 1 ? std::string() : std::to_string(k)));
    } else {
      MANTISSA_CHECK(isRecipe(parts[0]), "precision: '", parts[0],
                     "' is not a recipe (recipes: ", recipeList(),
                     ") nor a rule LAYERS/ROLES=FORMAT@EPOCHS");
      s.recipe_ = parts[0];
      s.base_ = FormatPolicy::recipe(parts[0]);
    }
    first = 1;
  } else {
    s.base_ = FormatPolicy::fp32();
  }
  for (size_t i = first; i < parts.size(); ++i) expanded.push_back(parts[i]);

  for (const std::string& text : expanded) {
    MANTISSA_CHECK(!text.empty(), "precision '", s.text_, "': empty rule between ';'");
    Rule rule;
    rule.text = text;
    size_t eq = text.find('=');
    MANTISSA_CHECK(eq != std::string::npos, "precision rule '", text,
                   "': expected LAYERS/ROLES=FORMAT[@EPOCHS]");
    std::string target = trim(text.substr(0, eq));
    std::string value = trim(text.substr(eq + 1));
    size_t at = value.rfind('@');
    if (at != std::string::npos) {
      std::string ep = trim(value.substr(at + 1));
      value = trim(value.substr(0, at));
      if (ep.rfind("last", 0) == 0) {
        rule.fromEnd = ep.size() == 4 ? 1 : parseInt(ep.substr(4), text);
        MANTISSA_CHECK(rule.fromEnd > 0, "precision rule '", text, "': lastK needs K >= 1");
      } else if (size_t dash = ep.find('-'); dash != std::string::npos) {
        rule.first = dash == 0 ? 0 : parseInt(ep.substr(0, dash), text);
        rule.last = dash + 1 == ep.size() ? -1 : parseInt(ep.substr(dash + 1), text);
        MANTISSA_CHECK(rule.last < 0 || rule.last >= rule.first, "precision rule '", text,
                       "': empty epoch range");
      } else {
        rule.first = rule.last = parseInt(ep, text);
      }
    }
    size_t slash = target.find('/');
    rule.layers = trim(target.substr(0, slash));
    if (rule.layers == "*") rule.layers.clear();
    std::string roles = slash == std::string::npos ? "" : trim(target.substr(slash + 1));
    if (roles.empty()) {
      rule.roles = {Role::Weight, Role::Activation, Role::Error};
    } else if (roles == "*") {
      rule.roles = {Role::Weight, Role::Activation, Role::Error, Role::WeightGrad, Role::Master};
    } else {
      for (const std::string& r : split(roles, ',')) rule.roles.push_back(parseRole(r));
    }
    MANTISSA_CHECK(!value.empty(), "precision rule '", text, "': missing format after '='");
    if (isRecipe(value)) {
      rule.value = FormatPolicy::recipe(value);
    } else {
      rule.value = FormatPolicy::uniform(formats::parse(value));
    }
    s.rules_.push_back(std::move(rule));
  }
  return s;
}

FormatPolicy PrecisionSchedule::policyFor(std::string_view name, int64_t index, int64_t count,
                                          int64_t epoch, int64_t numEpochs) const {
  FormatPolicy p = base_;
  for (const Rule& r : rules_) {
    if (!r.layers.empty() && !matchesSelector(r.layers, name, index, count)) continue;
    bool inRange;
    if (r.fromEnd > 0) {
      inRange = numEpochs > 0 && epoch >= numEpochs - r.fromEnd && epoch < numEpochs;
    } else {
      inRange = epoch >= r.first && (r.last < 0 || epoch <= r.last);
    }
    if (!inRange) continue;
    for (Role role : r.roles) p.set(role, r.value.get(role));
  }
  return p;
}

}  // namespace mantissa::formats
