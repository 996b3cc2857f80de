#include "layers/MaxPool2d.h"

namespace mantissa::nn {

MaxPool2d::MaxPool2d(Size2d kernel, MaxPool2dOptions opts) : Module("MaxPool2d") {
  MANTISSA_CHECK(kernel.h > 0 && kernel.w > 0, "MaxPool2d: kernel ", kernel.toString(),
                 " must be positive");
  pool_ = {.kernel = kernel,
           .stride = opts.stride == Size2d(0) ? kernel : opts.stride,
           .padding = opts.padding,
           .dilation = opts.dilation,
           .ceilMode = opts.ceilMode};
}

Tensor MaxPool2d::forward(const Tensor& x) {
  MANTISSA_CHECK(x.dim() == 4, "MaxPool2d: input must be [N, C, H, W], got ", toString(x.shape()));
  return maxPool2d(x, pool_);
}

std::string MaxPool2d::extraRepr() const {
  std::string s = "kernel=" + pool_.kernel.toString() + ", stride=" + pool_.stride.toString();
  if (!(pool_.padding == Size2d(0))) s += ", padding=" + pool_.padding.toString();
  if (!(pool_.dilation == Size2d(1))) s += ", dilation=" + pool_.dilation.toString();
  if (pool_.ceilMode) s += ", ceil_mode=true";
  return s;
}

}  // namespace mantissa::nn
