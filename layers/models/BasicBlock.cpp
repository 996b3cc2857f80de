#include "layers/models/BasicBlock.h"

#include "core/ops/Elementwise.h"
#include "core/ops/ShapeOps.h"

namespace mantissa::nn {

BasicBlock::BasicBlock(int64_t inPlanes, int64_t planes, int64_t stride, ShortcutType shortcut,
                       Rng& rng)
    : Module("BasicBlock"), inPlanes_(inPlanes), planes_(planes), stride_(stride) {
  MANTISSA_CHECK(stride >= 1, "BasicBlock: stride must be positive, got ", stride);
  conv1_ = registerModule(
      "conv1",
      std::make_shared<Conv2d>(inPlanes, planes, 3, rng,
                               Conv2dOptions{.stride = stride, .padding = 1, .bias = false}));
  bn1_ = registerModule("bn1", std::make_shared<BatchNorm2d>(planes));
  relu_ = registerModule("relu", std::make_shared<ReLU>());
  conv2_ = registerModule(
      "conv2",
      std::make_shared<Conv2d>(planes, planes, 3, rng, Conv2dOptions{.padding = 1, .bias = false}));
  bn2_ = registerModule("bn2", std::make_shared<BatchNorm2d>(planes));
  const bool reshape = stride != 1 || inPlanes != planes;
  if (reshape && shortcut == ShortcutType::B) {
    downsample_ = registerModule("downsample", std::make_shared<Sequential>());
    downsample_->push_back(std::make_shared<Conv2d>(
        inPlanes, planes, 1, rng, Conv2dOptions{.stride = stride, .bias = false}));
    downsample_->push_back(std::make_shared<BatchNorm2d>(planes));
  } else if (reshape) {
    MANTISSA_CHECK(planes >= inPlanes, "BasicBlock: option A shortcut cannot reduce channels (",
                   inPlanes, " -> ", planes, "); use ShortcutType::B");
    padShortcut_ = true;
  }
}

Tensor BasicBlock::forward(const Tensor& x) {
  // relu(bn1(conv1(x))); the residual add and the last relu go into bn2 (one pass each in eval
  // mode without autograd, the same bits as the separate ops).
  Tensor out = conv2_->forward(bn1_->forwardRelu(conv1_->forward(x)));
  Tensor identity = x;
  if (downsample_) {
    identity = downsample_->forward(x);
  } else if (padShortcut_) {
    // Option A: subsample like the strided conv (positions 0, s, 2s, ...) and zero-pad the
    // extra channels, half in front and half behind.
    if (stride_ != 1) identity = x.slice(2, 0, x.size(2), stride_).slice(3, 0, x.size(3), stride_);
    const int64_t extra = planes_ - inPlanes_;
    identity = pad(identity, {{extra / 2, extra - extra / 2}, {0, 0}, {0, 0}});
  }
  return bn2_->forwardAddRelu(out, identity);  // relu(bn2(out) + identity)
}

}  // namespace mantissa::nn
