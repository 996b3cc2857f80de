#include "core/Tensor.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iomanip>
#include <ostream>
#include <sstream>

#include "core/Rng.h"
#include "core/autograd/Autograd.h"
#include "core/ops/Reduce.h"
#include "core/ops/detail/Strided.h"

namespace mantissa {

namespace {

template <class F>
void dispatchDType(DType t, F&& f) {
  switch (t) {
    case DType::F32: f(float{}); break;
    case DType::F64: f(double{}); break;
    case DType::I64: f(int64_t{}); break;
    case DType::I32: f(int32_t{}); break;
    case DType::I16: f(int16_t{}); break;
    case DType::U16: f(uint16_t{}); break;
    case DType::I8: f(int8_t{}); break;
    case DType::U8: f(uint8_t{}); break;
  }
}

}  // namespace

// ---- creation -------------------------------------------------------------------------------

Tensor Tensor::empty(const Shape& shape, DType dtype) {
  return allocate(shape, dtype, Storage::Init::Zeroed);
}

Tensor Tensor::uninitialized(const Shape& shape, DType dtype) {
  return allocate(shape, dtype, Storage::Init::Uninitialized);
}

Tensor Tensor::allocate(const Shape& shape, DType dtype, Storage::Init init) {
  for (int64_t d : shape) {
    MANTISSA_CHECK(d >= 0, "tensor shape ", mantissa::toString(shape), " has a negative size");
  }
  auto impl = std::make_shared<detail::TensorImpl>();
  impl->storage =
      std::make_shared<Storage>(static_cast<size_t>(numelOf(shape)) * elementSize(dtype), init);
  impl->shape = shape;
  impl->strides = contiguousStrides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::zeros(const Shape& shape, DType dtype) { return empty(shape, dtype); }

Tensor Tensor::ones(const Shape& shape, DType dtype) { return full(shape, 1.0, dtype); }

Tensor Tensor::full(const Shape& shape, double value, DType dtype) {
  Tensor t = uninitialized(shape, dtype);
  dispatchDType(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* p = t.data<T>();
    std::fill(p, p + t.numel(), static_cast<T>(value));
  });
  return t;
}

Tensor Tensor::fromVector(const std::vector<float>& values, Shape shape) {
  if (shape.empty() && values.size() != 1) shape = {static_cast<int64_t>(values.size())};
  MANTISSA_CHECK(numelOf(shape) == static_cast<int64_t>(values.size()), "fromVector: ",
                 values.size(), " values do not fill shape ", mantissa::toString(shape));
  Tensor t = uninitialized(shape);
  std::copy(values.begin(), values.end(), t.data<float>());
  return t;
}

Tensor Tensor::fromInts(const std::vector<int64_t>& values, Shape shape) {
  if (shape.empty() && values.size() != 1) shape = {static_cast<int64_t>(values.size())};
  MANTISSA_CHECK(numelOf(shape) == static_cast<int64_t>(values.size()), "fromInts: ",
                 values.size(), " values do not fill shape ", mantissa::toString(shape));
  Tensor t = uninitialized(shape, DType::I64);
  std::copy(values.begin(), values.end(), t.data<int64_t>());
  return t;
}

Tensor Tensor::arange(int64_t n) {
  Tensor t = uninitialized({n});
  float* p = t.data<float>();
  for (int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(i);
  return t;
}

Tensor Tensor::rand(const Shape& shape, Rng& rng, float lo, float hi) {
  Tensor t = uninitialized(shape);
  float* p = t.data<float>();
  for (int64_t i = 0, n = t.numel(); i < n; ++i) p[i] = lo + (hi - lo) * rng.uniform();
  return t;
}

Tensor Tensor::randn(const Shape& shape, Rng& rng, float mean, float std) {
  Tensor t = uninitialized(shape);
  float* p = t.data<float>();
  for (int64_t i = 0, n = t.numel(); i < n; ++i) p[i] = mean + std * rng.normal();
  return t;
}

Tensor Tensor::fromStorage(StoragePtr storage, Shape shape, Shape strides, int64_t offset,
                           DType dtype) {
  MANTISSA_CHECK(shape.size() == strides.size(), "fromStorage: shape ", mantissa::toString(shape),
                 " and strides ", mantissa::toString(strides), " differ in rank");
  auto impl = std::make_shared<detail::TensorImpl>();
  impl->storage = std::move(storage);
  impl->shape = std::move(shape);
  impl->strides = std::move(strides);
  impl->offset = offset;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

// ---- layout ---------------------------------------------------------------------------------

int64_t Tensor::size(int64_t d) const { return shape()[normalizeAxis(d, dim(), "size(): axis")]; }

bool Tensor::isContiguous() const {
  int64_t expected = 1;
  for (int64_t i = dim() - 1; i >= 0; --i) {
    if (shape()[i] == 1) continue;
    if (strides()[i] != expected) return false;
    expected *= shape()[i];
  }
  return true;
}

double Tensor::at(const std::vector<int64_t>& index) const {
  MANTISSA_CHECK(static_cast<int64_t>(index.size()) == dim(), "at(): index of rank ",
                 index.size(), " for a tensor of rank ", dim());
  int64_t off = offset();
  for (int64_t i = 0; i < dim(); ++i) {
    MANTISSA_CHECK(index[i] >= 0 && index[i] < shape()[i], "at(): index ", index[i],
                   " out of range for axis ", i, " of size ", shape()[i]);
    off += index[i] * strides()[i];
  }
  double v = 0;
  dispatchDType(dtype(), [&](auto tag) {
    using T = decltype(tag);
    v = static_cast<double>(static_cast<const T*>(storage()->data())[off]);
  });
  return v;
}

Tensor Tensor::viewAs(Shape shape, Shape strides, int64_t offset) const {
  return fromStorage(storage(), std::move(shape), std::move(strides), offset, dtype());
}

// ---- views and copies -----------------------------------------------------------------------

Tensor Tensor::contiguous() const {
  if (isContiguous()) return *this;
  Tensor out = uninitialized(shape(), dtype());
  ops::detail::copyStrided(*this, out);
  if (autograd::needsGrad({*this})) {
    autograd::record(out, "contiguous", {*this},
                     [](const Tensor& g) -> autograd::GradList { return {g}; });
  }
  return out;
}

Tensor Tensor::clone() const {
  Tensor out = uninitialized(shape(), dtype());
  ops::detail::copyStrided(*this, out);
  if (autograd::needsGrad({*this})) {
    autograd::record(out, "clone", {*this},
                     [](const Tensor& g) -> autograd::GradList { return {g}; });
  }
  return out;
}

Tensor Tensor::reshape(Shape newShape) const {
  int64_t inferred = -1, known = 1;
  for (size_t i = 0; i < newShape.size(); ++i) {
    if (newShape[i] == -1) {
      MANTISSA_CHECK(inferred < 0, "reshape: more than one -1 in ", mantissa::toString(newShape));
      inferred = static_cast<int64_t>(i);
    } else {
      MANTISSA_CHECK(newShape[i] >= 0, "reshape: negative size in ", mantissa::toString(newShape));
      known *= newShape[i];
    }
  }
  if (inferred >= 0) {
    MANTISSA_CHECK(known > 0 && numel() % known == 0, "reshape: cannot reshape ",
                   mantissa::toString(shape()), " into ", mantissa::toString(newShape));
    newShape[inferred] = numel() / known;
  }
  MANTISSA_CHECK(numelOf(newShape) == numel(), "reshape: cannot reshape ",
                 mantissa::toString(shape()), " (", numel(), " elements) into ",
                 mantissa::toString(newShape));
  Tensor src = isContiguous() ? *this : contiguous();
  Tensor out = src.viewAs(newShape, contiguousStrides(newShape), src.offset());
  if (autograd::needsGrad({src})) {
    autograd::record(out, "reshape", {src},
                     [inShape = src.shape()](const Tensor& g) -> autograd::GradList {
                       return {g.reshape(inShape)};
                     });
  }
  return out;
}

Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
  MANTISSA_CHECK(static_cast<int64_t>(dims.size()) == dim(), "permute: ", dims.size(),
                 " axes given for a tensor of rank ", dim());
  Shape s(dim()), st(dim());
  std::vector<int64_t> inverse(dim(), -1);
  for (int64_t i = 0; i < dim(); ++i) {
    int64_t d = normalizeAxis(dims[i], dim(), "permute: axis");
    MANTISSA_CHECK(inverse[d] < 0, "permute: axis ", d, " repeated");
    inverse[d] = i;
    s[i] = shape()[d];
    st[i] = strides()[d];
  }
  Tensor out = viewAs(s, st, offset());
  if (autograd::needsGrad({*this})) {
    autograd::record(out, "permute", {*this}, [inverse](const Tensor& g) -> autograd::GradList {
      return {g.permute(inverse)};
    });
  }
  return out;
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  std::vector<int64_t> dims(dim());
  for (int64_t i = 0; i < dim(); ++i) dims[i] = i;
  std::swap(dims[normalizeAxis(d0, dim(), "transpose: axis")],
            dims[normalizeAxis(d1, dim(), "transpose: axis")]);
  return permute(dims);
}

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end, int64_t step) const {
  d = normalizeAxis(d, dim(), "slice: axis");
  MANTISSA_CHECK(step > 0, "slice: step must be positive, got ", step);
  int64_t n = shape()[d];
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape s = shape(), st = strides();
  s[d] = (end - start + step - 1) / step;
  st[d] = strides()[d] * step;
  Tensor out = viewAs(s, st, offset() + start * strides()[d]);
  if (autograd::needsGrad({*this})) {
    autograd::record(out, "slice", {*this},
                     [inShape = shape(), d, start, end, step](const Tensor& g) -> autograd::GradList {
                       Tensor gi = Tensor::zeros(inShape);
                       Tensor view = gi.slice(d, start, end, step);
                       ops::detail::copyStrided(g, view);
                       return {gi};
                     });
  }
  return out;
}

Tensor Tensor::expand(const Shape& target) const {
  MANTISSA_CHECK(static_cast<int64_t>(target.size()) >= dim(), "expand: target ",
                 mantissa::toString(target), " has lower rank than ", mantissa::toString(shape()));
  size_t lead = target.size() - shape().size();
  Shape st(target.size(), 0);
  for (size_t i = 0; i < target.size(); ++i) {
    if (i < lead) continue;
    int64_t src = shape()[i - lead];
    MANTISSA_CHECK(src == target[i] || src == 1, "expand: cannot expand ",
                   mantissa::toString(shape()), " to ", mantissa::toString(target));
    st[i] = src == target[i] ? strides()[i - lead] : 0;
  }
  Tensor out = viewAs(target, st, offset());
  if (autograd::needsGrad({*this})) {
    autograd::record(out, "expand", {*this},
                     [inShape = shape()](const Tensor& g) -> autograd::GradList {
                       return {reduceTo(g, inShape)};
                     });
  }
  return out;
}

Tensor Tensor::unsqueeze(int64_t d) const {
  d = normalizeAxis(d, dim() + 1, "unsqueeze: axis");
  Shape s = shape();
  s.insert(s.begin() + d, 1);
  return reshape(s);
}

Tensor Tensor::squeeze(int64_t d) const {
  d = normalizeAxis(d, dim(), "squeeze: axis");
  MANTISSA_CHECK(shape()[d] == 1, "squeeze: axis ", d, " has size ", shape()[d], ", not 1");
  Shape s = shape();
  s.erase(s.begin() + d);
  return reshape(s);
}

Tensor Tensor::flatten(int64_t startDim, int64_t endDim) const {
  if (dim() == 0) return reshape({1});
  startDim = normalizeAxis(startDim, dim(), "flatten: start axis");
  endDim = normalizeAxis(endDim, dim(), "flatten: end axis");
  MANTISSA_CHECK(startDim <= endDim, "flatten: start axis ", startDim, " after end axis ", endDim);
  Shape s(shape().begin(), shape().begin() + startDim);
  int64_t merged = 1;
  for (int64_t i = startDim; i <= endDim; ++i) merged *= shape()[i];
  s.push_back(merged);
  s.insert(s.end(), shape().begin() + endDim + 1, shape().end());
  return reshape(s);
}

Tensor Tensor::to(DType target) const {
  Tensor src = contiguous();
  Tensor out = uninitialized(shape(), target);
  dispatchDType(src.dtype(), [&](auto inTag) {
    using In = decltype(inTag);
    dispatchDType(target, [&](auto outTag) {
      using Out = decltype(outTag);
      const In* a = src.data<In>();
      Out* b = out.data<Out>();
      for (int64_t i = 0, n = src.numel(); i < n; ++i) b[i] = static_cast<Out>(a[i]);
    });
  });
  return out;
}

// ---- autograd -------------------------------------------------------------------------------

Tensor& Tensor::requiresGrad(bool on) {
  auto& meta = impl().autograd;
  MANTISSA_CHECK(!meta || !meta->node, "requiresGrad() on the result of '", meta->node->name,
                 "': only leaves can be marked (use detach() first)");
  MANTISSA_CHECK(!on || dtype() == DType::F32 || dtype() == DType::F64,
                 "requiresGrad() on a tensor of dtype ", mantissa::dtypeName(dtype()));
  if (!meta) meta = std::make_shared<autograd::AutogradMeta>();
  meta->requiresGrad = on;
  return *this;
}

bool Tensor::needsGrad() const {
  const auto& meta = impl().autograd;
  return meta && (meta->requiresGrad || meta->node);
}

bool Tensor::isLeaf() const {
  const auto& meta = impl().autograd;
  return !meta || !meta->node;
}

Tensor Tensor::grad() const {
  const auto& meta = impl().autograd;
  return meta ? meta->grad : Tensor();
}

void Tensor::setGrad(const Tensor& g) {
  auto& meta = impl().autograd;
  if (!meta) meta = std::make_shared<autograd::AutogradMeta>();
  meta->grad = g;
}

void Tensor::zeroGrad() {
  if (impl().autograd) impl().autograd->grad = Tensor();
}

void Tensor::backward() const { backward(BackwardOptions{}); }

void Tensor::backward(const BackwardOptions& opts) const {
  Tensor seed = opts.grad;
  if (!seed.defined()) {
    MANTISSA_CHECK(numel() == 1, "backward() without a seed gradient needs a one-element "
                   "output, got shape ", mantissa::toString(shape()));
    seed = Tensor::ones(shape());
  }
  autograd::runBackward(*this, seed, opts.retainGraph);
}

Tensor Tensor::detach() const { return viewAs(shape(), strides(), offset()); }

std::string Tensor::gradFnName() const {
  const auto& meta = impl().autograd;
  return meta && meta->node ? meta->node->name : std::string();
}

// ---- printing -------------------------------------------------------------------------------

std::string Tensor::toString(int64_t maxPerDim) const {
  if (!defined()) return "Tensor(undefined)";
  std::ostringstream os;
  os << "Tensor " << mantissa::dtypeName(dtype()) << ' ' << mantissa::toString(shape());
  if (!gradFnName().empty()) os << " grad_fn=" << gradFnName();
  os << '\n';
  std::vector<int64_t> idx;
  os << std::setprecision(6);
  // Iterative printing would obscure the nesting; rank is small so recursion depth is bounded.
  auto rec = [&](auto&& self, int64_t d) -> void {
    if (d == dim()) {
      os << at(idx);
      return;
    }
    os << '[';
    int64_t n = shape()[d];
    for (int64_t i = 0; i < n; ++i) {
      if (n > maxPerDim && i == maxPerDim / 2) {
        os << "..., ";
        i = n - maxPerDim / 2;
      }
      idx.push_back(i);
      self(self, d + 1);
      idx.pop_back();
      if (i + 1 < n) os << (d + 1 == dim() ? ", " : ",\n" + std::string(d + 1, ' '));
    }
    os << ']';
  };
  rec(rec, 0);
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.toString(); }

}  // namespace mantissa
