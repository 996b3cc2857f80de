#include "layers/AvgPool2d.h"

namespace mantissa::nn {

AvgPool2d::AvgPool2d(Size2d kernel, AvgPool2dOptions opts) : Module("AvgPool2d") {
  MANTISSA_CHECK(kernel.h > 0 && kernel.w > 0, "AvgPool2d: kernel ", kernel.toString(),
                 " must be positive");
  pool_ = {.kernel = kernel,
           .stride = opts.stride == Size2d(0) ? kernel : opts.stride,
           .padding = opts.padding,
           .ceilMode = opts.ceilMode,
           .countIncludePad = opts.countIncludePad};
}

Tensor AvgPool2d::forward(const Tensor& x) {
  MANTISSA_CHECK(x.dim() == 4, "AvgPool2d: input must be [N, C, H, W], got ", toString(x.shape()));
  return avgPool2d(x, pool_);
}

std::string AvgPool2d::extraRepr() const {
  std::string s = "kernel=" + pool_.kernel.toString() + ", stride=" + pool_.stride.toString();
  if (!(pool_.padding == Size2d(0))) s += ", padding=" + pool_.padding.toString();
  if (pool_.ceilMode) s += ", ceil_mode=true";
  if (!pool_.countIncludePad) s += ", count_include_pad=false";
  return s;
}

}  // namespace mantissa::nn
