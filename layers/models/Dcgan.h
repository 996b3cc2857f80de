#pragma once

#include <memory>

#include "core/Rng.h"
#include "layers/Sequential.h"
#include "layers/models/Model.h"

namespace mantissa::nn {

/// Options of the DCGAN generator.
struct DcganGeneratorOptions {
  /// Output image size: 64 (Radford et al. 2015, the PyTorch DCGAN example) or 28 (MNIST).
  int64_t imageSize = 64;
  /// Output channels (3 for colour images, 1 for MNIST-like data).
  int64_t channels = 3;
  /// Length of the latent vector z.
  int64_t latent = 100;
  /// Feature maps of the last hidden layer (`ngf`); earlier layers use 2x, 4x, 8x this.
  int64_t width = 64;
};

/// Options of the DCGAN discriminator / WGAN critic.
struct DcganDiscriminatorOptions {
  int64_t imageSize = 64;
  int64_t channels = 3;
  /// Feature maps of the first layer (`ndf`); later layers use 2x, 4x, 8x this.
  int64_t width = 64;
  /// BatchNorm after every convolution but the first and the last (DCGAN). WGAN-GP critics
  /// drop it (a per-sample gradient penalty is incompatible with batch statistics).
  bool batchNorm = true;
  /// A final Sigmoid gives a probability (DCGAN with BCE); a WGAN critic outputs a raw score.
  bool sigmoid = true;
};

/// DCGAN generator (Radford et al. 2015): z [N, latent] or [N, latent, 1, 1] -> images
/// [N, channels, S, S] in [-1, 1]. Transposed convolutions (4x4, stride 2, padding 1, no
/// bias), each followed by BatchNorm and ReLU, the last one by Tanh. Registered in a Sequential
/// `main` like the PyTorch DCGAN example (`main.0.weight`, `main.1.running_mean`, ...).
///   64x64: latent -> 8w (4x4, from a 4x4/1 ConvT) -> 4w (8x8) -> 2w (16x16) -> w (32x32) ->
///          channels (64x64); 3,576,704 parameters with the defaults.
///   28x28: latent -> 4w (4x4) -> 2w (7x7, a 3x3/2 pad 1 ConvT) -> w (14x14) -> channels
///          (28x28); 837,504 parameters for 1 channel, latent 100, width 64.
/// Initialised like the DCGAN paper: conv weights N(0, 0.02), BN weights N(1, 0.02), BN
/// biases 0.
class DcganGenerator : public Model {
 public:
  DcganGenerator(const DcganGeneratorOptions& opts, Rng& rng);

  Tensor forward(const Tensor& z) override;
  /// "dcgan64-generator".
  std::string name() const override;
  /// "image_size=64, channels=3, latent=100, width=64".
  std::string extraRepr() const override;
  const DcganGeneratorOptions& options() const { return opts_; }

 private:
  DcganGeneratorOptions opts_;
  std::shared_ptr<Sequential> main_;
};

/// DCGAN discriminator, or WGAN critic with {.batchNorm = false, .sigmoid = false}: images
/// [N, channels, S, S] -> [N] (one score per image, like the example's `.view(-1)`).
/// Convolutions (4x4, stride 2, padding 1, no bias) with LeakyReLU(0.2), BatchNorm on all but
/// the first, and a final 4x4 valid convolution to one value, in a Sequential `main`.
///   64x64: channels -> w (32) -> 2w (16) -> 4w (8) -> 8w (4) -> 1; 2,765,568 parameters with
///          the defaults.
///   28x28: channels -> w (14) -> 2w (7) -> 4w (4, a 3x3/2 pad 1 conv) -> 1; 431,872
///          parameters for 1 channel and width 64.
/// Initialised like the generator.
class DcganDiscriminator : public Model {
 public:
  DcganDiscriminator(const DcganDiscriminatorOptions& opts, Rng& rng);

  Tensor forward(const Tensor& x) override;
  /// "dcgan64-discriminator", or "dcgan64-critic" without the sigmoid.
  std::string name() const override;
  /// "image_size=64, channels=3, width=64, batch_norm=true, sigmoid=true".
  std::string extraRepr() const override;
  const DcganDiscriminatorOptions& options() const { return opts_; }

 private:
  DcganDiscriminatorOptions opts_;
  std::shared_ptr<Sequential> main_;
};

}  // namespace mantissa::nn
