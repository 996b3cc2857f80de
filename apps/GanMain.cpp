// mantissa-gan: trains a WGAN (weight clipping, RMSprop) or a DCGAN in any precision recipe,
// writing sample grids and, with --fid-classifier, a Fréchet distance every epoch
// (docs/apps.md).
//   mantissa-gan --gan wgan --precision flexpoint --epochs 10 --log runs/wgan.jsonl
#include "apps/cli/Apps.h"
#include "apps/cli/CommonOptions.h"

int main(int argc, char** argv) {
  return mantissa::cli::runMain("mantissa-gan", mantissa::cli::ganApp, argc, argv);
}
