#pragma once

#include <cstddef>
#include <memory>

namespace mantissa {

/// A 64-byte-aligned, zero-initialised byte buffer shared by all views of a tensor.
class Storage {
 public:
  static constexpr size_t kAlignment = 64;

  explicit Storage(size_t nbytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() { return data_; }
  const void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }

  /// Bytes currently held by all live storages of the process (for memory reports).
  static size_t liveBytes();
  /// Highest value liveBytes() reached since the last resetPeak().
  static size_t peakBytes();
  static void resetPeak();

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
};

using StoragePtr = std::shared_ptr<Storage>;

}  // namespace mantissa
