#pragma once

// Internal: the mapping of a StateDict onto an HDF5 file, on the HDF5 C API (the C++ wrapper
// throws from deep inside and its destructors clear HDF5's error stack before we can read the
// cause; with the C API every failure is checked where it happens and the innermost HDF5
// message is kept). Only core/io .cpp files include this header.

#include <hdf5.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "core/io/StateDict.h"

namespace mantissa::io::detail {

/// Owns one HDF5 identifier and releases it with the matching close function.
class H5Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  H5Handle() = default;
  H5Handle(hid_t id, Closer close) : id_(id), close_(close) {}
  H5Handle(H5Handle&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = H5I_INVALID_HID; }
  H5Handle& operator=(H5Handle&& o) noexcept;
  H5Handle(const H5Handle&) = delete;
  H5Handle& operator=(const H5Handle&) = delete;
  ~H5Handle() { reset(); }

  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  /// Closes now and returns the close function's status (H5Fclose reports late write errors).
  herr_t reset();

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer close_ = nullptr;
};

/// Serialises all HDF5 use of this library (the C++ and non-threadsafe builds of HDF5 are not
/// safe for concurrent use) and silences HDF5's own error printing on this thread: failures
/// become CheckpointErrors instead of stacks on stderr.
std::unique_lock<std::recursive_mutex> lockHdf5();

/// The innermost message of the current HDF5 error stack ("truncated file: eof = 96, ...").
std::string hdf5Cause();
/// Throws CheckpointError(file, key, what + " (HDF5: cause)").
[[noreturn]] void throwHdf5(const std::filesystem::path& file, const std::string& key,
                            const std::string& what);

/// A complete HDF5 file held in memory.
struct FileImage {
  struct Free {
    void operator()(char* p) const;
  };
  std::unique_ptr<char, Free> bytes;
  size_t size = 0;
};

/// A new HDF5 file built in memory (the core driver; nothing touches the disk until the image
/// is written by plain POSIX calls). HDF5 1.10 cannot recover from a failed write of its own:
/// after a full disk the file stays half-open and the library crashes at exit; building the
/// image in memory keeps every I/O error on our side. Superblock v2+ and version-2 object
/// headers carry checksums, so HDF5 itself detects damaged metadata; no object timestamps, so
/// equal state gives equal bytes. `sizeHint` (bytes) sizes the buffer; `path` names errors.
/// The memory behind it is ours (HDF5's file-image callbacks): huge-page backed, and handed
/// over without a copy when the file closes.
struct ImageBuffer;
struct ImageFile {
  std::unique_ptr<ImageBuffer, void (*)(ImageBuffer*)> buffer{nullptr, nullptr};  // outlives file
  H5Handle file;
  hid_t get() const { return file.get(); }
};
ImageFile createImageFile(const std::filesystem::path& path, size_t sizeHint);
/// Closes an in-memory file and returns its bytes.
FileImage takeImage(ImageFile& file, const std::filesystem::path& path);
/// Opens read-only with clear errors: no such file, not an HDF5 file, truncated or damaged.
H5Handle openFile(const std::filesystem::path& path);

/// Writes every tensor as a dataset and every attribute as a UTF-8 string attribute (see
/// docs/checkpoints.md for the mapping). Throws naming the key on invalid or conflicting keys.
void writeTree(hid_t file, const StateDict& state, const std::filesystem::path& path);
/// Reads every dataset and attribute below the root into `out`. Numeric attributes (as h5py
/// writes them) come back as decimal text. Throws naming the key on unsupported content.
void readTree(hid_t file, StateDict& out, const std::filesystem::path& path);

/// Bytes a file holding `state` will take, roughly (for sizing the in-memory image).
size_t estimateFileSize(const StateDict& state);

/// Opens the group at absolute `groupPath` ("/meta"); an invalid handle when it does not exist.
H5Handle openGroupIfExists(hid_t file, const std::string& groupPath,
                           const std::filesystem::path& path);
/// Creates (or opens) the group at absolute `groupPath`, creating parents as needed.
H5Handle ensureGroup(hid_t file, const std::string& groupPath, const std::filesystem::path& path);

/// Typed scalar attributes on any object (for checkpoint metadata that h5py should show as
/// numbers). `key` is only used in error messages.
void writeAttr(hid_t obj, const std::string& name, const std::string& value,
               const std::filesystem::path& path, const std::string& key);
void writeAttr(hid_t obj, const std::string& name, int64_t value, const std::filesystem::path& path,
               const std::string& key);
void writeAttr(hid_t obj, const std::string& name, uint64_t value,
               const std::filesystem::path& path, const std::string& key);
void writeAttr(hid_t obj, const std::string& name, double value, const std::filesystem::path& path,
               const std::string& key);
/// Every attribute of `obj` as text, by name. `keyPrefix` ("meta/") is used in error messages.
std::map<std::string, std::string> readAttrs(hid_t obj, const std::filesystem::path& path,
                                             const std::string& keyPrefix);

/// Text of numbers as both the writer and the reader spell them, so text round-trips exactly:
/// decimal integers and the shortest decimal that reads back to the same double.
std::string numberText(int64_t v);
std::string numberText(uint64_t v);
std::string numberText(double v);

}  // namespace mantissa::io::detail
