#include "layers/models/CifarResNet.h"

#include "layers/models/detail/Init.h"

namespace mantissa::nn {

CifarResNet::CifarResNet(const CifarResNetOptions& opts, Rng& rng)
    : Model("CifarResNet"), opts_(opts) {
  MANTISSA_CHECK(opts.depth >= 8 && (opts.depth - 2) % 6 == 0, "CifarResNet: depth ", opts.depth,
                 " is not 6n + 2 (20, 32, 44, 56, 110, ...)");
  MANTISSA_CHECK(opts.inChannels > 0 && opts.numClasses > 0,
                 "CifarResNet: inChannels and numClasses must be positive");
  const int64_t n = (opts.depth - 2) / 6;
  conv1_ =
      registerModule("conv1", std::make_shared<Conv2d>(opts.inChannels, 16, 3, rng,
                                                       Conv2dOptions{.padding = 1, .bias = false}));
  bn1_ = registerModule("bn1", std::make_shared<BatchNorm2d>(16));
  relu_ = registerModule("relu", std::make_shared<ReLU>());
  int64_t inPlanes = 16;
  auto stage = [&](int64_t planes, int64_t stride) {
    auto layer = std::make_shared<Sequential>();
    for (int64_t i = 0; i < n; ++i) {
      layer->push_back(
          std::make_shared<BasicBlock>(inPlanes, planes, i == 0 ? stride : 1, opts.shortcut, rng));
      inPlanes = planes;
    }
    return layer;
  };
  layer1_ = registerModule("layer1", stage(16, 1));
  layer2_ = registerModule("layer2", stage(32, 2));
  layer3_ = registerModule("layer3", stage(64, 2));
  avgpool_ = registerModule("avgpool", std::make_shared<AdaptiveAvgPool2d>(1));
  fc_ = registerModule("fc", std::make_shared<Linear>(64, opts.numClasses, rng));

  // akamaster's _weights_init: kaiming_normal_ (fan_in) on Conv2d and Linear weights; biases
  // keep PyTorch's default.
  for (auto& [name, m] : namedModules()) {
    if (m->typeName() == "Conv2d" || m->typeName() == "Linear") {
      detail::kaimingNormalInit(*m, "weight", false, rng);
    }
  }
}

Tensor CifarResNet::forward(const Tensor& x) {
  MANTISSA_CHECK(x.dim() == 4 && x.size(1) == opts_.inChannels, name(), ": input of shape ",
                 toString(x.shape()), " (expected [N, ", opts_.inChannels, ", H, W])");
  Tensor h = bn1_->forwardRelu(conv1_->forward(x));  // relu(bn1(...)), fused in eval mode
  h = layer3_->forward(layer2_->forward(layer1_->forward(h)));
  return fc_->forward(avgpool_->forward(h).flatten(1));
}

std::string CifarResNet::name() const {
  return "resnet" + std::to_string(opts_.depth) + (opts_.shortcut == ShortcutType::B ? "b" : "");
}

std::string CifarResNet::extraRepr() const {
  return "depth=" + std::to_string(opts_.depth) +
         ", in_channels=" + std::to_string(opts_.inChannels) +
         ", num_classes=" + std::to_string(opts_.numClasses) +
         ", shortcut=" + (opts_.shortcut == ShortcutType::A ? "A" : "B");
}

}  // namespace mantissa::nn
