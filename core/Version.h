#pragma once

namespace mantissa {

/// Library version ("0.1.0"), recorded in checkpoints and logs.
const char* versionString();

}  // namespace mantissa
