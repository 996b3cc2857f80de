#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace mantissa {

/// The one exception type of the library. The message always names what was wrong (the op, the
/// option, the file and key) so a user can act on it without a debugger.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

namespace detail {
template <class... Args>
std::string concat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}
[[noreturn]] void throwError(const char* file, int line, const std::string& msg);
}  // namespace detail

}  // namespace mantissa

/// Throws mantissa::Error with file:line and the streamed message parts when `cond` is false.
#define MANTISSA_CHECK(cond, ...)                                                          \
  do {                                                                                     \
    if (!(cond)) [[unlikely]] {                                                            \
      ::mantissa::detail::throwError(__FILE__, __LINE__,                                   \
                                     ::mantissa::detail::concat(__VA_ARGS__));             \
    }                                                                                      \
  } while (0)
