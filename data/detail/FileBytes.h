#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace mantissa::data::detail {

/// Default ceiling on the decompressed size of one gzip file (16 GiB): far above any dataset
/// file we read, low enough that a corrupt size field cannot exhaust memory by itself.
inline constexpr size_t kMaxGunzipBytes = size_t{16} << 30;

/// All bytes of `path`. Throws mantissa::Error naming the file when it is missing, is a
/// directory or cannot be read completely.
std::vector<uint8_t> readFile(const std::string& path);

/// True when `data` starts with the gzip magic bytes 1f 8b.
bool isGzip(const uint8_t* data, size_t size);

/// Decompresses a gzip stream (concatenated members allowed, CRC checked by zlib). Throws
/// mantissa::Error naming `name` on corrupt or truncated input, trailing garbage, or when the
/// output would exceed `maxBytes`.
std::vector<uint8_t> gunzip(const uint8_t* data, size_t size, const std::string& name,
                            size_t maxBytes = kMaxGunzipBytes);

/// The content of `path`, decompressed when it is gzip (detected by magic bytes, not by the
/// file extension). `wasGzip`, when given, tells which case applied.
std::vector<uint8_t> readMaybeGzip(const std::string& path, bool* wasGzip = nullptr);

/// `dir/base` if that file exists, else `dir/base.gz` if that exists; otherwise throws an
/// Error naming both candidates and `what` (the dataset asking).
std::string findPlainOrGzip(const std::string& dir, const std::string& base, const char* what);

}  // namespace mantissa::data::detail
