#pragma once

namespace mantissa::cli {

// The bodies of the command-line apps, kept in the mantissa_cli library so that tests drive
// them in-process with an argv exactly as a user would type it. Each parses its options,
// runs, and returns the process exit code (0 done, 3 non-finite loss, 130 interrupted); bad
// options throw UsageError and other failures mantissa::Error, which runMain turns into exit
// codes 2 and 1 with a message on stderr.

/// mantissa-alexnet: trains AlexNet (original 227x227 or the small-input variant).
int alexnetApp(int argc, char** argv);
/// mantissa-gan: trains a WGAN (weight clipping, RMSprop) or a DCGAN on 28x28 or 64x64 images.
int ganApp(int argc, char** argv);
/// mantissa-ptq: post-training quantization of a trained classifier for inference.
int ptqApp(int argc, char** argv);
/// mantissa-report: plots JSONL training logs (curves per epoch, Autoflex exponents per step).
int reportApp(int argc, char** argv);

}  // namespace mantissa::cli
