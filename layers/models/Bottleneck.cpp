#include "layers/models/Bottleneck.h"

#include "core/ops/Elementwise.h"

namespace mantissa::nn {

Bottleneck::Bottleneck(int64_t inPlanes, int64_t planes, int64_t stride, Rng& rng)
    : Module("Bottleneck") {
  MANTISSA_CHECK(stride >= 1, "Bottleneck: stride must be positive, got ", stride);
  const int64_t width = planes, outPlanes = planes * kExpansion;
  conv1_ = registerModule(
      "conv1", std::make_shared<Conv2d>(inPlanes, width, 1, rng, Conv2dOptions{.bias = false}));
  bn1_ = registerModule("bn1", std::make_shared<BatchNorm2d>(width));
  conv2_ = registerModule(
      "conv2",
      std::make_shared<Conv2d>(width, width, 3, rng,
                               Conv2dOptions{.stride = stride, .padding = 1, .bias = false}));
  bn2_ = registerModule("bn2", std::make_shared<BatchNorm2d>(width));
  conv3_ = registerModule(
      "conv3", std::make_shared<Conv2d>(width, outPlanes, 1, rng, Conv2dOptions{.bias = false}));
  bn3_ = registerModule("bn3", std::make_shared<BatchNorm2d>(outPlanes));
  relu_ = registerModule("relu", std::make_shared<ReLU>());
  if (stride != 1 || inPlanes != outPlanes) {
    downsample_ = registerModule("downsample", std::make_shared<Sequential>());
    downsample_->push_back(std::make_shared<Conv2d>(
        inPlanes, outPlanes, 1, rng, Conv2dOptions{.stride = stride, .bias = false}));
    downsample_->push_back(std::make_shared<BatchNorm2d>(outPlanes));
  }
}

Tensor Bottleneck::forward(const Tensor& x) {
  Tensor out = relu_->forward(bn1_->forward(conv1_->forward(x)));
  out = relu_->forward(bn2_->forward(conv2_->forward(out)));
  out = bn3_->forward(conv3_->forward(out));
  Tensor identity = downsample_ ? downsample_->forward(x) : x;
  return relu_->forward(add(out, identity));
}

}  // namespace mantissa::nn
