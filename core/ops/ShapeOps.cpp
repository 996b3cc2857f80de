#include "core/ops/ShapeOps.h"

#include <algorithm>
#include <cstring>

#include "core/autograd/Autograd.h"
#include "core/ops/detail/Strided.h"
#include "core/parallel/ParallelFor.h"

namespace mantissa {

Tensor concat(const std::vector<Tensor>& tensors, int64_t axis) {
  MANTISSA_CHECK(!tensors.empty(), "concat: no tensors given");
  for (size_t i = 0; i < tensors.size(); ++i) {
    MANTISSA_CHECK(tensors[i].defined(), "concat: tensor ", i, " is undefined");
  }
  const Tensor& first = tensors[0];
  // Like torch.cat: a rank-0 tensor has no axis to join along.
  MANTISSA_CHECK(first.dim() > 0, "concat: tensor 0 is a scalar (rank 0); use stack");
  const int64_t rank = first.dim();
  const int64_t a = normalizeAxis(axis, rank, "concat: axis");
  Shape outShape = first.shape();
  outShape[a] = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    MANTISSA_CHECK(t.dtype() == first.dtype(), "concat: tensor ", i, " has dtype ",
                   dtypeName(t.dtype()), " but tensor 0 has ", dtypeName(first.dtype()));
    MANTISSA_CHECK(t.dim() == rank, "concat: tensor ", i, " has shape ", toString(t.shape()),
                   " (rank ", t.dim(), ") but tensor 0 has shape ", toString(first.shape()),
                   " (rank ", rank, ")");
    for (int64_t d = 0; d < rank; ++d) {
      MANTISSA_CHECK(d == a || t.shape()[d] == first.shape()[d], "concat: tensor ", i,
                     " has shape ", toString(t.shape()), " but tensor 0 has shape ",
                     toString(first.shape()), "; sizes must match on every axis except axis ", a);
    }
    outShape[a] += t.shape()[a];
  }

  Tensor out = Tensor::empty(outShape, first.dtype());
  // View every input as [outer, size_i * inner] rows; output row o is the inputs' rows o joined.
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < a; ++d) outer *= outShape[d];
  for (int64_t d = a + 1; d < rank; ++d) inner *= outShape[d];
  const size_t es = elementSize(first.dtype());
  const size_t outRow = static_cast<size_t>(outShape[a] * inner) * es;
  char* dst = static_cast<char*>(out.storage()->data());
  size_t colOffset = 0;
  std::vector<int64_t> sizes;
  for (const Tensor& t : tensors) {
    Tensor c = t.detach().contiguous();
    const size_t row = static_cast<size_t>(t.shape()[a] * inner) * es;
    const char* src = static_cast<const char*>(c.storage()->data()) + c.offset() * es;
    // Aim for ~64 KiB per parallel chunk: many short rows (concat along the last axis) are
    // batched, long rows (concat along axis 0 gives outer = 1) run as one memcpy.
    const int64_t grain = std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(1, row));
    if (row > 0) {
      parallelFor(0, outer, grain, [&](int64_t b, int64_t e) {
        for (int64_t o = b; o < e; ++o) std::memcpy(dst + o * outRow + colOffset, src + o * row, row);
      });
    }
    colOffset += row;
    sizes.push_back(t.shape()[a]);
  }

  if (autograd::needsGrad(tensors)) {
    std::vector<bool> wants;
    for (const Tensor& t : tensors) wants.push_back(t.needsGrad());
    autograd::record(out, "concat", tensors,
                     [a, sizes = std::move(sizes), wants = std::move(wants)](const Tensor& g)
                         -> autograd::GradList {
                       autograd::GradList grads(sizes.size());
                       int64_t start = 0;
                       for (size_t i = 0; i < sizes.size(); ++i) {
                         if (wants[i]) grads[i] = g.slice(a, start, start + sizes[i]).contiguous();
                         start += sizes[i];
                       }
                       return grads;
                     });
  }
  return out;
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t axis) {
  MANTISSA_CHECK(!tensors.empty(), "stack: no tensors given");
  for (size_t i = 0; i < tensors.size(); ++i) {
    MANTISSA_CHECK(tensors[i].defined(), "stack: tensor ", i, " is undefined");
    MANTISSA_CHECK(tensors[i].shape() == tensors[0].shape(), "stack: tensor ", i, " has shape ",
                   toString(tensors[i].shape()), " but tensor 0 has shape ",
                   toString(tensors[0].shape()), "; stacked tensors must have equal shapes");
  }
  const int64_t a = normalizeAxis(axis, tensors[0].dim() + 1, "stack: axis");
  std::vector<Tensor> expanded;
  expanded.reserve(tensors.size());
  for (const Tensor& t : tensors) expanded.push_back(t.unsqueeze(a));
  return concat(expanded, a);
}

Tensor pad(const Tensor& x, const std::vector<PadWidth>& pads, float value) {
  MANTISSA_CHECK(x.defined(), "pad: undefined input");
  const int64_t rank = x.dim();
  const int64_t k = static_cast<int64_t>(pads.size());
  MANTISSA_CHECK(k <= rank, "pad: ", k, " pad widths given for a tensor of shape ",
                 toString(x.shape()), " (rank ", rank, ")");
  const int64_t lead = rank - k;
  Shape outShape = x.shape();
  for (int64_t i = 0; i < k; ++i) {
    MANTISSA_CHECK(pads[i].before >= 0 && pads[i].after >= 0, "pad: negative width {",
                   pads[i].before, ", ", pads[i].after, "} for axis ", lead + i,
                   " (pad does not crop; use slice)");
    outShape[lead + i] += pads[i].before + pads[i].after;
  }
  // Fill everything, then copy x into the interior window: the window is a strided view, so
  // copyStrided handles any rank and any input layout in one pass.
  Tensor out = Tensor::full(outShape, value, x.dtype());
  Tensor window = out;
  for (int64_t i = 0; i < k; ++i) {
    window = window.slice(lead + i, pads[i].before, pads[i].before + x.shape()[lead + i]);
  }
  ops::detail::copyStrided(x.detach(), window);

  if (autograd::needsGrad({x})) {
    autograd::record(out, "pad", {x},
                     [pads, lead, inShape = x.shape()](const Tensor& g) -> autograd::GradList {
                       Tensor w = g;
                       for (size_t i = 0; i < pads.size(); ++i) {
                         int64_t d = lead + static_cast<int64_t>(i);
                         w = w.slice(d, pads[i].before, pads[i].before + inShape[d]);
                       }
                       return {w.contiguous()};
                     });
  }
  return out;
}

std::vector<PadWidth> padWidthsFromTorch(const std::vector<int64_t>& torchPads) {
  MANTISSA_CHECK(torchPads.size() % 2 == 0, "pad: a PyTorch pad list needs an even length "
                 "(before, after per axis, last axis first), got ", torchPads.size(), " values");
  std::vector<PadWidth> out(torchPads.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    out[out.size() - 1 - i] = {torchPads[2 * i], torchPads[2 * i + 1]};
  }
  return out;
}

}  // namespace mantissa
