// Spec strings of FORMATS.md A.1: "head" or "head:key=value,key=value,flag". Every error quotes
// the whole spec, names the offending token and says what would have been accepted, because
// specs come from command lines and config files where a bare "invalid spec" is useless.
#include "formats/detail/Spec.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <sstream>

#include "core/Error.h"

namespace mantissa::formats::detail {
namespace {

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

SpecKeys::SpecKeys(std::string_view spec) : spec_(spec) {
  MANTISSA_CHECK(!spec.empty(), "empty format spec");
  size_t colon = spec.find(':');
  head_ = std::string(spec.substr(0, colon));
  MANTISSA_CHECK(!head_.empty(), "format spec '", spec_, "': missing format name before ':'");
  if (colon == std::string_view::npos) return;
  std::string_view rest = spec.substr(colon + 1);
  MANTISSA_CHECK(!rest.empty(), "format spec '", spec_, "': no options after ':'");
  while (true) {
    size_t comma = rest.find(',');
    std::string_view token = rest.substr(0, comma);
    MANTISSA_CHECK(!token.empty(), "format spec '", spec_, "': empty option (stray ',')");
    size_t eq = token.find('=');
    std::string key(token.substr(0, eq));
    std::string value = eq == std::string_view::npos ? "" : std::string(token.substr(eq + 1));
    MANTISSA_CHECK(!key.empty(), "format spec '", spec_, "': option '", token,
                   "' has no key before '='");
    // A bare token ("auto") is kept with an empty value; "key=" is an error.
    MANTISSA_CHECK(eq == std::string_view::npos || !value.empty(), "format spec '", spec_,
                   "': option '", key, "=' has no value");
    for (const auto& kv : keys_) {
      MANTISSA_CHECK(kv.first != key, "format spec '", spec_, "': option '", key,
                     "' given twice");
    }
    keys_.emplace_back(std::move(key), std::move(value));
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
}

namespace {

// Finds and removes `key`; returns false when absent. Bare flags cannot stand in for values.
bool take(std::vector<std::pair<std::string, std::string>>& keys, const std::string& spec,
          std::string_view key, const std::string& expected, std::string& value) {
  auto it = std::find_if(keys.begin(), keys.end(), [&](const auto& kv) { return kv.first == key; });
  if (it == keys.end()) return false;
  MANTISSA_CHECK(!it->second.empty(), "format spec '", spec, "': option '", key,
                 "' needs a value (", key, "=", expected, ")");
  value = it->second;
  keys.erase(it);
  return true;
}

}  // namespace

int64_t SpecKeys::getInt(std::string_view key, int64_t def, int64_t lo, int64_t hi) {
  std::string range = "[" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  std::string text;
  if (!take(keys_, spec_, key, "<integer in " + range + ">", text)) return def;
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  MANTISSA_CHECK(ec == std::errc() && ptr == text.data() + text.size(), "format spec '", spec_,
                 "': ", key, "=", text, " is not an integer (allowed: integer in ", range, ")");
  MANTISSA_CHECK(v >= lo && v <= hi, "format spec '", spec_, "': ", key, "=", text,
                 " is out of range (allowed: integer in ", range, ")");
  return v;
}

double SpecKeys::getDouble(std::string_view key, double def, double lo, double hi) {
  std::ostringstream range;
  range << "[" << lo << ", " << hi << "]";
  std::string text;
  if (!take(keys_, spec_, key, "<number in " + range.str() + ">", text)) return def;
  double v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  MANTISSA_CHECK(ec == std::errc() && ptr == text.data() + text.size() && std::isfinite(v),
                 "format spec '", spec_, "': ", key, "=", text,
                 " is not a number (allowed: number in ", range.str(), ")");
  MANTISSA_CHECK(v >= lo && v <= hi, "format spec '", spec_, "': ", key, "=", text,
                 " is out of range (allowed: number in ", range.str(), ")");
  return v;
}

std::string SpecKeys::getChoice(std::string_view key, std::string_view def,
                                const std::vector<std::string>& allowed) {
  std::string text;
  if (!take(keys_, spec_, key, joined(allowed), text)) return std::string(def);
  MANTISSA_CHECK(std::find(allowed.begin(), allowed.end(), text) != allowed.end(),
                 "format spec '", spec_, "': ", key, "=", text, " is not allowed (allowed: ",
                 joined(allowed), ")");
  return text;
}

bool SpecKeys::takeFlag(std::string_view token) {
  auto it = std::find_if(keys_.begin(), keys_.end(),
                         [&](const auto& kv) { return kv.first == token; });
  if (it == keys_.end()) return false;
  MANTISSA_CHECK(it->second.empty(), "format spec '", spec_, "': '", token,
                 "' is a flag and takes no value (write just '", token, "')");
  keys_.erase(it);
  return true;
}

bool SpecKeys::has(std::string_view key) const {
  return std::any_of(keys_.begin(), keys_.end(), [&](const auto& kv) { return kv.first == key; });
}

void SpecKeys::finish(const std::vector<std::string>& allowedKeys) const {
  if (keys_.empty()) return;
  const auto& [key, value] = keys_.front();
  std::string token = value.empty() ? key : key + "=" + value;
  if (allowedKeys.empty()) {
    MANTISSA_CHECK(false, "format spec '", spec_, "': unknown option '", token, "' ('", head_,
                   "' takes no options)");
  }
  MANTISSA_CHECK(false, "format spec '", spec_, "': unknown option '", token,
                 "' (allowed for '", head_, "': ", joined(allowedKeys), ")");
}

}  // namespace mantissa::formats::detail
