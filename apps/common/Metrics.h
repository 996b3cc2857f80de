#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mantissa::train {

/// One JSON object built field by field, in insertion order; adding an existing key replaces
/// its value.
class JsonObject {
 public:
  JsonObject& add(std::string_view key, double value);
  JsonObject& add(std::string_view key, int64_t value);
  JsonObject& add(std::string_view key, int value) { return add(key, int64_t{value}); }
  JsonObject& add(std::string_view key, bool value);
  JsonObject& add(std::string_view key, std::string_view value);
  JsonObject& add(std::string_view key, const char* value) { return add(key, std::string_view(value)); }
  /// A nested object.
  JsonObject& add(std::string_view key, const JsonObject& value);
  /// Serialised without newlines. Non-finite numbers become null (JSON has no NaN).
  std::string str() const;

 private:
  JsonObject& set(std::string_view key, std::string raw);
  std::vector<std::pair<std::string, std::string>> fields_;
};

/// Escapes a string for JSON.
std::string jsonEscape(std::string_view s);

/// A JSON-lines log: one object per line, flushed after each line so a killed run keeps its
/// history. Opening appends when `append` (a resumed run), else truncates.
class JsonlLog {
 public:
  JsonlLog() = default;
  JsonlLog(const std::string& path, bool append);
  bool isOpen() const { return out_.is_open(); }
  void write(const JsonObject& obj);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::ofstream out_;
};

/// Peak resident set size of this process in MiB (VmHWM from /proc/self/status).
double peakRssMiB();

}  // namespace mantissa::train
