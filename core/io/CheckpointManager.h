#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <vector>

#include "core/io/Checkpoint.h"

namespace mantissa::io {

/// Whether a larger or a smaller validation metric is better (accuracy vs loss).
enum class MetricGoal : uint8_t { Maximize, Minimize };

/// Options of CheckpointManager (the apps' `--checkpoint PATH --keep K`).
struct CheckpointManagerOptions {
  /// The latest checkpoint, always the most recent save: what `--resume PATH` loads. History
  /// and best live beside it, named after its stem: `run.h5` -> `run-epoch0003-step00001200.h5`,
  /// `run-best.h5`.
  std::filesystem::path path;
  /// How many checkpoints to keep on disk. 1: just `path`. K > 1: also the history files of
  /// the last K saves (the newest of them is `path` under a second name: a hard link, no extra
  /// space). Older history files are deleted after each save; history files with a later
  /// epoch/step than the one just saved (left by a run you branched off) are never deleted.
  int64_t keep = 1;
  /// Keep `<stem>-best<ext>`: the save with the best CheckpointMeta::metric so far (saves
  /// without a metric name or with a NaN metric never become best; ties keep the earlier one).
  bool keepBest = true;
  MetricGoal goal = MetricGoal::Maximize;
  /// True when continuing a run: an existing best file keeps its title until a save beats its
  /// metric. False for a new run: its first scored save replaces a best file left by an earlier
  /// run at the same path.
  bool resume = false;
};

/// Saves training checkpoints with rotation and a best copy. Every file is written with
/// saveCheckpoint (atomic and durable) and the other names are made with atomic renames of hard
/// links, so each of `path`, the history files and the best file is always a complete
/// checkpoint, whatever moment a crash happens at.
class CheckpointManager {
 public:
  explicit CheckpointManager(CheckpointManagerOptions options);

  /// Saves `parts` with `meta`, then points `path` and (if the metric improved) the best file at
  /// it and deletes history beyond `keep`. Returns the path written (the history file when
  /// keep > 1, else `path`).
  std::filesystem::path save(const SaveParts& parts, const CheckpointMeta& meta);

  const std::filesystem::path& latestPath() const { return options_.path; }
  /// `<stem>-best<ext>` beside the latest path.
  std::filesystem::path bestPath() const;
  /// `<stem>-epoch<EEEE>-step<SSSSSSSS><ext>` (zero-padded, widened as needed).
  std::filesystem::path historyPath(int64_t epoch, int64_t step) const;
  /// History files on disk now, oldest first.
  std::vector<std::filesystem::path> history() const;
  /// The metric of the current best file, if there is one.
  std::optional<double> bestMetric() const { return best_; }

 private:
  bool improves(const CheckpointMeta& meta) const;
  void prune(int64_t epoch, int64_t step) const;

  CheckpointManagerOptions options_;
  std::optional<double> best_;
};

}  // namespace mantissa::io
