#include "apps/common/Metrics.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "core/Error.h"

namespace mantissa::train {

std::string jsonEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out;
}

JsonObject& JsonObject::set(std::string_view key, std::string raw) {
  for (auto& [k, v] : fields_) {
    if (k == key) {
      v = std::move(raw);
      return *this;
    }
  }
  fields_.emplace_back(std::string(key), std::move(raw));
  return *this;
}

JsonObject& JsonObject::add(std::string_view key, double value) {
  if (!std::isfinite(value)) {
    return set(key, "null");
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", value);
  set(key, buf);
  return *this;
}

JsonObject& JsonObject::add(std::string_view key, int64_t value) {
  set(key, std::to_string(value));
  return *this;
}

JsonObject& JsonObject::add(std::string_view key, bool value) {
  set(key, value ? "true" : "false");
  return *this;
}

JsonObject& JsonObject::add(std::string_view key, std::string_view value) {
  set(key, "\"" + jsonEscape(value) + "\"");
  return *this;
}

JsonObject& JsonObject::add(std::string_view key, const JsonObject& value) {
  set(key, value.str());
  return *this;
}

std::string JsonObject::str() const {
  std::string s = "{";
  for (size_t i = 0; i < fields_.size(); ++i) {
    if (i) s += ',';
    s += '"';
    s += jsonEscape(fields_[i].first);
    s += "\":";
    s += fields_[i].second;
  }
  return s + "}";
}

JsonlLog::JsonlLog(const std::string& path, bool append) : path_(path) {
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  out_.open(path, append ? std::ios::app : std::ios::trunc);
  MANTISSA_CHECK(out_.is_open(), "--log: cannot open '", path, "' for writing");
}

void JsonlLog::write(const JsonObject& obj) {
  if (!out_.is_open()) return;
  out_ << obj.str() << '\n';
  out_.flush();
  MANTISSA_CHECK(out_.good(), "--log: write to '", path_, "' failed (disk full?)");
}

double peakRssMiB() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  double kib = 0;
  while (std::fgets(line, sizeof line, f)) {
    if (std::sscanf(line, "VmHWM: %lf kB", &kib) == 1) break;
  }
  std::fclose(f);
  return kib / 1024.0;
}

}  // namespace mantissa::train
