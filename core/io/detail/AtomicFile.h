#pragma once

// Internal: crash-safe replacement of files. A reader of `target` sees either the old file or
// the complete new one, never a mix: the new content is written to a temporary file in the same
// directory, flushed to disk, and renamed over the target (rename is atomic within a file
// system), after which the directory entry itself is flushed.

#include <cstddef>
#include <filesystem>
#include <functional>

namespace mantissa::io::detail {

/// Fault injection for tests: called with the temporary path after it is complete and synced,
/// just before the rename (a test can throw here, or kill the process).
struct AtomicWriteHooks {
  std::function<void(const std::filesystem::path& tmp)> beforeRename;
};

/// "<target>.tmp-<pid>": the temporary a process writes before renaming it over `target`.
std::filesystem::path tempPathFor(const std::filesystem::path& target);

/// Removes temporaries of `target` left by processes that no longer exist (a kill -9 or a power
/// cut during a save). Temporaries of live processes are left alone.
void removeStaleTemps(const std::filesystem::path& target);

/// Replaces `target` with what `write` puts into the temporary path it is given: creates the
/// directory if needed, writes, fsyncs the file, renames it over `target`, fsyncs the
/// directory. When `write` (or anything after it) throws, the temporary is removed and `target`
/// is untouched. Errors name `target`.
void replaceAtomically(const std::filesystem::path& target,
                       const std::function<void(const std::filesystem::path& tmp)>& write,
                       const AtomicWriteHooks& hooks = {});

/// Makes `target` another name of `source` (a hard link; a synced copy on file systems without
/// hard links), replacing any existing `target` atomically.
void linkAtomically(const std::filesystem::path& source, const std::filesystem::path& target);

/// Creates (or truncates) `file` and writes `size` bytes to it with plain POSIX calls. A full
/// disk or a file size limit becomes a CheckpointError naming `nameForErrors`.
void writeFileBytes(const std::filesystem::path& file, const char* data, size_t size,
                    const std::filesystem::path& nameForErrors);

/// fsync of a file and of a directory (so a completed rename survives a power cut).
void syncFile(const std::filesystem::path& path);
void syncDirectory(const std::filesystem::path& dir);

}  // namespace mantissa::io::detail
