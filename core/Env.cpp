#include "core/Env.h"

#include <cstdlib>
#include <string_view>

#include "core/Error.h"

namespace mantissa {

bool envSwitch(const char* name, bool fallback) {
  const char* raw = std::getenv(name);
  if (!raw || !*raw) return fallback;
  const std::string_view v(raw);
  if (v == "1" || v == "on" || v == "true") return true;
  if (v == "0" || v == "off" || v == "false") return false;
  detail::throwError(__FILE__, __LINE__,
                     detail::concat("environment variable ", name, "='", v,
                                    "': expected 1, on, true, 0, off or false"));
}

}  // namespace mantissa
