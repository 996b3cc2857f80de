#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mantissa::cli {

/// A parsed JSON value (RFC 8259): what mantissa-report reads back from the apps' JSONL logs.
/// Objects keep their members in file order; numbers are doubles.
class JsonValue {
 public:
  enum class Kind { Null, Bool, Number, String, Array, Object };

  /// Parses one complete JSON text (surrounding whitespace allowed). Throws mantissa::Error
  /// "column N: <what was expected>" on malformed input.
  static JsonValue parse(std::string_view text);

  Kind kind() const { return kind_; }
  bool isNull() const { return kind_ == Kind::Null; }
  bool isNumber() const { return kind_ == Kind::Number; }
  bool isString() const { return kind_ == Kind::String; }
  bool isObject() const { return kind_ == Kind::Object; }
  bool boolean() const { return bool_; }
  double number() const { return number_; }
  const std::string& string() const { return string_; }
  const std::vector<JsonValue>& items() const { return items_; }
  const std::vector<std::pair<std::string, JsonValue>>& members() const { return members_; }
  /// The member `key` of an object (the last one if repeated), or null if absent or not an
  /// object.
  const JsonValue* find(std::string_view key) const;

 private:
  friend class JsonParser;
  Kind kind_ = Kind::Null;
  bool bool_ = false;
  double number_ = 0;
  std::string string_;
  std::vector<JsonValue> items_;
  std::vector<std::pair<std::string, JsonValue>> members_;
};

}  // namespace mantissa::cli
