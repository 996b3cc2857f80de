#include <doctest/doctest.h>

#include "tests/TempDir.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "apps/QuantizeTool.h"
#include "core/Rng.h"
#include "tests/formats/FormatTestUtil.h"

using namespace mantissa;
using namespace mantissa::formats;
namespace fs = std::filesystem;

namespace {

using mantissa::test::TempDir;

struct Run {
  int code;
  std::string out, err;
};

Run runTool(std::vector<std::string> args) {
  args.insert(args.begin(), "mantissa-quantize");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  std::ostringstream out, err;
  int code = apps::runQuantizeTool(static_cast<int>(argv.size()), argv.data(), out, err);
  return {code, out.str(), err.str()};
}

void writeRaw(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A hand-built .npy (independent of the tool's writer).
std::string npyBytes(int major, const std::string& dict, const std::vector<float>& values) {
  std::string header = dict;
  size_t fixed = major == 1 ? 10 : 12;
  header.append((64 - (fixed + header.size() + 1) % 64) % 64, ' ');
  header += '\n';
  std::string s = "\x93NUMPY";
  s += static_cast<char>(major);
  s += '\0';
  size_t len = header.size();
  for (size_t i = 0; i < (major == 1 ? 2u : 4u); ++i) s += static_cast<char>((len >> (8 * i)) & 0xFF);
  s += header;
  s.append(reinterpret_cast<const char*>(values.data()), values.size() * 4);
  return s;
}

}  // namespace

TEST_CASE("mantissa-quantize: .npy in, .npy out, codes and statistics") {
  TempDir dir;
  std::vector<float> v = {1.0f, 0.1f, -0.3f, 3.0f, 470.f, 1e-4f};
  writeRaw(dir / "x.npy", npyBytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", v));
  Run r = runTool({"--format", "e4m3", "--input", dir / "x.npy", "--output", dir / "q.npy",
                   "--codes", dir / "c.npy", "--stats"});
  CAPTURE(r.err);
  REQUIRE(r.code == 0);
  Tensor q = apps::readTensorFile(dir / "q.npy");
  CHECK(q.shape() == Shape{2, 3});
  // §10.1 values; 1e-4 is below half the smallest subnormal (2^-10) and flushes.
  CHECK(q.toVector<float>() == std::vector<float>{1.0f, 0.1015625f, -0.3125f, 3.0f, 448.f, 0.f});
  // The codes file is a '|u1' .npy: check the raw payload bytes after the 128-byte header.
  std::ifstream cf(dir / "c.npy", std::ios::binary);
  std::string codes((std::istreambuf_iterator<char>(cf)), std::istreambuf_iterator<char>());
  REQUIRE(codes.size() == 128 + 6);
  CHECK(codes.find("'descr': '|u1'") != std::string::npos);
  CHECK(codes.find("'shape': (2, 3)") != std::string::npos);
  std::vector<uint8_t> payload(codes.begin() + 128, codes.end());
  CHECK(payload == std::vector<uint8_t>{0x38, 0x1D, 0xAA, 0x44, 0x7E, 0x00});
  CHECK(r.out.find("SQNR dB") != std::string::npos);
  CHECK(r.out.find("saturated         0.166667 (1)") != std::string::npos);
  CHECK(r.out.find("flushed to zero   0.166667 (1)") != std::string::npos);
  CHECK(r.out.find("bits per value    8") != std::string::npos);
}

TEST_CASE("mantissa-quantize: raw float32 with --shape, and .npy v2 headers") {
  TempDir dir;
  std::vector<float> v(12);
  Rng rng(1);
  for (auto& x : v) x = rng.normal();
  writeRaw(dir / "x.f32", std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4));
  Run r = runTool({"--format", "bf16", "--input", dir / "x.f32", "--output", dir / "q.f32",
                   "--shape", "3,4"});
  REQUIRE(r.code == 0);
  Tensor q = apps::readTensorFile(dir / "q.f32", Shape{3, 4});
  CHECK(q.toVector<float>() == parse("bf16")->quantize(Tensor::fromVector(v), {}).toVector<float>());

  writeRaw(dir / "v2.npy", npyBytes(2, "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }",
                                    {1.f, 2.f, 3.f, 4.f}));
  Tensor t = apps::readTensorFile(dir / "v2.npy");
  CHECK(t.shape() == Shape{4});
  CHECK(t.toVector<float>() == std::vector<float>{1.f, 2.f, 3.f, 4.f});
}

TEST_CASE("mantissa-quantize: bad input gives exit code 2 and names the file or option") {
  TempDir dir;
  writeRaw(dir / "ten.f32", std::string(40, '\0'));
  writeRaw(dir / "odd.bin", std::string(7, '\0'));
  writeRaw(dir / "f8.npy", npyBytes(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }",
                                    {0.f, 0.f}));
  writeRaw(dir / "fortran.npy",
           npyBytes(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", {0.f, 0.f}));
  writeRaw(dir / "short.npy",
           npyBytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", {0.f}));
  writeRaw(dir / "junk.npy", "not numpy at all");
  std::string out = dir / "o.f32";
  struct Case {
    std::vector<std::string> args;
    std::vector<std::string> mentions;
  };
  for (const Case& c : {
           Case{{"--format", "e4m3", "--input", dir / "missing.f32", "--output", out},
                {"missing.f32", "cannot open"}},
           Case{{"--format", "e4m3", "--input", dir / "ten.f32", "--output", out, "--shape", "3,4"},
                {"ten.f32", "10 float32 values", "--shape [3, 4]"}},
           Case{{"--format", "e4m3", "--input", dir / "ten.f32", "--output", out, "--shape", "3,x"},
                {"--shape", "'x'"}},
           Case{{"--format", "e4m3", "--input", dir / "odd.bin", "--output", out},
                {"odd.bin", "7 bytes"}},
           Case{{"--format", "e4m3", "--input", dir / "f8.npy", "--output", out},
                {"f8.npy", "'<f8'", "<f4"}},
           Case{{"--format", "e4m3", "--input", dir / "fortran.npy", "--output", out},
                {"fortran.npy", "Fortran"}},
           Case{{"--format", "e4m3", "--input", dir / "short.npy", "--output", out},
                {"short.npy", "needs 12 data bytes"}},
           Case{{"--format", "e4m3", "--input", dir / "junk.npy", "--output", out},
                {"junk.npy", "magic"}},
           Case{{"--format", "e4m4", "--input", dir / "ten.f32", "--output", out},
                {"--format", "unknown format 'e4m4'", "e5m2"}},
           Case{{"--format", "e4m3:sat=3", "--input", dir / "ten.f32", "--output", out},
                {"--format", "sat=3"}},
           Case{{"--input", dir / "ten.f32", "--output", out}, {"missing --format"}},
           Case{{"--format", "e4m3", "--input", dir / "ten.f32", "--output", out, "--bogus"},
                {"bogus"}},
           Case{{"--format", "e4m3", "--input", dir / "ten.f32", "--output", out, "--axis", "3"},
                {"--axis 3", "[10]"}},
           Case{{"--format", "e4m3", "--input", dir / "ten.f32", "--output",
                 dir / "no/such/dir/o.f32"},
                {"no/such/dir/o.f32", "cannot open for writing"}},
       }) {
    Run r = runTool(c.args);
    CAPTURE(r.err);
    CHECK(r.code == 2);
    for (const auto& m : c.mentions) CHECK(r.err.find(m) != std::string::npos);
  }
  // A format without NaN rejects non-finite input, naming the input file.
  float nan = std::numeric_limits<float>::quiet_NaN();
  writeRaw(dir / "nan.f32", std::string(reinterpret_cast<const char*>(&nan), 4));
  Run r = runTool({"--format", "ffp8:e=4,f=3,b=7,s=1", "--input", dir / "nan.f32", "--output", out});
  CHECK(r.code == 2);
  CHECK(r.err.find("nan.f32") != std::string::npos);
  Run h = runTool({"--help"});
  CHECK(h.code == 0);
  CHECK(h.out.find("hbfp8") != std::string::npos);
}
