#pragma once

#include <filesystem>
#include <string>

#include "core/Error.h"

namespace mantissa::io {

/// An error reading or writing a state file (HDF5 state dicts and checkpoints). The message
/// always starts with the file path and names the key when one is involved:
/// "runs/run.h5: 'model/fc.weight': shape [10, 4] in the file, [10, 3] expected".
class CheckpointError : public Error {
 public:
  CheckpointError(const std::filesystem::path& path, const std::string& key,
                  const std::string& what);

  /// The file the error is about.
  const std::filesystem::path& path() const { return path_; }
  /// The '/'-separated state key involved, or "" when the error concerns the whole file.
  const std::string& key() const { return key_; }
  /// The message without the "path: 'key': " prefix.
  const std::string& reason() const { return reason_; }

 private:
  std::filesystem::path path_;
  std::string key_;
  std::string reason_;
};

}  // namespace mantissa::io
