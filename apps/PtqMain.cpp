// mantissa-ptq: post-training quantization of a trained ResNet/AlexNet checkpoint for
// inference, reporting the per-layer formats and the accuracy against FP32 (docs/apps.md).
//   mantissa-ptq --checkpoint runs/r20.h5 --format ffp8:auto --log runs/r20-ptq.jsonl
#include "apps/cli/Apps.h"
#include "apps/cli/CommonOptions.h"

int main(int argc, char** argv) {
  return mantissa::cli::runMain("mantissa-ptq", mantissa::cli::ptqApp, argc, argv);
}
