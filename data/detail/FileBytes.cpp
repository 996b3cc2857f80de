#include "data/detail/FileBytes.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "core/Error.h"

namespace mantissa::data::detail {

std::vector<uint8_t> readFile(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  MANTISSA_CHECK(fs::exists(path, ec), "missing file '", path, "'");
  MANTISSA_CHECK(!fs::is_directory(path, ec), "'", path, "' is a directory, expected a file");
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  MANTISSA_CHECK(f != nullptr, "cannot open '", path, "': ", std::strerror(errno));
  std::vector<uint8_t> bytes;
  // The size from the file system is only a hint (the file may change or be a pipe): read until
  // EOF in chunks so a short file never leaves uninitialised bytes behind.
  uintmax_t hint = fs::file_size(path, ec);
  if (!ec) bytes.reserve(static_cast<size_t>(hint));
  uint8_t chunk[1 << 16];
  while (size_t n = std::fread(chunk, 1, sizeof chunk, f.get())) {
    bytes.insert(bytes.end(), chunk, chunk + n);
  }
  MANTISSA_CHECK(!std::ferror(f.get()), "read error in '", path, "': ", std::strerror(errno));
  return bytes;
}

bool isGzip(const uint8_t* data, size_t size) {
  return size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
}

std::vector<uint8_t> gunzip(const uint8_t* data, size_t size, const std::string& name,
                            size_t maxBytes) {
  MANTISSA_CHECK(isGzip(data, size), "'", name, "': not a gzip stream (no 1f 8b magic)");
  z_stream zs{};
  // 15 window bits + 16: accept the gzip wrapper only (header, CRC-32 and length are checked).
  MANTISSA_CHECK(inflateInit2(&zs, 15 + 16) == Z_OK, "'", name, "': zlib init failed");
  std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&zs, &inflateEnd);

  // The trailer's ISIZE (length mod 2^32) is a good first guess; deflate cannot expand more
  // than ~1032:1, which bounds what a corrupt trailer can make us reserve.
  std::vector<uint8_t> out;
  size_t guess = 0;
  if (size >= 18) {
    const uint8_t* t = data + size - 4;
    guess = size_t{t[0]} | size_t{t[1]} << 8 | size_t{t[2]} << 16 | size_t{t[3]} << 24;
  }
  guess = std::min({guess, size * 1032 + 64, maxBytes});
  out.resize(std::max<size_t>(guess, 4096));

  size_t inPos = 0, outPos = 0;
  constexpr size_t kMaxChunk = size_t{1} << 30;  // avail_in/avail_out are 32-bit
  while (true) {
    if (outPos == out.size()) {
      MANTISSA_CHECK(out.size() < maxBytes, "'", name, "': decompressed data exceeds ", maxBytes,
                     " bytes");
      out.resize(std::min(maxBytes, out.size() * 2));
    }
    size_t inChunk = std::min(size - inPos, kMaxChunk);
    size_t outChunk = std::min(out.size() - outPos, kMaxChunk);
    zs.next_in = const_cast<Bytef*>(data + inPos);
    zs.avail_in = static_cast<uInt>(inChunk);
    zs.next_out = out.data() + outPos;
    zs.avail_out = static_cast<uInt>(outChunk);
    int rc = inflate(&zs, Z_NO_FLUSH);
    inPos += inChunk - zs.avail_in;
    outPos += outChunk - zs.avail_out;
    if (rc == Z_STREAM_END) {
      if (inPos == size) break;
      // Another gzip member may follow (as `cat a.gz b.gz` produces); anything else is garbage.
      MANTISSA_CHECK(isGzip(data + inPos, size - inPos), "'", name, "': ", size - inPos,
                     " unexpected bytes after the gzip stream at compressed offset ", inPos);
      MANTISSA_CHECK(inflateReset(&zs) == Z_OK, "'", name, "': zlib reset failed");
      continue;
    }
    if (rc == Z_OK) continue;
    if (rc == Z_BUF_ERROR) {
      // No progress possible: either the output is full (grow and retry) or the input ended.
      if (outPos < out.size()) {
        MANTISSA_CHECK(inPos < size, "'", name, "': truncated gzip stream (input ended after ",
                       size, " compressed bytes, ", outPos, " bytes decompressed)");
      }
      continue;
    }
    MANTISSA_CHECK(false, "'", name, "': corrupt gzip data near compressed offset ", inPos,
                   " (zlib: ", zs.msg ? zs.msg : "error " + std::to_string(rc), ")");
  }
  out.resize(outPos);
  return out;
}

std::vector<uint8_t> readMaybeGzip(const std::string& path, bool* wasGzip) {
  std::vector<uint8_t> bytes = readFile(path);
  bool gz = isGzip(bytes.data(), bytes.size());
  if (wasGzip) *wasGzip = gz;
  if (!gz) return bytes;
  return gunzip(bytes.data(), bytes.size(), path);
}

std::string findPlainOrGzip(const std::string& dir, const std::string& base, const char* what) {
  namespace fs = std::filesystem;
  fs::path plain = fs::path(dir) / base;
  fs::path gz = fs::path(dir) / (base + ".gz");
  std::error_code ec;
  if (fs::is_regular_file(plain, ec)) return plain.string();
  if (fs::is_regular_file(gz, ec)) return gz.string();
  MANTISSA_CHECK(false, what, ": missing file '", plain.string(), "' (nor '", gz.string(),
                 "' exists)");
  return {};
}

}  // namespace mantissa::data::detail
