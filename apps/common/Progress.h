#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <string>

namespace mantissa::train {

/// What the progress display shows for the current batch.
struct ProgressInfo {
  int64_t epoch = 0, numEpochs = 0;
  int64_t batch = 0, numBatches = 0;  // batch: batches done in this epoch
  double loss = 0, accuracy = -1;     // accuracy < 0: not shown
  double imagesPerSec = 0;
  std::string extra;                  // app-specific text ("W=0.31")
};

/// A one-line progress bar redrawn in place on a terminal (epoch, batch, loss, accuracy,
/// images/s, ETA), or plain lines every `plainEverySeconds` when the output is a file or pipe,
/// so logs stay readable.
class Progress {
 public:
  /// `tty` < 0: detect from the stream (stdout/stderr only).
  explicit Progress(std::ostream& out, int tty = -1, double plainEverySeconds = 15.0);
  void update(const ProgressInfo& info);
  /// Ends the in-place line (terminal) so the next output starts on a fresh line.
  void finish();

 private:
  std::ostream& out_;
  bool tty_;
  double plainEvery_;
  bool lineOpen_ = false;
  std::chrono::steady_clock::time_point epochStart_, lastPrint_;
  int64_t lastEpoch_ = -1;
};

}  // namespace mantissa::train
