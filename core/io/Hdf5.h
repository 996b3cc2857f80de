#pragma once

#include <filesystem>

#include "core/io/CheckpointError.h"
#include "core/io/StateDict.h"

namespace mantissa::io {

/// Writes `state` to an HDF5 file at `path`, replaced atomically and durably like
/// saveCheckpoint does (but a plain state file: no /meta, no checksum). The mapping, readable
/// with h5py/h5dump:
///   - tensor `a/b/c`  -> dataset `c` in group `/a/b`, little-endian native type of the dtype
///     (f32 -> IEEE F32LE, i64 -> STD I64LE, ...), the tensor's shape; shape [] is a scalar
///     dataspace and [1] a one-element array, so both round-trip; empty tensors keep their shape.
///     Dots are ordinary characters: `model/layer1.0.conv1.weight` -> `/model`, dataset
///     `layer1.0.conv1.weight`.
///   - attribute `a/b/c` -> UTF-8 string attribute `c` on the object `/a/b` (the dataset if `a/b`
///     is a tensor, else the group, created if needed); a top-level attribute goes on `/`.
/// Keys must be non-empty '/'-separated paths without empty, "." or ".." components, and a key
/// cannot be both a tensor and a prefix of other keys. Errors are CheckpointErrors naming the
/// file and the key.
void writeHdf5(const std::filesystem::path& path, const StateDict& state);

/// Reads a file written by writeHdf5 (or by h5py following the same layout) back into a
/// StateDict: every dataset becomes a tensor and every attribute a string, so
/// `readHdf5(p)` equals what was written, bit for bit. Numeric attributes (h5py's
/// `attrs['x'] = 3`) come back as decimal text. Errors name the file and, where it applies, the
/// key: no such file, not an HDF5 file, truncated or damaged, unsupported types or links.
StateDict readHdf5(const std::filesystem::path& path);

}  // namespace mantissa::io
