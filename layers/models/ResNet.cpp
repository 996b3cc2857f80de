#include "layers/models/ResNet.h"

#include "layers/models/BasicBlock.h"
#include "layers/models/Bottleneck.h"
#include "layers/models/detail/Init.h"

namespace mantissa::nn {

ResNet::ResNet(const ResNetOptions& opts, Rng& rng) : Model("ResNet"), opts_(opts) {
  std::vector<int64_t> blocks;
  switch (opts.depth) {
    case 18:
      blocks = {2, 2, 2, 2};
      break;
    case 34:
      blocks = {3, 4, 6, 3};
      break;
    case 50:
      blocks = {3, 4, 6, 3};
      bottleneck_ = true;
      break;
    default:
      MANTISSA_CHECK(false, "ResNet: depth ", opts.depth, " is not one of 18, 34, 50");
  }
  MANTISSA_CHECK(opts.inChannels > 0 && opts.numClasses > 0,
                 "ResNet: inChannels and numClasses must be positive");
  conv1_ = registerModule(
      "conv1", std::make_shared<Conv2d>(opts.inChannels, 64, 7, rng,
                                        Conv2dOptions{.stride = 2, .padding = 3, .bias = false}));
  bn1_ = registerModule("bn1", std::make_shared<BatchNorm2d>(64));
  relu_ = registerModule("relu", std::make_shared<ReLU>());
  maxpool_ = registerModule(
      "maxpool", std::make_shared<MaxPool2d>(3, MaxPool2dOptions{.stride = 2, .padding = 1}));
  int64_t inPlanes = 64;
  layer1_ = registerModule("layer1", makeLayer(inPlanes, 64, blocks[0], 1, rng));
  layer2_ = registerModule("layer2", makeLayer(inPlanes, 128, blocks[1], 2, rng));
  layer3_ = registerModule("layer3", makeLayer(inPlanes, 256, blocks[2], 2, rng));
  layer4_ = registerModule("layer4", makeLayer(inPlanes, 512, blocks[3], 2, rng));
  avgpool_ = registerModule("avgpool", std::make_shared<AdaptiveAvgPool2d>(1));
  fc_ = registerModule("fc", std::make_shared<Linear>(inPlanes, opts.numClasses, rng));

  // torchvision ResNet.__init__: kaiming_normal_(mode="fan_out", nonlinearity="relu") on every
  // convolution; BN already starts at weight 1, bias 0; fc keeps the Linear default.
  for (auto& [n, m] : namedModules()) {
    if (m->typeName() == "Conv2d") detail::kaimingNormalInit(*m, "weight", true, rng);
  }
  if (opts.zeroInitResidual) {
    for (auto& [n, m] : namedModules()) {
      // Each residual branch then starts as zero and every block as the identity.
      std::shared_ptr<BatchNorm2d> last;
      if (auto b = std::dynamic_pointer_cast<BasicBlock>(m)) last = b->bn2();
      if (auto b = std::dynamic_pointer_cast<Bottleneck>(m)) last = b->bn3();
      if (last) last->setTensor("weight", Tensor::zeros({last->numFeatures()}));
    }
  }
}

std::shared_ptr<Sequential> ResNet::makeLayer(int64_t& inPlanes, int64_t planes, int64_t blocks,
                                              int64_t stride, Rng& rng) {
  auto layer = std::make_shared<Sequential>();
  for (int64_t i = 0; i < blocks; ++i) {
    const int64_t s = i == 0 ? stride : 1;
    if (bottleneck_) {
      layer->push_back(std::make_shared<Bottleneck>(inPlanes, planes, s, rng));
      inPlanes = planes * Bottleneck::kExpansion;
    } else {
      layer->push_back(std::make_shared<BasicBlock>(inPlanes, planes, s, ShortcutType::B, rng));
      inPlanes = planes * BasicBlock::kExpansion;
    }
  }
  return layer;
}

Tensor ResNet::forward(const Tensor& x) {
  MANTISSA_CHECK(x.dim() == 4 && x.size(1) == opts_.inChannels, name(), ": input of shape ",
                 toString(x.shape()), " (expected [N, ", opts_.inChannels, ", H, W])");
  Tensor h = maxpool_->forward(bn1_->forwardRelu(conv1_->forward(x)));  // relu fused in eval
  h = layer4_->forward(layer3_->forward(layer2_->forward(layer1_->forward(h))));
  return fc_->forward(avgpool_->forward(h).flatten(1));
}

std::string ResNet::name() const { return "resnet" + std::to_string(opts_.depth); }

std::string ResNet::extraRepr() const {
  std::string s = "depth=" + std::to_string(opts_.depth) +
                  ", in_channels=" + std::to_string(opts_.inChannels) +
                  ", num_classes=" + std::to_string(opts_.numClasses);
  if (opts_.zeroInitResidual) s += ", zero_init_residual=true";
  return s;
}

}  // namespace mantissa::nn
