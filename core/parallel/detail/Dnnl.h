#pragma once

// oneDNN seam: only .cpp files of core/ops and the benchmarks include this header. Public headers
// never do, so users of the library need no oneDNN headers.

#include <dnnl.hpp>

#include <memory>
#include <string>
#include <unordered_map>

#include "core/Tensor.h"

namespace mantissa::detail {

/// The process-wide CPU engine (created on first use, never modified afterwards).
const dnnl::engine& dnnlEngine();
/// An in-order stream on dnnlEngine(), one per calling thread: oneDNN streams must not be shared
/// by threads executing at the same time, while the engine and primitives may be.
dnnl::stream& dnnlStream();

/// Attributes used by every Mantissa primitive: strict F32 math (no implicit bf16/tf32 down-
/// conversion, so results match the F32 reference kernels).
dnnl::primitive_attr dnnlAttr();

/// oneDNN dims from a Shape.
dnnl::memory::dims dnnlDims(const Shape& shape);
/// Dense row-major F32 layout of `shape` (nc, nchw, oihw, ... by rank).
dnnl::memory::desc plainDesc(const Shape& shape);
/// F32 layout of `shape` with explicit element `strides` (e.g. a transposed matrix view).
dnnl::memory::desc stridedDesc(const Shape& shape, const Shape& strides);
/// `shape` with format_tag::any: lets a primitive choose its preferred (blocked) layout.
dnnl::memory::desc anyDesc(const Shape& shape);

/// The storage of an F32 tensor as oneDNN memory with layout `desc` (no copy). The tensor must
/// cover desc's bytes: callers pass contiguous tensors with plainDesc or matching strides.
dnnl::memory wrap(const Tensor& t, const dnnl::memory::desc& desc);
/// wrap(t, plainDesc(t.shape())) for a contiguous tensor.
dnnl::memory wrap(const Tensor& t);

/// Owner of a transient buffer (a reorder target or a blocked-layout result).
using ScratchOwner = std::shared_ptr<void>;

/// Memory of layout `desc` in a transient, uninitialised Storage owned by `owner` (Storage's
/// alignment, huge pages and block cache, so a buffer of a repeated shape is recycled instead of
/// faulted in again; counted in Storage::liveBytes while alive). Not zeroed: every byte is
/// written by the reorder or primitive that fills it (Storage::PoisonGuard poisons it in tests).
dnnl::memory scratchMemory(const dnnl::memory::desc& desc, ScratchOwner& owner);
/// Memory of layout `desc` backed by a new tensor `owner`, for buffers that outlive the call
/// (e.g. workspaces kept for the backward pass) and so belong in the storage byte counters.
dnnl::memory tensorMemory(const dnnl::memory::desc& desc, Tensor& owner);

/// `m` itself when it already has layout `desc`, otherwise a reordered copy (owned by `owner`).
dnnl::memory toLayout(const dnnl::memory& m, const dnnl::memory::desc& desc, ScratchOwner& owner);
/// Copies `src` into `dst` (different layouts of the same logical tensor) and waits.
void reorderInto(const dnnl::memory& src, const dnnl::memory& dst);

/// A reorder primitive from layout `src` to `dst` (same logical tensor), or an empty one when
/// the two are equal; for callers that keep it across calls.
dnnl::reorder reorderPrimitive(const dnnl::memory::desc& src, const dnnl::memory::desc& dst);
/// With a reorder made by reorderPrimitive(m's layout, desc): `m` itself when `r` is empty,
/// otherwise m reordered into a scratch buffer of layout `desc` owned by `owner`.
dnnl::memory toLayout(const dnnl::reorder& r, const dnnl::memory& m, const dnnl::memory::desc& desc,
                      ScratchOwner& owner);
/// Runs the reorder `r` from `src` to `dst` and waits.
void reorderInto(const dnnl::reorder& r, const dnnl::memory& src, const dnnl::memory& dst);

/// Runs `p` on this thread's stream and waits for it.
void execute(const dnnl::primitive& p, const std::unordered_map<int, dnnl::memory>& args);

/// Contiguous, detached F32 view of `t` for handing to a kernel; errors name `op` and `what`.
Tensor kernelInput(const Tensor& t, const char* op, const char* what);

/// Calls `f` and turns a dnnl::error into a mantissa::Error that names the op and its shapes.
template <class F>
auto dnnlCall(const char* op, const std::string& shapes, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const dnnl::error& e) {
    MANTISSA_CHECK(false, op, ": oneDNN rejected ", shapes, ": ", e.what());
    throw;  // unreachable
  }
}

}  // namespace mantissa::detail
