#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <vector>

#include "core/Error.h"
#include "data/IdxDataset.h"
#include "tests/data/DataTestUtil.h"

using namespace mantissa;
using namespace mantissa::data;
using mantissa::data::test::gzipBytes;
using mantissa::data::test::idxBytes;
using mantissa::data::test::TempDir;
using mantissa::data::test::writeBytes;

namespace {
// Five 3x4 images whose pixel k of image i is (37 * i + 11 * k) mod 256, labels 3 1 4 1 5.
constexpr uint32_t kCount = 5, kRows = 3, kCols = 4;
const std::vector<uint8_t> kLabels = {3, 1, 4, 1, 5};

uint8_t pixelValue(uint32_t i, uint32_t k) { return static_cast<uint8_t>((37 * i + 11 * k) % 256); }

std::vector<uint8_t> imagePixels() {
  std::vector<uint8_t> v;
  for (uint32_t i = 0; i < kCount; ++i) {
    for (uint32_t k = 0; k < kRows * kCols; ++k) v.push_back(pixelValue(i, k));
  }
  return v;
}

std::vector<uint8_t> imageFile() { return idxBytes({kCount, kRows, kCols}, imagePixels()); }
std::vector<uint8_t> labelFile() { return idxBytes({kCount}, kLabels); }
}  // namespace

TEST_CASE("IdxDataset: known pixels and labels from plain and gzip files") {
  TempDir dir;
  std::string images = dir.file("images"), labels = dir.file("labels");
  SUBCASE("plain") {
    writeBytes(images, imageFile());
    writeBytes(labels, labelFile());
  }
  SUBCASE("gzip (detected by content, not by name)") {
    writeBytes(images, gzipBytes(imageFile()));
    writeBytes(labels, gzipBytes(labelFile()));
  }
  SUBCASE("concatenated gzip members") {
    std::vector<uint8_t> all = imageFile();
    std::vector<uint8_t> a(all.begin(), all.begin() + 10), b(all.begin() + 10, all.end());
    std::vector<uint8_t> gz = gzipBytes(a), gzb = gzipBytes(b);
    gz.insert(gz.end(), gzb.begin(), gzb.end());
    writeBytes(images, gz);
    writeBytes(labels, labelFile());
  }
  IdxDataset ds(images, labels);
  CHECK(ds.size() == kCount);
  CHECK(ds.numClasses() == 10);
  CHECK(ds.exampleShape() == Shape{1, kRows, kCols});
  for (uint32_t i = 0; i < kCount; ++i) {
    Example ex = ds.get(i);
    CHECK(ex.label == kLabels[i]);
    CHECK(ex.image.shape() == Shape{1, kRows, kCols});
    std::vector<float> px = ex.image.toVector();
    for (uint32_t k = 0; k < kRows * kCols; ++k) {
      CHECK(px[k] == static_cast<float>(pixelValue(i, k)) / 255.0f);
      CHECK(ds.pixels(i)[k] == pixelValue(i, k));
    }
  }
  CHECK_THROWS_WITH_AS(ds.get(5), doctest::Contains("index 5 out of range [0, 5)"), Error);
  CHECK_THROWS_AS(ds.get(-1), Error);
}

TEST_CASE("IdxDataset: every malformed input is an Error naming the file") {
  TempDir dir;
  std::string images = dir.file("img.idx"), labels = dir.file("lbl.idx");
  writeBytes(images, imageFile());
  writeBytes(labels, labelFile());
  auto fails = [&](const std::string& needle1, const std::string& needle2) {
    try {
      IdxDataset ds(images, labels);
      FAIL("no error; expected one containing '" << needle1 << "'");
    } catch (const Error& e) {
      std::string msg = e.what();
      CHECK_MESSAGE(msg.find(needle1) != std::string::npos, msg);
      CHECK_MESSAGE(msg.find(needle2) != std::string::npos, msg);
    }
  };

  SUBCASE("missing file") {
    std::filesystem::remove(images);
    fails("missing file", images);
  }
  SUBCASE("empty file") {
    writeBytes(images, {});
    fails("shorter than the 4-byte magic", images);
  }
  SUBCASE("wrong magic number") {
    std::vector<uint8_t> b = imageFile();
    b[0] = 0x1F;
    b[1] = 0x00;
    writeBytes(images, b);
    fails("bad IDX magic number 0x1F000803 at offset 0", images);
  }
  SUBCASE("unsupported element type") {
    std::vector<uint8_t> b = imageFile();
    b[2] = 0x0D;  // float
    writeBytes(images, b);
    fails("element type 0xd at offset 2", images);
  }
  SUBCASE("rank 0") {
    writeBytes(images, {0, 0, 8, 0});
    fails("IDX rank 0 at offset 3", images);
  }
  SUBCASE("truncated header") {
    std::vector<uint8_t> b = imageFile();
    b.resize(9);
    writeBytes(images, b);
    fails("truncated IDX header: rank 3 needs 16 bytes, the file has 9", images);
  }
  SUBCASE("truncated data (plain)") {
    std::vector<uint8_t> b = imageFile();
    b.resize(b.size() - 7);
    writeBytes(images, b);
    fails("declares 5x3x4 = 60 bytes from offset 16, but only 53 are present", images);
  }
  SUBCASE("truncated data inside a complete gzip stream") {
    std::vector<uint8_t> b = imageFile();
    b.resize(b.size() - 7);
    writeBytes(images, gzipBytes(b));
    fails("(after gunzip)': truncated IDX data", images);
  }
  SUBCASE("truncated gzip stream") {
    std::vector<uint8_t> gz = gzipBytes(imageFile());
    gz.resize(gz.size() - 12);
    writeBytes(images, gz);
    fails("truncated gzip stream", images);
  }
  SUBCASE("corrupt gzip payload (CRC or deflate error)") {
    std::vector<uint8_t> gz = gzipBytes(imageFile());
    gz[gz.size() - 6] ^= 0xFF;  // inside the CRC-32 trailer
    writeBytes(images, gz);
    fails("corrupt gzip data", images);
  }
  SUBCASE("trailing bytes") {
    std::vector<uint8_t> b = imageFile();
    b.push_back(0);
    b.push_back(0);
    writeBytes(images, b);
    fails("2 unexpected trailing bytes after the IDX data, starting at offset 76", images);
  }
  SUBCASE("huge declared sizes do not overflow") {
    writeBytes(images, idxBytes({0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}, {1, 2, 3}));
    fails("truncated IDX data", images);
  }
  SUBCASE("image/label count mismatch") {
    writeBytes(labels, idxBytes({4}, {1, 2, 3, 4}));
    fails("holds 5 images but", labels + "' holds 4 labels");
  }
  SUBCASE("label out of range") {
    writeBytes(labels, idxBytes({5}, {1, 2, 10, 3, 4}));
    fails("label 10 of entry 2 (byte offset 10) is out of range for 10 classes", labels);
  }
  SUBCASE("files swapped (wrong rank)") {
    std::swap(images, labels);
    fails("expected a rank-3 IDX image file", images);
  }
}

TEST_CASE("Mnist/FashionMnist: finds plain or .gz files by their standard names") {
  TempDir dir;
  writeBytes(dir.file("train-images-idx3-ubyte"), imageFile());
  writeBytes(dir.file("train-labels-idx1-ubyte.gz"), gzipBytes(labelFile()));
  Mnist train(dir.str(), Split::Train);
  CHECK(train.size() == kCount);
  CHECK(train.label(2) == 4);
  CHECK(train.name() == "Mnist(train, 5)");
  // No test files: the error names both candidates of the missing file.
  try {
    FashionMnist test(dir.str(), Split::Test);
    FAIL("no error");
  } catch (const Error& e) {
    std::string msg = e.what();
    CHECK_MESSAGE(
        msg.find("FashionMnist: missing file '" + dir.str() + "/t10k-") != std::string::npos, msg);
    CHECK_MESSAGE(msg.find("-ubyte.gz' exists)") != std::string::npos, msg);
  }
}

TEST_CASE("FashionMnist: the installed dataset has the published counts and labels") {
  if (!std::filesystem::exists(std::string(kFashionMnistDir) + "/train-labels-idx1-ubyte.gz")) {
    MESSAGE("Fashion-MNIST not installed in ", kFashionMnistDir, "; skipped");
    return;
  }
  FashionMnist train(Split::Train);
  FashionMnist test(kFashionMnistDir, Split::Test);
  CHECK(train.size() == 60000);
  CHECK(test.size() == 10000);
  CHECK(train.exampleShape() == Shape{1, 28, 28});
  // First training labels as published with the dataset (Xiao et al. 2017).
  const std::vector<int64_t> first = {9, 0, 0, 3, 0, 2, 7, 2, 5, 5};
  for (size_t i = 0; i < first.size(); ++i) CHECK(train.label(static_cast<int64_t>(i)) == first[i]);
  // The dataset is balanced: 6000 training and 1000 test images per class.
  std::vector<int64_t> trainCount(10), testCount(10);
  for (int64_t i = 0; i < train.size(); ++i) ++trainCount[static_cast<size_t>(train.label(i))];
  for (int64_t i = 0; i < test.size(); ++i) ++testCount[static_cast<size_t>(test.label(i))];
  CHECK(trainCount == std::vector<int64_t>(10, 6000));
  CHECK(testCount == std::vector<int64_t>(10, 1000));
  // Pixels in [0, 1], with both ends reached in the first images (black background, white items).
  float lo = 1, hi = 0;
  for (int64_t i = 0; i < 10; ++i) {
    std::vector<float> px = train.get(i).image.toVector();
    lo = std::min(lo, *std::min_element(px.begin(), px.end()));
    hi = std::max(hi, *std::max_element(px.begin(), px.end()));
  }
  CHECK(lo == 0.f);
  CHECK(hi == 1.f);
  CHECK(FashionMnist::classNames()[9] == "Ankle boot");
}
