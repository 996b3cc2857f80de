#include <cstdlib>
#include <string>

#include <doctest/doctest.h>

#include "core/Env.h"
#include "core/Error.h"

using mantissa::envSwitch;

namespace {

/// Sets (or unsets, for nullptr) a variable for the scope of one check.
struct EnvVar {
  EnvVar(const char* name, const char* value) : name_(name) {
    if (value) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~EnvVar() { ::unsetenv(name_); }
  const char* name_;
};

constexpr const char* kName = "MANTISSA_TEST_ENV_SWITCH";

}  // namespace

TEST_CASE("envSwitch: on/off spellings, the fallback when unset or empty, errors otherwise") {
  for (const char* on : {"1", "on", "true"}) {
    EnvVar v(kName, on);
    CHECK(envSwitch(kName, false));
  }
  for (const char* off : {"0", "off", "false"}) {
    EnvVar v(kName, off);
    CHECK_FALSE(envSwitch(kName, true));
  }
  {
    EnvVar v(kName, nullptr);
    CHECK(envSwitch(kName, true));
    CHECK_FALSE(envSwitch(kName, false));
  }
  {
    EnvVar v(kName, "");
    CHECK(envSwitch(kName, true));
  }
  for (const char* bad : {"yes", "2", "ON", " 1"}) {
    EnvVar v(kName, bad);
    try {
      envSwitch(kName, true);
      FAIL("no error for '", bad, "'");
    } catch (const mantissa::Error& e) {
      const std::string what = e.what();
      CHECK(what.find(kName) != std::string::npos);
      CHECK(what.find(std::string("'") + bad + "'") != std::string::npos);
    }
  }
}
