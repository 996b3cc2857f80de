#pragma once

// oneDNN side of the bf16 GEMM path: memory descriptors and wrappers for operands that may be
// F32 or bf16 bit patterns (U16). Only core/ops .cpp files include this (it pulls in dnnl.hpp).

#include <string_view>

#include "core/ops/detail/Bf16.h"
#include "core/parallel/detail/Dnnl.h"

namespace mantissa::ops::detail {

/// oneDNN data type of a kernel operand: bf16 for U16 bit patterns, f32 otherwise.
inline dnnl::memory::data_type operandType(const Tensor& t) {
  return isBf16Bits(t) ? dnnl::memory::data_type::bf16 : dnnl::memory::data_type::f32;
}

/// The common data type of a GEMM's two operands; errors (naming `op`) unless both are F32 or
/// both are bf16 bit patterns.
inline dnnl::memory::data_type pairType(const char* op, const Tensor& a, const Tensor& b) {
  MANTISSA_CHECK(a.defined() && b.defined(), op, ": undefined operand");
  auto ok = [](const Tensor& t) { return t.dtype() == DType::F32 || t.dtype() == DType::U16; };
  MANTISSA_CHECK(ok(a) && ok(b) && a.dtype() == b.dtype(), op,
                 ": operands must be f32 (or both bf16 bit patterns, u16), got ",
                 dtypeName(a.dtype()), " and ", dtypeName(b.dtype()));
  return operandType(a);
}

/// `desc` with its data type replaced by `dt` (same dims and layout).
inline dnnl::memory::desc retyped(const dnnl::memory::desc& desc, dnnl::memory::data_type dt) {
  if (desc.data_type() == dt) return desc;
  dnnl::memory::desc d = desc;
  d.data.data_type = static_cast<dnnl_data_type_t>(dt);
  return d;
}

/// Memory over a contiguous (or `desc`-strided) F32 or U16 tensor, no copy.
inline dnnl::memory wrapOperand(const Tensor& t, const dnnl::memory::desc& desc) {
  if (!isBf16Bits(t)) return mantissa::detail::wrap(t, desc);
  void* p = const_cast<uint16_t*>(t.data<uint16_t>());
  return dnnl::memory(desc, mantissa::detail::dnnlEngine(), p);
}

/// Whether oneDNN picked a reference (non-JIT) implementation: such bf16 kernels are far slower
/// than the FP32 JIT ones, so the caller widens its operands instead.
inline bool isReference(const dnnl::primitive_desc_base& pd) {
  return std::string_view(pd.impl_info_str()).rfind("ref", 0) == 0;
}

}  // namespace mantissa::ops::detail
