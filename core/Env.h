#pragma once

namespace mantissa {

/// Reads an on/off switch from the environment variable `name`: "1", "on", "true" -> true;
/// "0", "off", "false" -> false; unset or empty -> `fallback`. Anything else throws an Error
/// naming the variable and the value (a typo must not silently pick a code path).
bool envSwitch(const char* name, bool fallback);

}  // namespace mantissa
