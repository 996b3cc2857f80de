#include "core/Storage.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
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
}  // namespace

Storage::Storage(size_t nbytes) : nbytes_(nbytes) {
  // aligned_alloc requires a size that is a multiple of the alignment.
  const size_t align = nbytes >= kHugePageThreshold ? kHugePageBytes : kAlignment;
  size_t padded = (std::max<size_t>(nbytes, 1) + align - 1) / align * align;
  data_ = std::aligned_alloc(align, padded);
  if (!data_) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
  if (align == kHugePageBytes) madvise(data_, padded, MADV_HUGEPAGE);  // a hint; failure is harmless
#endif
  std::memset(data_, 0, padded);
  size_t live = gLive.fetch_add(nbytes) + nbytes;
  size_t peak = gPeak.load();
  while (live > peak && !gPeak.compare_exchange_weak(peak, live)) {
  }
}

Storage::~Storage() {
  std::free(data_);
  gLive.fetch_sub(nbytes_);
}

size_t Storage::liveBytes() { return gLive.load(); }
size_t Storage::peakBytes() { return gPeak.load(); }
void Storage::resetPeak() { gPeak.store(gLive.load()); }

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
