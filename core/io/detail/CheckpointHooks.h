#pragma once

// Internal: saveCheckpoint with fault-injection hooks, for the tests that simulate a failure or
// a kill between writing and renaming.

#include "core/io/Checkpoint.h"
#include "core/io/detail/AtomicFile.h"

namespace mantissa::io::detail {

void saveCheckpoint(const std::filesystem::path& path, const SaveParts& parts,
                    const CheckpointMeta& meta, const AtomicWriteHooks& hooks);

}  // namespace mantissa::io::detail
