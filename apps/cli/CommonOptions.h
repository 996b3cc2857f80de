#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <cxxopts.hpp>

#include "core/Error.h"

namespace mantissa::cli {

/// A bad command line (exit code 2).
class UsageError : public Error {
 public:
  using Error::Error;
};

/// Options every training app shares (issue: apps). Parsed and validated by parseCommon; each
/// error names the option.
struct CommonOptions {
  std::string precision = "fp32";
  bool changePrecision = false;  // allow resuming with another --precision
  std::string data;              // dataset directory ("" = installed Fashion-MNIST)
  int64_t epochs = 1;
  int64_t batchSize = 128;
  double lr = 0.1;
  std::string lrSchedule = "cosine";  // constant | step | multistep | cosine
  std::vector<int64_t> lrMilestones;  // for step (first value = step size) / multistep
  double lrGamma = 0.1;
  int64_t warmupEpochs = 0;
  double momentum = 0.9;
  double weightDecay = 5e-4;
  uint64_t seed = 1;
  int threads = 0;  // 0 = all cores
  std::string checkpoint;
  int64_t keep = 1;
  std::string resume;
  std::string log;
  int64_t limitBatches = 0;
  int64_t limitTestBatches = 0;
  int64_t metricsEvery = 0;  // per-step metrics line in the log every N steps (0 = off)
  bool evalOnly = false;
  bool quiet = false;
  std::string commandLine;
};

/// Declares the common options on `options`.
void addCommonOptions(cxxopts::Options& options);
/// Reads and validates them; throws mantissa::Error naming the option.
CommonOptions parseCommon(const cxxopts::ParseResult& result, int argc, char** argv);

/// Runs `body`, printing mantissa/cxxopts errors as "<app>: error: ..." and returning exit
/// code 2 for usage errors, 1 for run-time failures.
int runMain(const char* app, int (*body)(int, char**), int argc, char** argv);

}  // namespace mantissa::cli
