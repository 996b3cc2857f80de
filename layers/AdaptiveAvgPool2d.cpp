#include "layers/AdaptiveAvgPool2d.h"

#include "core/ops/Pool.h"

namespace mantissa::nn {

AdaptiveAvgPool2d::AdaptiveAvgPool2d(Size2d outputSize)
    : Module("AdaptiveAvgPool2d"), out_(outputSize) {
  MANTISSA_CHECK(outputSize.h > 0 && outputSize.w > 0, "AdaptiveAvgPool2d: output size ",
                 outputSize.toString(), " must be positive");
}

Tensor AdaptiveAvgPool2d::forward(const Tensor& x) {
  MANTISSA_CHECK(x.dim() == 4, "AdaptiveAvgPool2d: input must be [N, C, H, W], got ",
                 toString(x.shape()));
  if (out_ == Size2d(1)) return globalAvgPool2d(x);
  const int64_t h = x.size(2), w = x.size(3);
  if (h == out_.h && w == out_.w) return x;
  // PyTorch's adaptive windows are [floor(i*H/oh), ceil((i+1)*H/oh)); when oh divides H they
  // are the non-overlapping windows of size H/oh, which is plain average pooling.
  MANTISSA_CHECK(h % out_.h == 0 && w % out_.w == 0, "AdaptiveAvgPool2d(", out_.toString(),
                 "): input ", h, "x", w,
                 " is not a multiple of the output size (only divisible sizes are supported)");
  const Size2d k{h / out_.h, w / out_.w};
  return avgPool2d(x, Pool2dOptions{.kernel = k, .stride = k});
}

std::string AdaptiveAvgPool2d::extraRepr() const { return "output_size=" + out_.toString(); }

}  // namespace mantissa::nn
