#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/Rng.h"
#include "core/Tensor.h"
#include "core/io/StateDict.h"
#include "data/Dataset.h"
#include "data/Transforms.h"

namespace mantissa::data {

/// Options of DataLoader.
struct DataLoaderOptions {
  int64_t batchSize = 1;
  /// Serve each epoch in a random order that is a pure function of (seed, epoch).
  bool shuffle = false;
  /// Drives the shuffle and the transform's randomness.
  uint64_t seed = 0;
  /// Skip the last, smaller batch of an epoch.
  bool dropLast = false;
  /// Batches prepared ahead on the loader's own thread; 0 loads on the calling thread.
  int64_t prefetch = 2;
  /// Applied to every sample (augmentation, normalisation); empty for none.
  Transform transform = {};
};

/// One batch: images stacked along a new leading axis and their labels.
struct Batch {
  Tensor data;    // F32 [B, C, H, W] (B = batch size, smaller for a last partial batch)
  Tensor target;  // I64 [B] class labels
  std::vector<int64_t> indices;  // dataset index of each row
  int64_t epoch = 0;
  int64_t index = 0;  // position of the batch within its epoch
};

/// Where a loader stands: the next batch to hand out is `batch` of `epoch`.
struct LoaderPosition {
  int64_t epoch = 0;
  int64_t batch = 0;
  bool operator==(const LoaderPosition&) const = default;
};

class DataLoader;

/// One pass over the batches [startBatch, numBatches) of an epoch, for a range-for loop.
/// With `prefetch > 0` a background thread builds batches ahead into a bounded queue; leaving
/// the loop early (break, exception) stops and joins that thread when the range is destroyed.
/// An exception thrown while loading (a file that cannot be decoded, a transform error) is
/// re-thrown to the consumer, in order, as a mantissa::Error naming the epoch, the batch, the
/// dataset index and the original message (which names the file).
/// The range refers to its DataLoader, which must outlive it.
class EpochRange {
 public:
  /// Single-pass input iterator; `*it` stays valid until the next increment.
  class Iterator {
   public:
    using value_type = Batch;
    using difference_type = std::ptrdiff_t;
    using iterator_concept = std::input_iterator_tag;

    const Batch& operator*() const;
    const Batch* operator->() const { return &**this; }
    Iterator& operator++();
    void operator++(int) { ++*this; }
    bool operator==(std::default_sentinel_t) const;

   private:
    friend class EpochRange;
    explicit Iterator(EpochRange* range) : range_(range) {}
    EpochRange* range_;
  };

  EpochRange(EpochRange&&) noexcept;
  EpochRange& operator=(EpochRange&&) noexcept;
  ~EpochRange();

  /// Fetches the first batch (blocking) on the first call.
  Iterator begin();
  std::default_sentinel_t end() const { return {}; }
  /// Number of batches this range yields in total.
  int64_t size() const;
  /// Stops and joins the background thread (the destructor does this too). Idempotent.
  void stop();

 private:
  friend class DataLoader;
  EpochRange(DataLoader& loader, int64_t epoch, int64_t startBatch);
  void advance();

  struct State;
  std::unique_ptr<State> state_;
};

/// Turns a Dataset into batches: `for (const Batch& b : loader.epoch(e)) ...`.
///
/// Determinism: the order of epoch e is the identity, or with `shuffle` a Fisher-Yates shuffle
/// driven by Rng(seed).fork(e).fork(0); the transform of the sample with dataset index i in
/// epoch e receives Rng(seed).fork(e).fork(1).fork(i). Both are pure functions of (seed, epoch,
/// index), independent of threads and of how many batches were consumed before, so
/// `epoch(e, k)` yields exactly the batches k, k+1, ... of an uninterrupted epoch e, bit for bit.
///
/// The loader refers to `dataset`, which must outlive it. It tracks the position of the last
/// batch handed out (saved and restored through io::Stateful), so a resumed run continues with
/// `loader.epoch(loader.position().epoch, loader.position().batch)`.
class DataLoader : public io::Stateful {
 public:
  DataLoader(const Dataset& dataset, DataLoaderOptions options = {});
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  /// Batches in one epoch: ceil(size / batchSize), or floor with dropLast.
  int64_t numBatches() const;
  const Dataset& dataset() const { return dataset_; }
  const DataLoaderOptions& options() const { return options_; }

  /// Batches [startBatch, numBatches()) of `epoch`. Starting a range does not change the
  /// position; each batch handed out moves it just past that batch.
  EpochRange epoch(int64_t epoch, int64_t startBatch = 0);
  /// Dataset indices of `epoch` in the order they are served.
  std::vector<int64_t> order(int64_t epoch) const;
  /// Batch `index` of `epoch`, built on the calling thread (random access, e.g. for tests).
  Batch batch(int64_t epoch, int64_t index) const;

  /// Next batch to hand out. After the last batch of epoch e it is {e + 1, 0}.
  LoaderPosition position() const { return position_; }
  void setPosition(LoaderPosition position);

  /// Saves epoch, batch and seed, plus batch size, dataset size, shuffle and drop-last so that
  /// loading into a differently configured loader (which would see other batches) is an error.
  void saveState(io::StateDict& out, const std::string& prefix) const override;
  /// Restores position and seed; throws naming the key on a missing key or a configuration
  /// mismatch.
  void loadState(const io::StateDict& in, const std::string& prefix) override;

 private:
  friend class EpochRange;
  /// Builds batch `index` from `order`; returns nothing when `cancel` becomes true midway.
  std::optional<Batch> makeBatch(int64_t epoch, int64_t index, const std::vector<int64_t>& order,
                                 const Rng& augment, const std::atomic<bool>* cancel) const;
  /// The generator of epoch `epoch` for stream `stream` (0 shuffle, 1 augmentation).
  Rng epochRng(int64_t epoch, uint64_t stream) const;
  void checkEpoch(int64_t epoch, int64_t startBatch) const;

  const Dataset& dataset_;
  DataLoaderOptions options_;
  LoaderPosition position_;
};

}  // namespace mantissa::data
