// mantissa-alexnet: trains AlexNet, the original 227x227 network or the small-input variant,
// in any precision recipe (docs/apps.md).
//   mantissa-alexnet --variant small --precision flexpoint --epochs 2 --log runs/alexnet.jsonl
#include "apps/cli/Apps.h"
#include "apps/cli/CommonOptions.h"

int main(int argc, char** argv) {
  return mantissa::cli::runMain("mantissa-alexnet", mantissa::cli::alexnetApp, argc, argv);
}
