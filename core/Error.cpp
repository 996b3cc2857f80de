#include "core/Error.h"

#include <cstring>

namespace mantissa::detail {

void throwError(const char* file, int line, const std::string& msg) {
  // Keep only the path below the source root so messages are stable across build machines.
  const char* rel = file;
  for (const char* top : {"/core/", "/formats/", "/layers/", "/optim/", "/data/", "/apps/"}) {
    if (const char* p = std::strstr(file, top)) {
      rel = p + 1;
      break;
    }
  }
  throw Error(msg + " [" + rel + ":" + std::to_string(line) + "]");
}

}  // namespace mantissa::detail
