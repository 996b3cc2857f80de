#include "core/ops/detail/Strided.h"

#include <algorithm>
#include <cstring>

#include "core/parallel/ParallelFor.h"

namespace mantissa::ops::detail {

namespace {
template <class T>
void copyTyped(const Tensor& src, Tensor& dst) {
  const T* s = static_cast<const T*>(src.storage()->data());
  T* d = static_cast<T*>(dst.storage()->data());
  const int64_t n = src.numel();
  if (n == 0) return;
  if (src.dim() == 0) {
    d[dst.offset()] = s[src.offset()];
    return;
  }
  // Rows along the last axis: the cursor walks the outer axes once per row and the row itself is
  // a plain strided loop (a memcpy when both sides are dense), instead of a cursor step per
  // element (the option-A shortcut's strided slice + pad of the ResNets goes through here).
  const Shape& shape = src.shape();
  const int64_t inner = shape.back();
  const int64_t ss = src.strides().back(), ds = dst.strides().back();
  const Shape outer(shape.begin(), shape.end() - 1);
  const Shape srcOuter(src.strides().begin(), src.strides().end() - 1);
  const Shape dstOuter(dst.strides().begin(), dst.strides().end() - 1);
  const int64_t rows = n / inner;
  parallelFor(0, rows, std::max<int64_t>(1, (1 << 14) / inner), [&](int64_t b, int64_t e) {
    StridedCursor cs(outer, srcOuter, src.offset());
    StridedCursor cd(outer, dstOuter, dst.offset());
    cs.seek(b, src.offset());
    cd.seek(b, dst.offset());
    for (int64_t r = b; r < e; ++r) {
      const T* sp = s + cs.offset();
      T* dp = d + cd.offset();
      if (ss == 1 && ds == 1) {
        std::memcpy(dp, sp, static_cast<size_t>(inner) * sizeof(T));
      } else {
        for (int64_t j = 0; j < inner; ++j) dp[j * ds] = sp[j * ss];
      }
      cs.next();
      cd.next();
    }
  });
}
}  // namespace

void copyStrided(const Tensor& src, Tensor& dst) {
  MANTISSA_CHECK(src.shape() == dst.shape(), "copy: shape ", toString(src.shape()), " into ",
                 toString(dst.shape()));
  MANTISSA_CHECK(src.dtype() == dst.dtype(), "copy: dtype ", dtypeName(src.dtype()), " into ",
                 dtypeName(dst.dtype()));
  if (src.isContiguous() && dst.isContiguous()) {
    std::memcpy(static_cast<char*>(dst.storage()->data()) + dst.offset() * elementSize(dst.dtype()),
                static_cast<const char*>(src.storage()->data()) +
                    src.offset() * elementSize(src.dtype()),
                src.nbytes());
    return;
  }
  switch (elementSize(src.dtype())) {
    case 1: copyTyped<uint8_t>(src, dst); break;
    case 2: copyTyped<uint16_t>(src, dst); break;
    case 4: copyTyped<uint32_t>(src, dst); break;
    default: copyTyped<uint64_t>(src, dst); break;
  }
}

Shape broadcastStrides(const Tensor& t, const Shape& shape) {
  Shape st(shape.size(), 0);
  size_t lead = shape.size() - t.shape().size();
  for (size_t i = lead; i < shape.size(); ++i) {
    st[i] = t.shape()[i - lead] == 1 ? 0 : t.strides()[i - lead];
  }
  return st;
}

}  // namespace mantissa::ops::detail
