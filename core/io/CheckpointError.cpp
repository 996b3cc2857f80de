#include "core/io/CheckpointError.h"

namespace mantissa::io {

namespace {
std::string compose(const std::filesystem::path& path, const std::string& key,
                    const std::string& what) {
  return path.string() + ": " + (key.empty() ? std::string() : "'" + key + "': ") + what;
}
}  // namespace

CheckpointError::CheckpointError(const std::filesystem::path& path, const std::string& key,
                                 const std::string& what)
    : Error(compose(path, key, what)), path_(path), key_(key), reason_(what) {}

}  // namespace mantissa::io
