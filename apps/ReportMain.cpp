// mantissa-report: plots the JSONL logs of several runs on one chart (test accuracy, loss,
// Wasserstein estimate, Fréchet distance per epoch, or a tensor's Autoflex exponent per step)
// as SVG or PNG (docs/apps.md).
//   mantissa-report runs/fp32.jsonl runs/flexpoint.jsonl --output accuracy.svg
#include "apps/cli/Apps.h"
#include "apps/cli/CommonOptions.h"

int main(int argc, char** argv) {
  return mantissa::cli::runMain("mantissa-report", mantissa::cli::reportApp, argc, argv);
}
