#include "layers/models/Dcgan.h"

#include <sstream>

#include "layers/BatchNorm2d.h"
#include "layers/Conv2d.h"
#include "layers/ConvTranspose2d.h"
#include "layers/LeakyReLU.h"
#include "layers/ReLU.h"
#include "layers/Sigmoid.h"
#include "layers/Tanh.h"
#include "layers/models/detail/Init.h"

namespace mantissa::nn {

namespace {

// The PyTorch DCGAN example's weights_init: Conv* weights N(0, 0.02); BatchNorm weights
// N(1, 0.02) and biases 0 (Radford et al. 2015, §4: "initialized from a zero-centered Normal
// distribution with standard deviation 0.02").
void dcganInit(Module& model, Rng& rng) {
  for (auto& [name, m] : model.namedModules()) {
    const std::string& t = m->typeName();
    if (t == "Conv2d" || t == "ConvTranspose2d") detail::normalInit(*m, "weight", 0.f, 0.02f, rng);
    if (t == "BatchNorm2d") detail::normalInit(*m, "weight", 1.f, 0.02f, rng);
  }
}

void checkSize(const char* what, int64_t imageSize) {
  MANTISSA_CHECK(imageSize == 64 || imageSize == 28, what, ": image size ", imageSize,
                 " is not supported (64 or 28)");
}

/// seq's forward with each BatchNorm2d that is directly followed by a ReLU or LeakyReLU run as
/// BatchNorm2d::forwardRelu / forwardLeakyRelu (same bits and gradients as the two modules, one
/// pass over the data fewer and no separate activation output and autograd node).
Tensor forwardFusingBn(const Sequential& seq, Tensor h) {
  for (size_t i = 0; i < seq.size(); ++i) {
    auto bn = std::dynamic_pointer_cast<BatchNorm2d>(seq[i]);
    if (bn && i + 1 < seq.size()) {
      if (std::dynamic_pointer_cast<ReLU>(seq[i + 1])) {
        h = bn->forwardRelu(h);
        ++i;
        continue;
      }
      if (auto leaky = std::dynamic_pointer_cast<LeakyReLU>(seq[i + 1])) {
        h = bn->forwardLeakyRelu(h, leaky->negativeSlope());
        ++i;
        continue;
      }
    }
    h = seq[i]->forward(h);
  }
  return h;
}

}  // namespace

DcganGenerator::DcganGenerator(const DcganGeneratorOptions& opts, Rng& rng)
    : Model("DcganGenerator"), opts_(opts) {
  checkSize("DcganGenerator", opts.imageSize);
  MANTISSA_CHECK(opts.channels > 0 && opts.latent > 0 && opts.width > 0,
                 "DcganGenerator: channels, latent and width must be positive");
  main_ = registerModule("main", std::make_shared<Sequential>());
  const int64_t w = opts.width;
  auto up = [&](int64_t in, int64_t out, int64_t k, int64_t s, int64_t p, bool last) {
    main_->push_back(std::make_shared<ConvTranspose2d>(
        in, out, k, rng, ConvTranspose2dOptions{.stride = s, .padding = p, .bias = false}));
    if (last) {
      main_->push_back(std::make_shared<Tanh>());
    } else {
      main_->push_back(std::make_shared<BatchNorm2d>(out));
      main_->push_back(std::make_shared<ReLU>());
    }
  };
  if (opts.imageSize == 64) {
    up(opts.latent, 8 * w, 4, 1, 0, false);  // 1 -> 4
    up(8 * w, 4 * w, 4, 2, 1, false);        // 4 -> 8
    up(4 * w, 2 * w, 4, 2, 1, false);        // 8 -> 16
    up(2 * w, w, 4, 2, 1, false);            // 16 -> 32
    up(w, opts.channels, 4, 2, 1, true);     // 32 -> 64
  } else {
    up(opts.latent, 4 * w, 4, 1, 0, false);  // 1 -> 4
    up(4 * w, 2 * w, 3, 2, 1, false);        // 4 -> 7: (4-1)*2 - 2 + 3
    up(2 * w, w, 4, 2, 1, false);            // 7 -> 14
    up(w, opts.channels, 4, 2, 1, true);     // 14 -> 28
  }
  dcganInit(*this, rng);
}

Tensor DcganGenerator::forward(const Tensor& z) {
  const bool flat = z.dim() == 2;
  MANTISSA_CHECK(
      (flat || (z.dim() == 4 && z.size(2) == 1 && z.size(3) == 1)) && z.size(1) == opts_.latent,
      name(), ": latent input of shape ", toString(z.shape()), " (expected [N, ", opts_.latent,
      "] or [N, ", opts_.latent, ", 1, 1])");
  return forwardFusingBn(*main_, flat ? z.reshape({z.size(0), opts_.latent, 1, 1}) : z);
}

std::string DcganGenerator::name() const {
  return "dcgan" + std::to_string(opts_.imageSize) + "-generator";
}

std::string DcganGenerator::extraRepr() const {
  std::ostringstream os;
  os << "image_size=" << opts_.imageSize << ", channels=" << opts_.channels
     << ", latent=" << opts_.latent << ", width=" << opts_.width;
  return os.str();
}

DcganDiscriminator::DcganDiscriminator(const DcganDiscriminatorOptions& opts, Rng& rng)
    : Model("DcganDiscriminator"), opts_(opts) {
  checkSize("DcganDiscriminator", opts.imageSize);
  MANTISSA_CHECK(opts.channels > 0 && opts.width > 0,
                 "DcganDiscriminator: channels and width must be positive");
  main_ = registerModule("main", std::make_shared<Sequential>());
  const int64_t w = opts.width;
  auto down = [&](int64_t in, int64_t out, int64_t k, bool norm) {
    main_->push_back(std::make_shared<Conv2d>(
        in, out, k, rng, Conv2dOptions{.stride = 2, .padding = 1, .bias = false}));
    if (norm && opts.batchNorm) main_->push_back(std::make_shared<BatchNorm2d>(out));
    main_->push_back(std::make_shared<LeakyReLU>(0.2f));
  };
  int64_t last;
  if (opts.imageSize == 64) {
    down(opts.channels, w, 4, false);  // 64 -> 32
    down(w, 2 * w, 4, true);           // 32 -> 16
    down(2 * w, 4 * w, 4, true);       // 16 -> 8
    down(4 * w, 8 * w, 4, true);       // 8 -> 4
    last = 8 * w;
  } else {
    down(opts.channels, w, 4, false);  // 28 -> 14
    down(w, 2 * w, 4, true);           // 14 -> 7
    down(2 * w, 4 * w, 3, true);       // 7 -> 4: (7 + 2 - 3)/2 + 1
    last = 4 * w;
  }
  main_->push_back(
      std::make_shared<Conv2d>(last, 1, 4, rng, Conv2dOptions{.bias = false}));  // 4 -> 1
  if (opts.sigmoid) main_->push_back(std::make_shared<Sigmoid>());
  dcganInit(*this, rng);
}

Tensor DcganDiscriminator::forward(const Tensor& x) {
  MANTISSA_CHECK(x.dim() == 4 && x.size(1) == opts_.channels && x.size(2) == opts_.imageSize &&
                     x.size(3) == opts_.imageSize,
                 name(), ": input of shape ", toString(x.shape()), " (expected [N, ",
                 opts_.channels, ", ", opts_.imageSize, ", ", opts_.imageSize, "])");
  return forwardFusingBn(*main_, x).reshape({x.size(0)});
}

std::string DcganDiscriminator::name() const {
  return "dcgan" + std::to_string(opts_.imageSize) + (opts_.sigmoid ? "-discriminator" : "-critic");
}

std::string DcganDiscriminator::extraRepr() const {
  std::ostringstream os;
  os << "image_size=" << opts_.imageSize << ", channels=" << opts_.channels
     << ", width=" << opts_.width << ", batch_norm=" << (opts_.batchNorm ? "true" : "false")
     << ", sigmoid=" << (opts_.sigmoid ? "true" : "false");
  return os.str();
}

}  // namespace mantissa::nn
