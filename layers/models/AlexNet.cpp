#include "layers/models/AlexNet.h"

#include <sstream>

#include "layers/Conv2d.h"
#include "layers/Dropout.h"
#include "layers/Linear.h"
#include "layers/LocalResponseNorm.h"
#include "layers/MaxPool2d.h"
#include "layers/ReLU.h"
#include "layers/models/detail/Init.h"

namespace mantissa::nn {

namespace {

// Output size of a convolution or pooling window along one axis.
int64_t outSize(int64_t in, int64_t k, int64_t s, int64_t p) {
  return in + 2 * p < k ? 0 : (in + 2 * p - k) / s + 1;
}

}  // namespace

AlexNet::AlexNet(const AlexNetOptions& opts, Rng& rng) : Model("AlexNet"), opts_(opts) {
  const bool original = opts.variant == AlexNetVariant::Original;
  size_ = opts.inputSize > 0 ? opts.inputSize : (original ? 227 : 32);
  MANTISSA_CHECK(opts.inChannels > 0 && opts.numClasses > 0,
                 "AlexNet: inChannels and numClasses must be positive");
  MANTISSA_CHECK(opts.groups == 1 || opts.groups == 2, "AlexNet: groups ", opts.groups,
                 " must be 1 or 2 (the paper's two towers)");
  // Paper §3.3: b = a / (k + alpha Σ a²)^beta with n = 5, k = 2, alpha = 1e-4, beta = 0.75; the
  // LRN op divides alpha by n, so pass n * 1e-4.
  const LocalResponseNormOptions lrn{.alpha = 5 * 1e-4, .beta = 0.75, .k = 2.0};
  const MaxPool2dOptions overlap{.stride = 2};
  const int64_t g = opts.groups;
  // Widths and first two kernels per variant; conv3-5 are 3x3 with padding 1 in both.
  const int64_t c1 = original ? 96 : 64, c2 = original ? 256 : 192, c3 = 384,
                c4 = original ? 384 : 256, c5 = 256, hidden = original ? 4096 : 1024;
  const int64_t k1 = original ? 11 : 5, s1 = original ? 4 : 1, p1 = original ? 0 : 2;

  // Spatial size after conv1 and the three 3x3/2 poolings (conv2-5 keep the size).
  int64_t s = outSize(size_, k1, s1, p1);
  for (int i = 0; i < 3; ++i) s = outSize(s, 3, 2, 0);
  MANTISSA_CHECK(s >= 1, "AlexNet: input size ", size_, " is too small for the ",
                 original ? "original" : "small", " variant (the last pooling has no output)");

  features_ = registerModule("features", std::make_shared<Sequential>());
  auto& f = *features_;
  f.push_back(std::make_shared<Conv2d>(opts.inChannels, c1, k1, rng,
                                       Conv2dOptions{.stride = s1, .padding = p1}));
  f.push_back(std::make_shared<ReLU>());
  f.push_back(std::make_shared<LocalResponseNorm>(5, lrn));
  f.push_back(std::make_shared<MaxPool2d>(3, overlap));
  f.push_back(std::make_shared<Conv2d>(c1, c2, 5, rng, Conv2dOptions{.padding = 2, .groups = g}));
  f.push_back(std::make_shared<ReLU>());
  f.push_back(std::make_shared<LocalResponseNorm>(5, lrn));
  f.push_back(std::make_shared<MaxPool2d>(3, overlap));
  f.push_back(std::make_shared<Conv2d>(c2, c3, 3, rng, Conv2dOptions{.padding = 1}));
  f.push_back(std::make_shared<ReLU>());
  f.push_back(std::make_shared<Conv2d>(c3, c4, 3, rng, Conv2dOptions{.padding = 1, .groups = g}));
  f.push_back(std::make_shared<ReLU>());
  f.push_back(std::make_shared<Conv2d>(c4, c5, 3, rng, Conv2dOptions{.padding = 1, .groups = g}));
  f.push_back(std::make_shared<ReLU>());
  f.push_back(std::make_shared<MaxPool2d>(3, overlap));

  classifier_ = registerModule("classifier", std::make_shared<Sequential>());
  auto& c = *classifier_;
  c.push_back(std::make_shared<Linear>(c5 * s * s, hidden, rng));
  c.push_back(std::make_shared<ReLU>());
  c.push_back(std::make_shared<Dropout>(opts.dropout, detail::drawSeed(rng)));
  c.push_back(std::make_shared<Linear>(hidden, hidden, rng));
  c.push_back(std::make_shared<ReLU>());
  c.push_back(std::make_shared<Dropout>(opts.dropout, detail::drawSeed(rng)));
  c.push_back(std::make_shared<Linear>(hidden, opts.numClasses, rng));
}

Tensor AlexNet::forward(const Tensor& x) {
  MANTISSA_CHECK(
      x.dim() == 4 && x.size(1) == opts_.inChannels && x.size(2) == size_ && x.size(3) == size_,
      name(), ": input of shape ", toString(x.shape()), " (built for [N, ", opts_.inChannels, ", ",
      size_, ", ", size_, "])");
  return classifier_->forward(features_->forward(x).flatten(1));
}

std::string AlexNet::name() const {
  return opts_.variant == AlexNetVariant::Original ? "alexnet" : "alexnet-small";
}

std::string AlexNet::extraRepr() const {
  std::ostringstream os;
  os << "variant=" << (opts_.variant == AlexNetVariant::Original ? "original" : "small")
     << ", in_channels=" << opts_.inChannels << ", num_classes=" << opts_.numClasses
     << ", input_size=" << size_ << ", groups=" << opts_.groups << ", dropout=" << opts_.dropout;
  return os.str();
}

}  // namespace mantissa::nn
