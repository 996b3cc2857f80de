#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "apps/cli/CommonOptions.h"

namespace mantissa::cli {

/// Which adversarial game mantissa-gan plays.
enum class GanType {
  /// Wasserstein GAN with weight clipping (Arjovsky et al. 2017, Algorithm 1), as trained in
  /// the Flexpoint paper: RMSprop (lr 5e-5), critic weights clipped to [-c, c] after every
  /// critic step, one generator step per n_critic critic steps.
  Wgan,
  /// DCGAN (Radford et al. 2015): Adam (lr 2e-4, betas 0.5 / 0.999), binary cross-entropy on
  /// the discriminator's logits, the non-saturating generator loss, one step each per batch.
  Dcgan,
};

/// The GAN-specific options of mantissa-gan (the rest is CommonOptions).
struct GanOptions {
  GanType type = GanType::Wgan;
  int64_t latent = 100;
  /// Feature maps of the generator's last hidden layer and of the critic's first (ngf = ndf).
  int64_t width = 64;
  int64_t nCritic = 5;  // WGAN: critic steps per generator step
  double clip = 0.01;   // WGAN: critic weights are clipped to [-clip, clip]
  /// Side of the generated images: 28 (DCGAN-28, MNIST-like data) or 64 (DCGAN-64; other
  /// data is resized). 0 = the data's own size, which must then be 28 or 64.
  int64_t imageSize = 0;
  /// A PNG grid of 64 samples from a fixed noise batch is written here every epoch
  /// (`epoch-001.png`, ...); "" = none.
  std::string samplesDir = "samples";
  /// A mantissa-resnet checkpoint for the per-epoch Fréchet distance ("" = none).
  std::string fidClassifier;
  int64_t fidSamples = 2000;
  /// Called after every batch with (epoch, batch index): progress hooks for programs that
  /// embed the run; tests raise SIGTERM here to interrupt it.
  std::function<void(int64_t, int64_t)> afterBatch;
};

/// The whole GAN run: data (pixels scaled to [-1, 1]), generator and critic, their optimizers,
/// the precision schedule on both networks, resume, the epoch loop, sample grids, the
/// Fréchet distance, the JSONL log, checkpoints every epoch and on Ctrl-C/SIGTERM, and the
/// summary. Returns the exit code (0 done, 3 non-finite loss, 130 interrupted).
int runGan(const CommonOptions& opts, const GanOptions& gan);

}  // namespace mantissa::cli
