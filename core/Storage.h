#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace mantissa {

/// A 64-byte-aligned byte buffer shared by all views of a tensor. Zero-filled unless created
/// with Init::Uninitialized (for outputs that are written in full before anything reads them).
class Storage {
 public:
  static constexpr size_t kAlignment = 64;

  enum class Init : uint8_t { Zeroed, Uninitialized };

  explicit Storage(size_t nbytes, Init init = Init::Zeroed);
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

  /// Testing hook: while on, every Init::Uninitialized buffer (fresh or recycled) is filled with
  /// 0xFF bytes (f32 NaN, integer -1), so a test can prove that no op reads memory it has not
  /// written. Process-wide; off by default. Prefer the RAII PoisonGuard.
  static void setPoisonUninitialized(bool on);
  static bool poisonUninitialized();
  /// Turns poisoning on for its lifetime and restores the previous setting.
  class PoisonGuard {
   public:
    PoisonGuard() : previous_(poisonUninitialized()) { setPoisonUninitialized(true); }
    ~PoisonGuard() { setPoisonUninitialized(previous_); }
    PoisonGuard(const PoisonGuard&) = delete;
    PoisonGuard& operator=(const PoisonGuard&) = delete;

   private:
    bool previous_;
  };

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
};

using StoragePtr = std::shared_ptr<Storage>;

}  // namespace mantissa
