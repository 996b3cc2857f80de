#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/io/StateDict.h"
#include "formats/Format.h"

namespace mantissa::formats {

/// Constants of the Autoflex exponent manager (FORMATS.md §2.3, Köster et al. 2017, the neon
/// "flexsim" port in ngraph-python). Every field can be set from the spec string
/// (`flex16+5:history=16,sigmas=3,margin=100,...`); defaults are the port's values for flex16+5.
struct AutoflexConfig {
  /// N of flexN+M: mantissas are two's-complement integers in [-2^(N-1), 2^(N-1) - 1].
  int mantissaBits = 16;
  /// Depth of the FIFO of recent maxima (port: stats_queue_len).
  int history = 16;
  /// Standard deviations of headroom in the steady-state prediction (port: num_std).
  double sigmas = 3;
  /// Extra headroom in LSBs of the current scale (port: offset).
  double margin = 100;
  /// Headroom in LSBs for rarely-updated tensors (port: 1 << (high_bit - 3) = 4096 for flex16).
  double rareMargin = 4096;
  /// Exponent (dec, scale = 2^-dec) of a fresh tensor before its initialisation search.
  int initDec = 8;
  /// The initialisation search gives up after this many attempts and uses scale 1.
  int initTries = 10;
  /// Range of dec; the port clamps the scale to [2^-32, 1], i.e. dec in [0, 32].
  int decMin = 0;
  int decMax = 32;
};

/// Everything Autoflex knows about one tensor. Public so tests and tools can inspect or set up
/// a state exactly (e.g. a given FIFO); `Autoflex::snapshot()` / `restore()` read and write it.
struct AutoflexSnapshot {
  /// Current exponent: scale = 2^-dec. Used for the next write unless `dirty` (see below).
  int dec = 8;
  /// Recent maxima in float units (maxabs_int * scale), oldest first, at most `history` long.
  std::vector<double> fifo;
  /// False until the initialisation search has accepted a scale.
  bool initialized = false;
  /// Initialisation attempts made so far (port: init_count).
  int64_t initCount = 0;
  /// Number of steady-state predictions made (port: adjust_count).
  int64_t adjustCount = 0;
  /// The caller's clock at the last write: QuantizeArgs::step + 1 (port: age, the number of
  /// Autoflex rounds at the last refresh).
  int64_t age = 0;
  /// A write happened since the last prediction; the next write first re-predicts the scale.
  bool dirty = false;
  /// Writes whose integers saturated (maxabs_int >= 2^(N-1) - 1).
  int64_t overflows = 0;
  /// maxabs_int of the last write (after the overflow doubling), for logs.
  int64_t lastMaxabs = 0;
  /// Number of writes recorded.
  int64_t writes = 0;
};

/// The Autoflex state machine of one Flexpoint tensor (a FormatState owned by the quantization
/// point that writes the tensor). Emulation protocol for write t (Flexpoint::quantize):
///   1. `initialized == false`: `initialize()` runs the search on the tensor being written;
///      each "rerun" of the port is a re-quantization of the same FP32 values.
///   2. otherwise `nextDec()` is the exponent for this write: predicted from the FIFO, i.e.
///      from writes < t only ("applied lazily before its next write").
///   3. the tensor is written with that exponent and `recordWrite()` runs overflow detection,
///      appends the new maximum to the FIFO and marks the state dirty. A saturated write is
///      not redone (port behaviour); only the exponent of the next write grows.
class Autoflex : public FormatState {
 public:
  explicit Autoflex(AutoflexConfig config);

  const AutoflexConfig& config() const { return config_; }
  AutoflexSnapshot snapshot() const { return s_; }
  /// Replaces the state; checks it against the config (FIFO length, dec range).
  void restore(const AutoflexSnapshot& s);

  bool initialized() const { return s_.initialized; }
  /// Exponent for the next write: the prediction from the FIFO when dirty, else the current
  /// dec. Does not change the state (so a write that fails leaves the state untouched).
  int nextDec() const;
  /// Initialisation search (§2.3): `maxabsAt(dec)` returns max|M| of the tensor written with
  /// exponent dec. Returns the accepted dec. No-op when already initialised.
  int initialize(const std::function<int64_t(int dec)>& maxabsAt);
  /// Records a completed write made with `nextDec()`: commits the pending prediction
  /// (adjust_count += 1), then the port's refresh (overflow detection, FIFO append, dirty).
  void recordWrite(int64_t maxabsInt, uint64_t step);

  /// Steady-state prediction from the current FIFO, counters and dec (port: adjust_scale),
  /// counting the prediction in `adjustCount` as the port does. Exposed for tests.
  int predictDec(int64_t adjustCount) const;
  /// Port get_scale as a dec: scale = 2^(floor(log2 float(maxval)) - (N - 2)), 1 for 0.
  int decForMax(double maxval) const;

  // FormatState
  std::unique_ptr<FormatState> clone() const override;
  void saveState(io::StateDict& out, const std::string& prefix) const override;
  void loadState(const io::StateDict& in, const std::string& prefix) override;
  std::string describe() const override;
  /// "exponent" (= -dec), "dec", "overflows", "initialized", "maxabs".
  std::vector<std::pair<std::string, double>> metrics() const override;

 private:
  int clampDec(int64_t dec) const;

  AutoflexConfig config_;
  AutoflexSnapshot s_;
};

}  // namespace mantissa::formats
