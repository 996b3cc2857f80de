#include "core/parallel/detail/Dnnl.h"

#include <algorithm>

namespace mantissa::detail {

using dnnl::memory;

const dnnl::engine& dnnlEngine() {
  // Function-local static: thread-safe initialisation, immutable afterwards.
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::stream& dnnlStream() {
  thread_local dnnl::stream stream(dnnlEngine());
  return stream;
}

dnnl::primitive_attr dnnlAttr() {
  dnnl::primitive_attr attr;
  attr.set_fpmath_mode(dnnl::fpmath_mode::strict);
  return attr;
}

memory::dims dnnlDims(const Shape& shape) { return memory::dims(shape.begin(), shape.end()); }

memory::desc plainDesc(const Shape& shape) {
  return stridedDesc(shape, contiguousStrides(shape));
}

memory::desc stridedDesc(const Shape& shape, const Shape& strides) {
  return memory::desc(dnnlDims(shape), memory::data_type::f32, dnnlDims(strides));
}

memory::desc anyDesc(const Shape& shape) {
  return memory::desc(dnnlDims(shape), memory::data_type::f32, memory::format_tag::any);
}

memory wrap(const Tensor& t, const memory::desc& desc) {
  MANTISSA_CHECK(t.dtype() == DType::F32, "oneDNN kernels take f32 tensors, got ",
                 dtypeName(t.dtype()));
  // oneDNN takes a non-const handle; the primitives only read inputs.
  void* p = const_cast<float*>(t.data<float>());
  return memory(desc, dnnlEngine(), p);
}

memory wrap(const Tensor& t) {
  MANTISSA_CHECK(t.isContiguous(), "oneDNN kernels take contiguous tensors");
  return wrap(t, plainDesc(t.shape()));
}

memory scratchMemory(const memory::desc& desc, ScratchOwner& owner) {
  // An uninitialised Storage: same alignment and huge-page policy as tensors, no zero fill (a
  // reorder buffer of a 32 MiB activation would otherwise cost a memset per call), and blocks of
  // 64 KiB and more come from Storage's block cache. Before, every call took a fresh
  // aligned_alloc, so each multi-MB reorder buffer was a new mapping whose pages the kernel
  // faulted in and cleared on every call (4% of a ResNet-20 inference in clear_page_erms).
  auto storage =
      std::make_shared<Storage>(std::max<size_t>(desc.get_size(), 1), Storage::Init::Uninitialized);
  void* p = storage->data();
  owner = std::move(storage);
  return memory(desc, dnnlEngine(), p);
}

memory tensorMemory(const memory::desc& desc, Tensor& owner) {
  const int64_t floats = static_cast<int64_t>((desc.get_size() + sizeof(float) - 1) / sizeof(float));
  owner = Tensor::empty({std::max<int64_t>(floats, 1)});
  return memory(desc, dnnlEngine(), owner.data<float>());
}

memory toLayout(const memory& m, const memory::desc& desc, ScratchOwner& owner) {
  if (m.get_desc() == desc) return m;
  memory out = scratchMemory(desc, owner);
  reorderInto(m, out);
  return out;
}

void reorderInto(const memory& src, const memory& dst) {
  if (src.get_desc() == dst.get_desc() && src.get_data_handle() == dst.get_data_handle()) return;
  dnnl::reorder::primitive_desc pd(dnnlEngine(), src.get_desc(), dnnlEngine(), dst.get_desc(),
                                   dnnlAttr());
  dnnl::reorder(pd).execute(dnnlStream(), const_cast<memory&>(src), const_cast<memory&>(dst));
  dnnlStream().wait();
}

dnnl::reorder reorderPrimitive(const memory::desc& src, const memory::desc& dst) {
  if (src == dst) return dnnl::reorder();
  return dnnl::reorder(
      dnnl::reorder::primitive_desc(dnnlEngine(), src, dnnlEngine(), dst, dnnlAttr()));
}

memory toLayout(const dnnl::reorder& r, const memory& m, const memory::desc& desc,
                ScratchOwner& owner) {
  if (!r) return m;
  memory out = scratchMemory(desc, owner);
  reorderInto(r, m, out);
  return out;
}

void reorderInto(const dnnl::reorder& r, const memory& src, const memory& dst) {
  r.execute(dnnlStream(), const_cast<memory&>(src), const_cast<memory&>(dst));
  dnnlStream().wait();
}

void execute(const dnnl::primitive& p, const std::unordered_map<int, memory>& args) {
  p.execute(dnnlStream(), args);
  dnnlStream().wait();
}

Tensor kernelInput(const Tensor& t, const char* op, const char* what) {
  MANTISSA_CHECK(t.defined(), op, ": undefined ", what);
  MANTISSA_CHECK(t.dtype() == DType::F32, op, ": ", what, " must be f32, got ",
                 dtypeName(t.dtype()));
  return t.detach().contiguous();
}

}  // namespace mantissa::detail
