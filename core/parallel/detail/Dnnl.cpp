#include "core/parallel/detail/Dnnl.h"

#include <sys/mman.h>

#include <cstdlib>
#include <new>

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
  // Same policy as Storage (2 MiB alignment and huge pages from 4 MiB) without the zero fill:
  // a reorder buffer of a 32 MiB activation would otherwise cost a memset per call.
  const size_t bytes = std::max<size_t>(desc.get_size(), 1);
  const bool huge = bytes >= (size_t{4} << 20);
  const size_t align = huge ? (size_t{2} << 20) : Storage::kAlignment;
  const size_t padded = (bytes + align - 1) / align * align;
  void* p = std::aligned_alloc(align, padded);
  if (!p) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
  if (huge) madvise(p, padded, MADV_HUGEPAGE);
#endif
  owner = ScratchOwner(p, [](void* q) { std::free(q); });
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
