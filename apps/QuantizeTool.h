#pragma once

#include <iosfwd>
#include <optional>
#include <string>

#include "core/Tensor.h"
#include "formats/Format.h"

namespace mantissa::apps {

/// Runs `mantissa-quantize` with command-line arguments (argv[0] is the program name): reads a
/// float32 tensor (.npy, or raw little-endian .f32/.bin), quantizes it with --format, writes the
/// result, optionally the packed codes (--codes) and the conversion statistics (--stats).
/// Returns the exit code: 0 on success, 2 on bad input (message on `err`), 1 on internal errors.
int runQuantizeTool(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

/// Reads a float32 tensor: NumPy .npy (format v1/v2/v3 headers, '<f4', C order) or raw
/// little-endian float32 for any other extension (shape from `shape`, else 1-D). Errors name
/// the file and what is wrong with it.
Tensor readTensorFile(const std::string& path, const std::optional<Shape>& shape = std::nullopt);
/// Writes `t` as .npy (v1 header) when the path ends in ".npy", else as raw little-endian
/// bytes. Supports F32, F64, I64, I32, I16, U16, I8, U8.
void writeTensorFile(const std::string& path, const Tensor& t);

/// Error of a conversion x → q (what --stats prints).
struct ConversionStats {
  int64_t count = 0;
  double sqnrDb = 0;       // 10·log10(Σx² / Σ(x-q)²) over finite x; +inf when exact
  double maxAbsError = 0, meanAbsError = 0;
  double maxRelError = 0, meanRelError = 0;  // over finite non-zero x
  double fractionSaturated = 0, fractionFlushed = 0;
  int64_t nonFinite = 0;   // non-finite inputs (excluded from the errors)
  double bitsPerValue = 0;
};
/// Statistics of x → q, taking the saturated/flushed counters from the quantizer's `qs`.
ConversionStats conversionStats(const Tensor& x, const Tensor& q, const formats::QuantStats& qs,
                                double bitsPerValue);

}  // namespace mantissa::apps
