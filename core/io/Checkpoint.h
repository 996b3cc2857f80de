#pragma once

#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/io/CheckpointError.h"
#include "core/io/StateDict.h"

namespace mantissa::io {

/// Version of the checkpoint layout this build writes (and the newest it reads). Bumped when
/// the meaning of a key or group changes; older versions stay readable.
inline constexpr int64_t kCheckpointFormatVersion = 1;

/// The `/meta` group of a checkpoint: what the file is, where it came from, where training
/// stood. Each field is one attribute of `/meta` (snake_case names, see docs/checkpoints.md);
/// integers are stored as HDF5 integers, text as UTF-8 strings.
struct CheckpointMeta {
  /// Set by saveCheckpoint: kCheckpointFormatVersion, versionString(), and the UTC time of the
  /// save as ISO 8601 ("2024-05-01T12:34:56Z"). Values passed in are ignored.
  int64_t formatVersion = kCheckpointFormatVersion;
  std::string libraryVersion;
  std::string created;

  std::string app;          ///< the program that wrote it ("train_cifar")
  std::string model;        ///< model name, checked on load ("resnet20")
  std::string modelConfig;  ///< free text describing the model's configuration
  std::string precision;    ///< precision recipe / schedule text ("hbfp8;first,last=hbfp6")
  int64_t epoch = 0;        ///< epochs completed
  int64_t step = 0;         ///< optimizer steps completed
  uint64_t seed = 0;
  std::string commandLine;
  /// Validation metric the checkpoint is scored by ("" = none; CheckpointManager keeps the best).
  std::string metricName;
  double metric = std::numeric_limits<double>::quiet_NaN();
  /// Any other key/values, stored as further string attributes of /meta. Names must not be one
  /// of the fields above and must not contain '/'.
  std::map<std::string, std::string> extra;
};

/// The pieces of state a checkpoint holds, each saved under a key prefix (a trailing '/' is
/// added when missing). A Module goes at prefix "" so its own `model/`, `buffers/` and `quant/`
/// groups land at the top level; everything else takes a group of its own:
///   saveCheckpoint(path, {{"", &model}, {"optim", &sgd}, {"data", &loader}, {"rng", &rng}}, meta);
/// Parts must write only under their prefix, never under `meta/`, and not into each other's
/// keys.
using SaveParts = std::vector<std::pair<std::string, const Stateful*>>;
using LoadParts = std::vector<std::pair<std::string, Stateful*>>;

/// Options of loadCheckpoint.
struct CheckpointLoadOptions {
  /// When non-empty, the file's meta model name must equal it (a checkpoint of another model is
  /// refused naming both). Leave empty to accept any model.
  std::string expectModel;
  /// Refuse keys that no part expects inside the top-level groups the parts use (a quantization
  /// point, optimizer entry or buffer this program does not have). Groups no part uses are
  /// ignored, so the model alone can be loaded from a full training checkpoint.
  bool strictKeys = true;
};

/// Writes one HDF5 file holding every part and `/meta`, atomically and durably: the data goes
/// to `<path>.tmp-<pid>` in the same directory (created if missing), is flushed and fsynced,
/// then renamed over `path`, and the directory is fsynced. A failure at any point (an
/// exception from a part, a full disk, a crash, kill -9) leaves the previous file at `path`
/// intact; the temporary is removed on errors, and temporaries of dead processes (kill -9) are
/// removed by the next save to the same path. Parameters are stored as float32 master values
/// (see docs/checkpoints.md). `/meta` also records a CRC-32 of the whole content so damage
/// anywhere in the file is detected on load.
void saveCheckpoint(const std::filesystem::path& path, const SaveParts& parts,
                    const CheckpointMeta& meta);

/// Loads every part from `path` and returns the file's metadata. Strict, all-or-nothing: the
/// file must be a readable HDF5 checkpoint of a format version this build knows, its content
/// checksum must match, tensor shapes must equal the parts' current shapes, each part's
/// loadState must accept its keys (missing or extra parameters, another optimizer, ...), and no
/// unexpected keys may remain (see CheckpointLoadOptions). On any error nothing is changed:
/// parts already loaded are restored to their previous state. Errors are CheckpointErrors whose
/// message starts with the file path and names the key:
///   "runs/run.h5: 'model/fc.weight': shape [10, 64] in the file, the program expects [10, 32]".
CheckpointMeta loadCheckpoint(const std::filesystem::path& path, const LoadParts& parts,
                              const CheckpointLoadOptions& options = {});

/// The metadata of a checkpoint without reading the tensors (cheap; for listings, resume
/// decisions and `best` bookkeeping). Checks the format version like loadCheckpoint.
CheckpointMeta readMeta(const std::filesystem::path& path);

}  // namespace mantissa::io
