#include <doctest/doctest.h>

#include "apps/cli/JsonValue.h"
#include "core/Error.h"

using namespace mantissa;
using cli::JsonValue;

TEST_CASE("JsonValue: parses the apps' log lines") {
  JsonValue v = JsonValue::parse(
      R"( {"event":"step","step":12,"loss":-1.5e-3,"ok":true,"nan":null,)"
      R"("formats":{"conv1.activation":{"fwd.exponent":-7,"fwd.saturated":0}},"list":[1,[2],{}]} )");
  REQUIRE(v.isObject());
  CHECK(v.find("event")->string() == "step");
  CHECK(v.find("step")->number() == 12);
  CHECK(v.find("loss")->number() == -1.5e-3);
  CHECK(v.find("ok")->boolean());
  CHECK(v.find("nan")->isNull());
  CHECK(v.find("missing") == nullptr);
  const JsonValue* f = v.find("formats")->find("conv1.activation");
  REQUIRE(f);
  CHECK(f->find("fwd.exponent")->number() == -7);
  CHECK(v.find("list")->items().size() == 3);
  CHECK(v.find("list")->items()[1].items()[0].number() == 2);
}

TEST_CASE("JsonValue: string escapes and unicode") {
  CHECK(JsonValue::parse(R"("a\"b\\c\/d\n\t")").string() == "a\"b\\c/d\n\t");
  CHECK(JsonValue::parse(R"("\u00e9")").string() == "\xc3\xa9");                // é
  CHECK(JsonValue::parse(R"("\ud83d\ude00")").string() == "\xf0\x9f\x98\x80");  // U+1F600
  CHECK(JsonValue::parse(R"({"k":1,"k":2})").find("k")->number() == 2);         // last wins
}

TEST_CASE("JsonValue: malformed input names the column") {
  auto bad = [](const char* text, const char* what) {
    CAPTURE(text);
    CHECK_THROWS_WITH_AS(JsonValue::parse(text), doctest::Contains(what), Error);
  };
  bad(R"({"a":1)", "column 7: expected ',' or '}'");
  bad(R"({"a":1} x)", "column 9: expected end of the JSON text");
  bad(R"({a:1})", "member name");
  bad("", "a JSON value");
  bad("NaN", "a JSON value");
  bad("01", "end of the JSON text");
  bad("1.", "digit after '.'");
  bad("1e999", "within double range");
  bad(R"("abc)", "closing");
  bad("\"a\x01\"", "control character");
  bad(R"("\x")", "escape");
  bad(std::string(300, '[').c_str(), "less deeply nested");
}
