#include "core/Version.h"

namespace mantissa {

const char* versionString() { return MANTISSA_VERSION; }

}  // namespace mantissa
