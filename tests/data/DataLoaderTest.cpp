#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/Error.h"
#include "core/Rng.h"
#include "core/io/Checkpoint.h"
#include "core/io/StateDict.h"
#include "data/DataLoader.h"
#include "data/SyntheticDataset.h"
#include "data/Transforms.h"
#include "tests/data/DataTestUtil.h"

using namespace mantissa;
using namespace mantissa::data;

namespace {
/// Sample i is a [1, 2, 2] image filled with i, label i % 3. Counts calls to get(); can be told
/// to fail at one index with a message naming a (fake) file.
class CountingDataset : public Dataset {
 public:
  explicit CountingDataset(int64_t n, int64_t failAt = -1) : n_(n), failAt_(failAt) {}
  int64_t size() const override { return n_; }
  Example get(int64_t i) const override {
    checkIndex(i);
    ++calls;
    MANTISSA_CHECK(i != failAt_, "cannot decode '/data/img_", i, ".png'");
    return {Tensor::full({1, 2, 2}, static_cast<double>(i)), i % 3};
  }
  Shape exampleShape() const override { return {1, 2, 2}; }
  int64_t numClasses() const override { return 3; }
  std::string name() const override { return "Counting"; }
  mutable std::atomic<int64_t> calls{0};

 private:
  int64_t n_, failAt_;
};

/// Crop + flip + a noise term: every part of the sample depends on the generator.
Transform augmentation() {
  Transform noise = [](const Tensor& x, Rng& rng) {
    Tensor y = x.clone();
    for (int64_t k = 0; k < y.numel(); ++k) y.data<float>()[k] += rng.uniform();
    return y;
  };
  return Compose({RandomCrop(8, 2), RandomHorizontalFlip(), noise});
}

std::vector<Batch> collect(EpochRange range) {
  std::vector<Batch> out;
  for (const Batch& b : range) out.push_back(b);
  return out;
}

bool bitwiseEqual(const Batch& a, const Batch& b) {
  return a.data.shape() == b.data.shape() && a.data.toVector() == b.data.toVector() &&
         a.target.toVector<int64_t>() == b.target.toVector<int64_t>() && a.indices == b.indices &&
         a.epoch == b.epoch && a.index == b.index;
}
}  // namespace

TEST_CASE("DataLoader: batch shapes, contents and drop-last") {
  CountingDataset ds(10);
  for (int64_t prefetch : {0, 2}) {
    CAPTURE(prefetch);
    DataLoader loader(ds, {.batchSize = 4, .prefetch = prefetch});
    CHECK(loader.numBatches() == 3);
    std::vector<Batch> batches = collect(loader.epoch(0));
    REQUIRE(batches.size() == 3);
    CHECK(batches[0].data.shape() == Shape{4, 1, 2, 2});
    CHECK(batches[2].data.shape() == Shape{2, 1, 2, 2});
    CHECK(batches[0].data.dtype() == DType::F32);
    CHECK(batches[1].target.dtype() == DType::I64);
    // No shuffle: batch b holds samples 4b, 4b+1, ...; each image is filled with its index.
    for (const Batch& b : batches) {
      for (size_t r = 0; r < b.indices.size(); ++r) {
        int64_t i = b.index * 4 + static_cast<int64_t>(r);
        CHECK(b.indices[r] == i);
        CHECK(b.target.toVector<int64_t>()[r] == i % 3);
        for (int64_t k = 0; k < 4; ++k)
          CHECK(b.data.at({static_cast<int64_t>(r), 0, k / 2, k % 2}) == i);
      }
    }
    DataLoader dropping(ds, {.batchSize = 4, .dropLast = true, .prefetch = prefetch});
    CHECK(dropping.numBatches() == 2);
    CHECK(collect(dropping.epoch(0)).size() == 2);
  }
  DataLoader big(ds, {.batchSize = 32, .dropLast = true});
  CHECK(big.numBatches() == 0);
  CHECK(collect(big.epoch(0)).empty());
}

TEST_CASE("DataLoader: every sample exactly once per epoch, with and without drop-last") {
  CountingDataset ds(103);
  for (bool dropLast : {false, true}) {
    for (int64_t prefetch : {0, 3}) {
      CAPTURE(dropLast);
      CAPTURE(prefetch);
      DataLoader loader(
          ds,
          {.batchSize = 8, .shuffle = true, .seed = 5, .dropLast = dropLast, .prefetch = prefetch});
      for (int64_t epoch = 0; epoch < 3; ++epoch) {
        std::vector<int64_t> seen;
        for (const Batch& b : loader.epoch(epoch)) {
          std::vector<float> data = b.data.toVector();
          for (size_t r = 0; r < b.indices.size(); ++r) {
            seen.push_back(b.indices[r]);
            CHECK(data[r * 4] == static_cast<float>(b.indices[r]));  // row r is sample indices[r]
          }
        }
        std::set<int64_t> unique(seen.begin(), seen.end());
        CHECK(unique.size() == seen.size());  // nothing twice
        CHECK(seen.size() == (dropLast ? 96u : 103u));
        if (!dropLast) CHECK(*unique.rbegin() == 102);
      }
    }
  }
}

TEST_CASE("DataLoader: shuffle order is a pure function of (seed, epoch)") {
  CountingDataset ds(50);
  DataLoader a(ds, {.batchSize = 5, .shuffle = true, .seed = 9});
  DataLoader b(ds, {.batchSize = 7, .shuffle = true, .seed = 9, .prefetch = 0});
  DataLoader c(ds, {.batchSize = 5, .shuffle = true, .seed = 10});
  CHECK(a.order(3) == b.order(3));
  CHECK(a.order(3) != a.order(4));
  CHECK(a.order(3) != c.order(3));
  // The documented algorithm: Fisher-Yates from the last position down, with
  // Rng(seed).fork(epoch).fork(0). Written out here so the order stays stable across versions.
  std::vector<int64_t> expected(50);
  for (int64_t i = 0; i < 50; ++i) expected[static_cast<size_t>(i)] = i;
  Rng rng = Rng(9).fork(3).fork(0);
  for (uint64_t i = 49; i > 0; --i) std::swap(expected[i], expected[rng.uniformInt(i + 1)]);
  CHECK(a.order(3) == expected);
  DataLoader plain(ds, {.batchSize = 5});
  std::vector<int64_t> identity(50);
  for (int64_t i = 0; i < 50; ++i) identity[static_cast<size_t>(i)] = i;
  CHECK(plain.order(7) == identity);
}

TEST_CASE("DataLoader: resuming at any batch gives the uninterrupted batches bit for bit") {
  SyntheticDataset ds({.size = 37, .numClasses = 3, .shape = {1, 8, 8}, .seed = 1});
  DataLoaderOptions opts{.batchSize = 5, .shuffle = true, .seed = 21, .transform = augmentation()};
  DataLoader full(ds, opts);
  const int64_t epoch = 2;
  std::vector<Batch> reference = collect(full.epoch(epoch));
  REQUIRE(reference.size() == 8);
  CHECK(!bitwiseEqual(reference[0],
                      collect(full.epoch(epoch + 1))[0]));  // augmentation varies by epoch

  SUBCASE("epoch(e, k) for every k, prefetching or not") {
    for (int64_t prefetch : {0, 1, 4}) {
      DataLoaderOptions o = opts;
      o.prefetch = prefetch;
      DataLoader resumed(ds, o);
      for (int64_t k = 0; k <= 8; ++k) {
        std::vector<Batch> tail = collect(resumed.epoch(epoch, k));
        REQUIRE(tail.size() == static_cast<size_t>(8 - k));
        for (size_t j = 0; j < tail.size(); ++j)
          CHECK(bitwiseEqual(tail[j], reference[static_cast<size_t>(k) + j]));
      }
    }
  }
  SUBCASE("random access batch(e, k) after other batches were consumed") {
    collect(full.epoch(0));
    CHECK(bitwiseEqual(full.batch(epoch, 6), reference[6]));
    CHECK(bitwiseEqual(full.batch(epoch, 0), reference[0]));
  }
  SUBCASE("through saved state into a new loader") {
    DataLoader first(ds, opts);
    {
      int taken = 0;
      for (const Batch& b : first.epoch(epoch)) {
        CHECK(bitwiseEqual(b, reference[static_cast<size_t>(taken)]));
        if (++taken == 3) break;  // interrupted after handing out batch 2
      }
    }
    CHECK(first.position() == LoaderPosition{epoch, 3});
    io::StateDict state;
    first.saveState(state, "data");
    CHECK(state.tensors.count("data/epoch") == 1);
    CHECK(state.tensors.at("data/batch").toVector<int64_t>() == std::vector<int64_t>{3});

    DataLoaderOptions other = opts;
    other.seed = 999;  // the saved seed wins
    DataLoader second(ds, other);
    second.loadState(state, "data");
    CHECK(second.options().seed == 21);
    LoaderPosition pos = second.position();
    std::vector<Batch> tail = collect(second.epoch(pos.epoch, pos.batch));
    REQUIRE(tail.size() == 5);
    for (size_t j = 0; j < tail.size(); ++j) CHECK(bitwiseEqual(tail[j], reference[3 + j]));
    CHECK(second.position() == LoaderPosition{epoch + 1, 0});
  }
}

TEST_CASE("DataLoader: position follows the batches handed out") {
  CountingDataset ds(9);
  DataLoader loader(ds, {.batchSize = 3});
  CHECK(loader.position() == LoaderPosition{0, 0});
  {
    EpochRange range = loader.epoch(4, 1);
    CHECK(range.size() == 2);
    CHECK(loader.position() == LoaderPosition{0, 0});  // creating a range changes nothing
    auto it = range.begin();
    CHECK(it->index == 1);
    CHECK(loader.position() == LoaderPosition{4, 2});
    ++it;
    CHECK(it->index == 2);
    CHECK(loader.position() == LoaderPosition{5, 0});  // last batch handed out
    ++it;
    CHECK(it == range.end());
  }
  CHECK_THROWS_WITH_AS(loader.epoch(0, 4), doctest::Contains("start batch 4 outside [0, 3]"),
                       Error);
  CHECK_THROWS_WITH_AS(loader.epoch(-1), doctest::Contains("epoch -1"), Error);
  CHECK_THROWS_WITH_AS(DataLoader(ds, {.batchSize = 0}), doctest::Contains("batchSize 0"), Error);
  CHECK_THROWS_WITH_AS(loader.batch(0, 3), doctest::Contains("batch 3 outside [0, 3)"), Error);
}

TEST_CASE("DataLoader: abandoning an epoch stops the prefetch thread; the queue is bounded") {
  CountingDataset ds(400);
  DataLoader loader(ds, {.batchSize = 4, .prefetch = 3});
  int64_t callsAfterStop = 0;
  {
    EpochRange range = loader.epoch(0);
    auto it = range.begin();
    CHECK(it->index == 0);
    // Whatever the timing, the worker may hold at most `prefetch` finished batches and one in
    // progress beyond the one handed out.
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    CHECK(ds.calls.load() <= (1 + 3 + 1) * 4);
    range.stop();  // joins the worker
    callsAfterStop = ds.calls.load();
    CHECK_THROWS_WITH_AS(++it, doctest::Contains("iteration after stop()"), Error);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(ds.calls.load() == callsAfterStop);  // nothing runs once the range is gone

  // Breaking out of a range-for destroys the range, which joins the thread.
  for (int round = 0; round < 20; ++round) {
    for (const Batch& b : loader.epoch(round)) {
      if (b.index == round % 3) break;
    }
  }
  int64_t settled = ds.calls.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(ds.calls.load() == settled);
}

TEST_CASE("DataLoader: loading errors reach the consumer in order, naming the sample and file") {
  CountingDataset ds(20, /*failAt=*/9);
  for (int64_t prefetch : {0, 2}) {
    CAPTURE(prefetch);
    DataLoader loader(ds, {.batchSize = 4, .prefetch = prefetch});
    std::vector<int64_t> delivered;
    try {
      for (const Batch& b : loader.epoch(1)) delivered.push_back(b.index);
      FAIL("no error");
    } catch (const Error& e) {
      std::string msg = e.what();
      CHECK_MESSAGE(
          msg.find("DataLoader: epoch 1, batch 2, sample 9 of Counting") != std::string::npos, msg);
      CHECK_MESSAGE(msg.find("cannot decode '/data/img_9.png'") != std::string::npos, msg);
    }
    CHECK(delivered == std::vector<int64_t>{0, 1});  // the batches before the bad one
  }
}

TEST_CASE("DataLoader: samples of different shapes in one batch are an Error") {
  CountingDataset ds(6);
  Transform bad = [](const Tensor& x, Rng& rng) {
    return rng.uniform() < 0.5f ? x : Tensor::zeros({1, 3, 3});
  };
  DataLoader loader(ds, {.batchSize = 6, .transform = bad});
  CHECK_THROWS_WITH_AS(collect(loader.epoch(0)),
                       doctest::Contains("differs from the batch's first sample"), Error);
}

TEST_CASE("DataLoader: state loading is strict") {
  CountingDataset ds(10);
  DataLoader loader(ds, {.batchSize = 2, .seed = 3});
  io::StateDict state;
  loader.saveState(state, "loader/");
  CHECK(state.attrs.at("loader/batch_size") == "2");
  DataLoader otherBatch(ds, {.batchSize = 5});
  CHECK_THROWS_WITH_AS(otherBatch.loadState(state, "loader"),
                       doctest::Contains("'loader/batch_size': saved 2, but this loader has 5"),
                       Error);
  DataLoader same(ds, {.batchSize = 2});
  io::StateDict missing = state;
  missing.tensors.erase("loader/epoch");
  CHECK_THROWS_WITH_AS(same.loadState(missing, "loader"), doctest::Contains("loader/epoch"), Error);
  io::StateDict outOfRange = state;
  outOfRange.tensors["loader/batch"] = Tensor::fromInts({6});
  CHECK_THROWS_WITH_AS(same.loadState(outOfRange, "loader"), doctest::Contains("start batch 6"),
                       Error);
}

TEST_CASE("DataLoader: the position survives an HDF5 checkpoint and resumes bit for bit") {
  SyntheticDataset ds({.size = 30, .numClasses = 3, .shape = {1, 8, 8}, .seed = 4});
  DataLoaderOptions opts{.batchSize = 4, .shuffle = true, .seed = 77, .transform = augmentation()};
  DataLoader reference(ds, opts);
  std::vector<Batch> expected = collect(reference.epoch(1));
  data::test::TempDir dir;
  const std::string path = dir.file("ckpt.h5");
  {
    DataLoader loader(ds, opts);
    for (const Batch& b : loader.epoch(1)) {
      if (b.index == 4) break;
    }
    CHECK(loader.position() == LoaderPosition{1, 5});
    io::saveCheckpoint(path, {{"data", &loader}}, {.app = "tests_data"});
  }
  DataLoaderOptions fresh = opts;
  fresh.seed = 0;
  DataLoader resumed(ds, fresh);
  io::loadCheckpoint(path, {{"data", &resumed}});
  CHECK(resumed.position() == LoaderPosition{1, 5});
  std::vector<Batch> tail = collect(resumed.epoch(1, resumed.position().batch));
  REQUIRE(tail.size() == expected.size() - 5);
  for (size_t j = 0; j < tail.size(); ++j) CHECK(bitwiseEqual(tail[j], expected[5 + j]));
}
