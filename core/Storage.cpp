#include "core/Storage.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <new>

#include <sys/mman.h>

#include "core/DType.h"
#include "core/Error.h"

namespace mantissa {

namespace {
// Buffers from this size up are aligned to 2 MiB and marked for transparent huge pages: on VMs a
// 4 KiB page fault can cost ~10 us, so first-touching a 32 MiB activation took ~100 ms with
// small pages and ~3 ms with huge ones (measured on the CI machine kind, THP mode "madvise").
constexpr size_t kHugePageBytes = size_t{2} << 20;
constexpr size_t kHugePageThreshold = size_t{4} << 20;
std::atomic<size_t> gLive{0};
std::atomic<size_t> gPeak{0};
std::atomic<bool> gPoison{false};

// Freed large blocks are kept for reuse, keyed by their padded size. A training step allocates
// the same activation and gradient shapes every iteration; without the cache each of them is a
// fresh mmap whose pages the kernel faults in and clears (measured: ~40% of a ResNet-20 step in
// page faults, kernel page clearing and munmap). Blocks below kCacheMin go straight to malloc,
// which already recycles them. The cache is bounded; beyond kCacheMax blocks are returned.
constexpr size_t kCacheMin = size_t{64} << 10;
constexpr size_t kCacheMax = size_t{2} << 30;

struct BlockCache {
  std::mutex mutex;
  std::multimap<size_t, void*> free;  // padded size -> block
  size_t bytes = 0;

  void* take(size_t padded) {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = free.find(padded);
    if (it == free.end()) return nullptr;
    void* p = it->second;
    free.erase(it);
    bytes -= padded;
    return p;
  }
  bool give(void* p, size_t padded) {
    std::lock_guard<std::mutex> lock(mutex);
    if (bytes + padded > kCacheMax) return false;
    free.emplace(padded, p);
    bytes += padded;
    return true;
  }
};

BlockCache& cache() {
  // Intentionally leaked: storages may be destroyed during static destruction.
  static BlockCache* c = new BlockCache();
  return *c;
}

size_t paddedSize(size_t nbytes, size_t align) {
  return (std::max<size_t>(nbytes, 1) + align - 1) / align * align;
}

size_t alignmentFor(size_t nbytes) {
  return nbytes >= kHugePageThreshold ? kHugePageBytes : Storage::kAlignment;
}
}  // namespace

Storage::Storage(size_t nbytes, Init init) : nbytes_(nbytes) {
  const size_t align = alignmentFor(nbytes);
  // aligned_alloc requires a size that is a multiple of the alignment.
  const size_t padded = paddedSize(nbytes, align);
  if (padded >= kCacheMin) data_ = cache().take(padded);
  if (!data_) {
    data_ = std::aligned_alloc(align, padded);
    if (!data_) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
    if (align == kHugePageBytes) madvise(data_, padded, MADV_HUGEPAGE);  // a hint; failure is harmless
#endif
  }
  // Zeroing a recycled multi-MB block costs a full memory pass; outputs that are written in
  // full skip it (Init::Uninitialized).
  if (init == Init::Zeroed) {
    std::memset(data_, 0, padded);
  } else if (gPoison.load(std::memory_order_relaxed)) {
    std::memset(data_, 0xff, padded);
  }
  size_t live = gLive.fetch_add(nbytes) + nbytes;
  size_t peak = gPeak.load();
  while (live > peak && !gPeak.compare_exchange_weak(peak, live)) {
  }
}

Storage::~Storage() {
  const size_t padded = paddedSize(nbytes_, alignmentFor(nbytes_));
  if (padded < kCacheMin || !cache().give(data_, padded)) std::free(data_);
  gLive.fetch_sub(nbytes_);
}

size_t Storage::liveBytes() { return gLive.load(); }
size_t Storage::peakBytes() { return gPeak.load(); }
void Storage::resetPeak() { gPeak.store(gLive.load()); }
void Storage::setPoisonUninitialized(bool on) { gPoison.store(on); }
bool Storage::poisonUninitialized() { return gPoison.load(); }

size_t elementSize(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::F64: return 8;
    case DType::I64: return 8;
    case DType::I32: return 4;
    case DType::I16: return 2;
    case DType::U16: return 2;
    case DType::I8: return 1;
    case DType::U8: return 1;
  }
  MANTISSA_CHECK(false, "unknown dtype");
}

std::string dtypeName(DType t) {
  switch (t) {
    case DType::F32: return "f32";
    case DType::F64: return "f64";
    case DType::I64: return "i64";
    case DType::I32: return "i32";
    case DType::I16: return "i16";
    case DType::U16: return "u16";
    case DType::I8: return "i8";
    case DType::U8: return "u8";
  }
  return "?";
}

}  // namespace mantissa
