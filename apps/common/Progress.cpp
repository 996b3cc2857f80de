#include "apps/common/Progress.h"

#include <unistd.h>

#include <cstdio>
#include <iostream>

namespace mantissa::train {

namespace {
std::string formatSeconds(double s) {
  char buf[32];
  int64_t t = static_cast<int64_t>(s + 0.5);
  if (t >= 3600) {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(t / 3600),
                  static_cast<long long>(t / 60 % 60));
  } else {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(t / 60),
                  static_cast<long long>(t % 60));
  }
  return buf;
}
}  // namespace

Progress::Progress(std::ostream& out, int tty, double plainEverySeconds)
    : out_(out), plainEvery_(plainEverySeconds) {
  if (tty >= 0) {
    tty_ = tty != 0;
  } else if (&out == &std::cout) {
    tty_ = isatty(STDOUT_FILENO);
  } else if (&out == &std::cerr) {
    tty_ = isatty(STDERR_FILENO);
  } else {
    tty_ = false;
  }
}

void Progress::update(const ProgressInfo& info) {
  auto now = std::chrono::steady_clock::now();
  if (info.epoch != lastEpoch_) {
    lastEpoch_ = info.epoch;
    epochStart_ = now;
    lastPrint_ = now;
  }
  double elapsed = std::chrono::duration<double>(now - epochStart_).count();
  bool last = info.batch >= info.numBatches;
  if (!tty_ && !last && std::chrono::duration<double>(now - lastPrint_).count() < plainEvery_) return;
  lastPrint_ = now;
  double eta = info.batch > 0 ? elapsed / info.batch * (info.numBatches - info.batch) : 0;
  char buf[256];
  std::string acc;
  if (info.accuracy >= 0) {
    std::snprintf(buf, sizeof buf, " acc %.2f%%", 100 * info.accuracy);
    acc = buf;
  }
  std::string bar;
  if (tty_) {
    const int width = 24;
    int filled = info.numBatches > 0 ? static_cast<int>(width * info.batch / info.numBatches) : 0;
    bar = "[" + std::string(filled, '#') + std::string(width - filled, '.') + "] ";
  }
  std::snprintf(buf, sizeof buf, "epoch %lld/%lld %s%lld/%lld loss %.4f%s %.0f img/s %s %s",
                static_cast<long long>(info.epoch + 1), static_cast<long long>(info.numEpochs),
                bar.c_str(), static_cast<long long>(info.batch),
                static_cast<long long>(info.numBatches), info.loss, acc.c_str(), info.imagesPerSec,
                last ? formatSeconds(elapsed).c_str() : ("ETA " + formatSeconds(eta)).c_str(),
                info.extra.c_str());
  if (tty_) {
    out_ << '\r' << buf << "\033[K" << std::flush;
    lineOpen_ = true;
  } else {
    out_ << buf << '\n' << std::flush;
  }
}

void Progress::finish() {
  if (lineOpen_) out_ << '\n' << std::flush;
  lineOpen_ = false;
}

}  // namespace mantissa::train
