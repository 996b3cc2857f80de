#pragma once

#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "core/DType.h"
#include "core/Error.h"
#include "core/Shape.h"
#include "core/Storage.h"

namespace mantissa {

class Rng;
class Tensor;

namespace autograd {
struct Node;
struct AutogradMeta;
}  // namespace autograd

struct BackwardOptions;

namespace detail {
/// Shared state behind a Tensor handle: storage, layout and optional autograd metadata.
struct TensorImpl {
  StoragePtr storage;
  Shape shape;
  Shape strides;  // in elements
  int64_t offset = 0;  // in elements
  DType dtype = DType::F32;
  std::shared_ptr<autograd::AutogradMeta> autograd;
};
}  // namespace detail

/// Value-semantic handle to an n-dimensional array: copying a Tensor shares the data (like
/// torch::Tensor); views (reshape, permute, slice, expand) share storage with different strides.
/// F32 is the compute type; integer dtypes hold labels and packed codes. Every view and op that
/// can carry a gradient records itself on the autograd graph when an input needs a gradient.
class Tensor {
 public:
  /// An undefined tensor (no storage). `defined()` is false.
  Tensor() = default;

  // ---- creation ---------------------------------------------------------------------------
  /// Contiguous tensor, zero-filled (callers may rely on it, e.g. to accumulate into it).
  static Tensor empty(const Shape& shape, DType dtype = DType::F32);
  /// Contiguous tensor with unspecified contents: for outputs written in full before they are
  /// read (skips the zero-fill pass; Storage::PoisonGuard fills it with NaN in tests).
  static Tensor uninitialized(const Shape& shape, DType dtype = DType::F32);
  static Tensor zeros(const Shape& shape, DType dtype = DType::F32);
  static Tensor ones(const Shape& shape, DType dtype = DType::F32);
  static Tensor full(const Shape& shape, double value, DType dtype = DType::F32);
  /// Copies `values` (row-major) into a new tensor of `shape` (default: 1-D).
  static Tensor fromVector(const std::vector<float>& values, Shape shape = {});
  static Tensor fromInts(const std::vector<int64_t>& values, Shape shape = {});
  /// [0, 1, ..., n-1] as F32.
  static Tensor arange(int64_t n);
  /// Uniform in [lo, hi) and normal(mean, std) from an explicit generator.
  static Tensor rand(const Shape& shape, Rng& rng, float lo = 0.f, float hi = 1.f);
  static Tensor randn(const Shape& shape, Rng& rng, float mean = 0.f, float std = 1.f);
  /// Wraps existing storage (no copy).
  static Tensor fromStorage(StoragePtr storage, Shape shape, Shape strides, int64_t offset,
                            DType dtype);

  // ---- layout -----------------------------------------------------------------------------
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  const Shape& strides() const { return impl().strides; }
  int64_t offset() const { return impl().offset; }
  DType dtype() const { return impl().dtype; }
  int64_t dim() const { return static_cast<int64_t>(impl().shape.size()); }
  /// Size of axis `d` (negative counts from the end).
  int64_t size(int64_t d) const;
  int64_t numel() const { return numelOf(impl().shape); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * elementSize(dtype()); }
  bool isContiguous() const;
  const StoragePtr& storage() const { return impl().storage; }
  /// True when both handles refer to the same impl (same tensor, not just same storage).
  bool isSameAs(const Tensor& other) const { return impl_ == other.impl_; }

  /// Pointer to the first element (storage + offset). Checks the dtype.
  template <class T>
  T* data();
  template <class T>
  const T* data() const;
  /// The value of a one-element tensor.
  template <class T = float>
  T item() const;
  /// A row-major copy of all elements.
  template <class T = float>
  std::vector<T> toVector() const;
  /// Element at a full index (slow; for tests and printing).
  double at(const std::vector<int64_t>& index) const;

  // ---- views and copies (autograd-aware) ---------------------------------------------------
  /// This tensor if contiguous, otherwise a contiguous copy.
  Tensor contiguous() const;
  /// Deep copy with its own storage (keeps the graph: gradient flows through).
  Tensor clone() const;
  /// Same shape, one -1 allowed. A view when the layout permits, a copy otherwise.
  Tensor reshape(Shape shape) const;
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor transpose(int64_t d0, int64_t d1) const;
  /// Elements [start, end) with `step` along `dim`; negative start/end count from the end.
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  /// Broadcast size-1 axes to `shape` (stride 0; no copy). Leading axes may be added.
  Tensor expand(const Shape& shape) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor squeeze(int64_t dim) const;
  /// Merges axes [startDim, endDim] into one.
  Tensor flatten(int64_t startDim = 0, int64_t endDim = -1) const;
  /// Same data in another dtype (a copy; no gradient).
  Tensor to(DType dtype) const;

  // ---- autograd ---------------------------------------------------------------------------
  /// Marks a leaf as needing a gradient. Returns *this for chaining.
  Tensor& requiresGrad(bool on = true);
  /// True for a leaf that requires a gradient or a result of an op recorded on the graph.
  bool needsGrad() const;
  /// True when the tensor was not produced by a recorded op.
  bool isLeaf() const;
  /// Accumulated gradient (undefined until a backward reaches this leaf).
  Tensor grad() const;
  void setGrad(const Tensor& g);
  /// Drops the accumulated gradient.
  void zeroGrad();
  /// Reverse-mode differentiation from this one-element tensor (seed gradient 1).
  void backward() const;
  void backward(const BackwardOptions& opts) const;
  /// Same data, cut off from the graph.
  Tensor detach() const;
  /// Name of the op that produced this tensor ("" for leaves).
  std::string gradFnName() const;
  /// Autograd internals (for the engine and ops).
  const std::shared_ptr<autograd::AutogradMeta>& autogradMeta() const { return impl().autograd; }
  std::shared_ptr<autograd::AutogradMeta>& mutableAutogradMeta() { return impl().autograd; }

  // ---- printing ---------------------------------------------------------------------------
  /// "Tensor f32 [2, 3]\n[[...]]" with at most `maxPerDim` entries shown per axis.
  std::string toString(int64_t maxPerDim = 6) const;

 private:
  explicit Tensor(std::shared_ptr<detail::TensorImpl> impl) : impl_(std::move(impl)) {}
  detail::TensorImpl& impl() const {
    MANTISSA_CHECK(impl_ != nullptr, "use of an undefined tensor");
    return *impl_;
  }
  static Tensor allocate(const Shape& shape, DType dtype, Storage::Init init);
  /// A new handle over the same storage with another layout (no autograd).
  Tensor viewAs(Shape shape, Shape strides, int64_t offset) const;

  std::shared_ptr<detail::TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

/// Options of Tensor::backward.
struct BackwardOptions {
  /// Seed gradient of the output's shape; undefined means ones (one-element outputs only).
  Tensor grad;
  /// Keep the graph's closures so backward can run through it again.
  bool retainGraph = false;
};

// ---- template definitions -------------------------------------------------------------------
template <class T>
T* Tensor::data() {
  MANTISSA_CHECK(dtypeOf<T>() == dtype(), "data<", mantissa::dtypeName(dtypeOf<T>()),
                 ">() on a tensor of dtype ", mantissa::dtypeName(dtype()));
  return static_cast<T*>(impl().storage->data()) + impl().offset;
}

template <class T>
const T* Tensor::data() const {
  MANTISSA_CHECK(dtypeOf<T>() == dtype(), "data<", mantissa::dtypeName(dtypeOf<T>()),
                 ">() on a tensor of dtype ", mantissa::dtypeName(dtype()));
  return static_cast<const T*>(impl().storage->data()) + impl().offset;
}

template <class T>
T Tensor::item() const {
  MANTISSA_CHECK(numel() == 1, "item() on a tensor with ", numel(), " elements (shape ",
                 mantissa::toString(shape()), ")");
  return static_cast<T>(at(Shape(shape().size(), 0)));
}

template <class T>
std::vector<T> Tensor::toVector() const {
  Tensor c = contiguous();
  std::vector<T> out(static_cast<size_t>(numel()));
  if (c.dtype() == dtypeOf<T>()) {
    const T* p = c.data<T>();
    std::copy(p, p + out.size(), out.begin());
  } else {
    Tensor d = c.to(dtypeOf<T>());
    const T* p = d.data<T>();
    std::copy(p, p + out.size(), out.begin());
  }
  return out;
}

}  // namespace mantissa
