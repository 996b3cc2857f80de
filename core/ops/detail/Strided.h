#pragma once

#include <cstdint>
#include <vector>

#include "core/Tensor.h"

namespace mantissa::ops::detail {

/// Copies src into dst element by element (same shape, same dtype, any strides).
void copyStrided(const Tensor& src, Tensor& dst);

/// Walks the offsets of a strided index space, innermost axis fastest. Used by kernels that
/// handle arbitrary layouts; the contiguous fast paths skip it.
class StridedCursor {
 public:
  StridedCursor(const Shape& shape, const Shape& strides, int64_t offset)
      : shape_(shape), strides_(strides), index_(shape.size(), 0), offset_(offset) {}
  int64_t offset() const { return offset_; }
  /// Advances to the next element (row-major).
  void next() {
    for (size_t d = shape_.size(); d-- > 0;) {
      if (++index_[d] < shape_[d]) {
        offset_ += strides_[d];
        return;
      }
      offset_ -= strides_[d] * (shape_[d] - 1);
      index_[d] = 0;
    }
  }
  /// Jumps to the element with row-major linear index `linear`.
  void seek(int64_t linear, int64_t base) {
    offset_ = base;
    for (size_t d = shape_.size(); d-- > 0;) {
      index_[d] = linear % shape_[d];
      linear /= shape_[d];
      offset_ += index_[d] * strides_[d];
    }
  }

 private:
  const Shape& shape_;
  const Shape& strides_;
  std::vector<int64_t> index_;
  int64_t offset_;
};

/// Strides of `t` broadcast to `shape` (0 on broadcast axes, leading axes added).
Shape broadcastStrides(const Tensor& t, const Shape& shape);

}  // namespace mantissa::ops::detail
