#include "core/ops/detail/Strided.h"

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
  parallelFor(0, n, 1 << 14, [&](int64_t b, int64_t e) {
    StridedCursor cs(src.shape(), src.strides(), src.offset());
    StridedCursor cd(dst.shape(), dst.strides(), dst.offset());
    cs.seek(b, src.offset());
    cd.seek(b, dst.offset());
    for (int64_t i = b; i < e; ++i) {
      d[cd.offset()] = s[cs.offset()];
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
