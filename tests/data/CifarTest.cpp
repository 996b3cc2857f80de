#include <doctest/doctest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "core/Error.h"
#include "data/Cifar.h"
#include "tests/data/DataTestUtil.h"

using namespace mantissa;
using namespace mantissa::data;
using mantissa::data::test::cifarRecord;
using mantissa::data::test::gzipBytes;
using mantissa::data::test::TempDir;
using mantissa::data::test::writeBytes;

namespace {
// Image of record `r` in file `f`: byte k is (f * 31 + r * 7 + k) mod 256, planes R, G, B.
std::vector<uint8_t> image(int f, int r) {
  std::vector<uint8_t> v(3072);
  for (int k = 0; k < 3072; ++k)
    v[static_cast<size_t>(k)] = static_cast<uint8_t>((f * 31 + r * 7 + k) % 256);
  return v;
}

/// Writes the six CIFAR-10 batch files with two records each; label of (f, r) is (f + 3r) % 10.
void writeCifar10(const TempDir& dir, const std::string& sub = "") {
  const std::vector<std::string> names = {"data_batch_1.bin", "data_batch_2.bin",
                                          "data_batch_3.bin", "data_batch_4.bin",
                                          "data_batch_5.bin", "test_batch.bin"};
  for (int f = 0; f < 6; ++f) {
    std::vector<uint8_t> bytes;
    for (int r = 0; r < 2; ++r) {
      std::vector<uint8_t> rec = cifarRecord({static_cast<uint8_t>((f + 3 * r) % 10)}, image(f, r));
      bytes.insert(bytes.end(), rec.begin(), rec.end());
    }
    writeBytes(dir.file(sub + names[static_cast<size_t>(f)]), bytes);
  }
}
}  // namespace

TEST_CASE("Cifar10: known pixels and labels, train and test files") {
  TempDir dir;
  std::string root = dir.str();
  SUBCASE("files directly in the directory") { writeCifar10(dir); }
  SUBCASE("inside the archive's cifar-10-batches-bin") {
    writeCifar10(dir, "cifar-10-batches-bin/");
  }
  Cifar10 train(root, Split::Train), test(root, Split::Test);
  CHECK(train.size() == 10);
  CHECK(test.size() == 2);
  CHECK(train.exampleShape() == Shape{3, 32, 32});
  for (int f = 0; f < 5; ++f) {
    for (int r = 0; r < 2; ++r) {
      Example ex = train.get(2 * f + r);
      CHECK(ex.label == (f + 3 * r) % 10);
      std::vector<float> px = ex.image.toVector();
      std::vector<uint8_t> expected = image(f, r);
      // CHW: the first 1024 bytes are the red plane, row-major.
      CHECK(ex.image.at({0, 0, 0}) == doctest::Approx(expected[0] / 255.0));
      CHECK(ex.image.at({1, 2, 3}) == doctest::Approx(expected[1024 + 2 * 32 + 3] / 255.0));
      CHECK(ex.image.at({2, 31, 31}) == doctest::Approx(expected[3071] / 255.0));
      bool all = true;
      for (size_t k = 0; k < 3072; ++k)
        all = all && px[k] == static_cast<float>(expected[k]) / 255.0f;
      CHECK(all);
    }
  }
  CHECK(test.label(1) == (5 + 3) % 10);
  CHECK(Cifar10::classNames()[3] == "cat");
}

TEST_CASE("Cifar100: fine or coarse target, both labels validated") {
  TempDir dir;
  std::vector<uint8_t> bytes;
  for (int r = 0; r < 3; ++r) {
    std::vector<uint8_t> rec =
        cifarRecord({static_cast<uint8_t>(r + 17), static_cast<uint8_t>(90 + r)}, image(0, r));
    bytes.insert(bytes.end(), rec.begin(), rec.end());
  }
  writeBytes(dir.file("train.bin"), gzipBytes(bytes));  // gzip is accepted too
  Cifar100 fine(dir.str(), Split::Train);
  Cifar100 coarse(dir.str(), Split::Train, Cifar100Label::Coarse);
  CHECK(fine.numClasses() == 100);
  CHECK(coarse.numClasses() == 20);
  CHECK(fine.size() == 3);
  CHECK(fine.label(2) == 92);
  CHECK(coarse.label(2) == 19);
  CHECK(fine.pixels(1)[5] == image(0, 1)[5]);

  bytes[0] = 20;  // coarse label of record 0 out of range even when the fine label is used
  writeBytes(dir.file("train.bin"), bytes);
  CHECK_THROWS_WITH_AS(
      Cifar100(dir.str(), Split::Train),
      doctest::Contains("record 0 (byte offset 0): label 20 is out of range for 20 classes"),
      Error);
}

TEST_CASE("Cifar10: every malformed input is an Error naming the file and offset") {
  TempDir dir;
  writeCifar10(dir);
  const std::string file = dir.file("data_batch_3.bin");
  std::vector<uint8_t> good = cifarRecord({1}, image(0, 0));
  auto fails = [&](const std::string& needle) {
    try {
      Cifar10 ds(dir.str(), Split::Train);
      FAIL("no error; expected '" << needle << "'");
    } catch (const Error& e) {
      std::string msg = e.what();
      CHECK_MESSAGE(msg.find(needle) != std::string::npos, msg);
    }
  };
  SUBCASE("missing file") {
    std::filesystem::remove(file);
    fails("Cifar10: missing file '" + file + "'");
  }
  SUBCASE("empty file") {
    writeBytes(file, {});
    fails("'" + file + "': empty CIFAR batch file");
  }
  SUBCASE("truncated record") {
    std::vector<uint8_t> b = good;
    b.insert(b.end(), good.begin(), good.begin() + 100);
    writeBytes(file, b);
    fails("'" + file +
          "': truncated CIFAR batch: 3173 bytes is not a whole number of 3073-byte "
          "records; the record at offset 3073 has only 100 bytes");
  }
  SUBCASE("truncated gzip") {
    std::vector<uint8_t> gz = gzipBytes(good);
    gz.resize(gz.size() / 2);
    writeBytes(file, gz);
    fails("'" + file + "': truncated gzip stream");
  }
  SUBCASE("label out of range") {
    std::vector<uint8_t> b = good;
    std::vector<uint8_t> bad = cifarRecord({10}, image(0, 0));
    b.insert(b.end(), bad.begin(), bad.end());
    writeBytes(file, b);
    fails("'" + file + "': record 1 (byte offset 3073): label 10 is out of range for 10 classes");
  }
}
