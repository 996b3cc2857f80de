#include "data/DataLoader.h"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

#include "core/Error.h"

namespace mantissa::data {

namespace {
constexpr uint64_t kShuffleStream = 0, kAugmentStream = 1;

std::string key(const std::string& prefix, const char* name) {
  if (prefix.empty() || prefix.back() == '/') return prefix + name;
  return prefix + "/" + name;
}

int64_t scalarI64(const io::StateDict& in, const std::string& k) {
  const Tensor& t = in.tensor(k);
  MANTISSA_CHECK(t.numel() == 1 && t.dtype() == DType::I64, "DataLoader state '", k,
                 "': expected one i64 value, got ", dtypeName(t.dtype()), " ", toString(t.shape()));
  return t.contiguous().data<int64_t>()[0];
}
}  // namespace

// ---- DataLoader ---------------------------------------------------------------------------------

DataLoader::DataLoader(const Dataset& dataset, DataLoaderOptions options)
    : dataset_(dataset), options_(std::move(options)) {
  MANTISSA_CHECK(options_.batchSize >= 1, "DataLoader: batchSize ", options_.batchSize,
                 " must be >= 1");
  MANTISSA_CHECK(options_.prefetch >= 0, "DataLoader: prefetch ", options_.prefetch,
                 " must be >= 0");
}

int64_t DataLoader::numBatches() const {
  const int64_t n = dataset_.size(), b = options_.batchSize;
  return options_.dropLast ? n / b : (n + b - 1) / b;
}

Rng DataLoader::epochRng(int64_t epoch, uint64_t stream) const {
  return Rng(options_.seed).fork(static_cast<uint64_t>(epoch)).fork(stream);
}

std::vector<int64_t> DataLoader::order(int64_t epoch) const {
  MANTISSA_CHECK(epoch >= 0, "DataLoader: epoch ", epoch, " < 0");
  std::vector<int64_t> order(static_cast<size_t>(dataset_.size()));
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  if (options_.shuffle && order.size() > 1) {
    // Fisher-Yates (Knuth, TAOCP vol. 2, Algorithm P): position i takes a uniform pick of
    // [0, i]. The draws are part of the resume contract; changing them changes every order.
    Rng rng = epochRng(epoch, kShuffleStream);
    for (size_t i = order.size() - 1; i > 0; --i) {
      std::swap(order[i], order[rng.uniformInt(i + 1)]);
    }
  }
  return order;
}

void DataLoader::checkEpoch(int64_t epoch, int64_t startBatch) const {
  MANTISSA_CHECK(epoch >= 0, "DataLoader: epoch ", epoch, " < 0");
  MANTISSA_CHECK(startBatch >= 0 && startBatch <= numBatches(), "DataLoader: start batch ",
                 startBatch, " outside [0, ", numBatches(), "] for ", dataset_.name(),
                 " with batch size ", options_.batchSize);
}

Batch DataLoader::batch(int64_t epoch, int64_t index) const {
  MANTISSA_CHECK(index >= 0 && index < numBatches(), "DataLoader: batch ", index, " outside [0, ",
                 numBatches(), ")");
  checkEpoch(epoch, index);
  return *makeBatch(epoch, index, order(epoch), epochRng(epoch, kAugmentStream), nullptr);
}

std::optional<Batch> DataLoader::makeBatch(int64_t epoch, int64_t index,
                                           const std::vector<int64_t>& order, const Rng& augment,
                                           const std::atomic<bool>* cancel) const {
  const int64_t begin = index * options_.batchSize;
  const int64_t end = std::min<int64_t>(begin + options_.batchSize, dataset_.size());
  const int64_t n = end - begin;
  Batch out;
  out.epoch = epoch;
  out.index = index;
  out.indices.assign(order.begin() + begin, order.begin() + end);
  out.target = Tensor::empty({n}, DType::I64);
  int64_t* targets = out.target.data<int64_t>();
  float* dst = nullptr;
  Shape sampleShape;
  int64_t sampleNumel = 0;
  for (int64_t k = 0; k < n; ++k) {
    if (cancel && cancel->load(std::memory_order_relaxed)) return std::nullopt;
    const int64_t sample = out.indices[static_cast<size_t>(k)];
    try {
      Example ex = dataset_.get(sample);
      Tensor image = std::move(ex.image);
      if (options_.transform) {
        Rng rng = augment.fork(static_cast<uint64_t>(sample));
        image = options_.transform(image, rng);
      }
      MANTISSA_CHECK(image.defined() && image.dtype() == DType::F32,
                     "expected an f32 image from the dataset and transform");
      MANTISSA_CHECK(ex.label >= 0 && ex.label < dataset_.numClasses(), "label ", ex.label,
                     " outside [0, ", dataset_.numClasses(), ")");
      if (k == 0) {
        sampleShape = image.shape();
        sampleNumel = image.numel();
        Shape batchShape{n};
        batchShape.insert(batchShape.end(), sampleShape.begin(), sampleShape.end());
        out.data = Tensor::empty(batchShape);
        dst = out.data.data<float>();
      } else {
        MANTISSA_CHECK(image.shape() == sampleShape, "shape ", toString(image.shape()),
                       " differs from the batch's first sample ", toString(sampleShape));
      }
      Tensor c = image.contiguous();
      std::memcpy(dst + k * sampleNumel, c.data<float>(),
                  static_cast<size_t>(sampleNumel) * sizeof(float));
      targets[k] = ex.label;
    } catch (const std::exception& e) {
      // Name where in the stream the failure happened; the inner message names the file.
      throw Error(mantissa::detail::concat("DataLoader: epoch ", epoch, ", batch ", index,
                                           ", sample ", sample, " of ", dataset_.name(), ": ",
                                           e.what()));
    }
  }
  return out;
}

EpochRange DataLoader::epoch(int64_t epoch, int64_t startBatch) {
  checkEpoch(epoch, startBatch);
  return EpochRange(*this, epoch, startBatch);
}

void DataLoader::setPosition(LoaderPosition position) {
  checkEpoch(position.epoch, position.batch);
  position_ = position;
}

void DataLoader::saveState(io::StateDict& out, const std::string& prefix) const {
  out.tensors[key(prefix, "epoch")] = Tensor::fromInts({position_.epoch});
  out.tensors[key(prefix, "batch")] = Tensor::fromInts({position_.batch});
  // The seed is a uint64; it travels bit-for-bit through the int64 tensor.
  out.tensors[key(prefix, "seed")] = Tensor::fromInts({static_cast<int64_t>(options_.seed)});
  out.attrs[key(prefix, "batch_size")] = std::to_string(options_.batchSize);
  out.attrs[key(prefix, "dataset_size")] = std::to_string(dataset_.size());
  out.attrs[key(prefix, "shuffle")] = options_.shuffle ? "true" : "false";
  out.attrs[key(prefix, "drop_last")] = options_.dropLast ? "true" : "false";
}

void DataLoader::loadState(const io::StateDict& in, const std::string& prefix) {
  // A different batch size, dataset or order would make the saved position meaningless.
  auto expect = [&](const char* name, const std::string& mine) {
    const std::string k = key(prefix, name);
    const std::string& saved = in.attr(k);
    MANTISSA_CHECK(saved == mine, "DataLoader state '", k, "': saved ", saved,
                   ", but this loader has ", mine);
  };
  expect("batch_size", std::to_string(options_.batchSize));
  expect("dataset_size", std::to_string(dataset_.size()));
  expect("shuffle", options_.shuffle ? "true" : "false");
  expect("drop_last", options_.dropLast ? "true" : "false");
  LoaderPosition pos{scalarI64(in, key(prefix, "epoch")), scalarI64(in, key(prefix, "batch"))};
  const uint64_t seed = static_cast<uint64_t>(scalarI64(in, key(prefix, "seed")));
  setPosition(pos);
  options_.seed = seed;
}

// ---- EpochRange ---------------------------------------------------------------------------------

struct EpochRange::State {
  DataLoader* loader = nullptr;
  int64_t epoch = 0;
  int64_t start = 0, end = 0;  // batches [start, end) of the epoch
  int64_t next = 0;            // next batch the consumer receives
  std::vector<int64_t> order;
  Rng augment;
  std::optional<Batch> current;
  bool started = false, finished = false;

  // Producer side (prefetch > 0). `ready` holds finished batches in order; the worker stops at
  // the first error and leaves it in `error`, after the batches that preceded it.
  std::thread worker;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Batch> ready;
  std::exception_ptr error;
  bool stopping = false;
  std::atomic<bool> cancel{false};

  void produce(int64_t first) {
    const size_t capacity = static_cast<size_t>(loader->options_.prefetch);
    for (int64_t b = first; b < end; ++b) {
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return stopping || ready.size() < capacity; });
        if (stopping) return;
      }
      std::optional<Batch> batch;
      try {
        batch = loader->makeBatch(epoch, b, order, augment, &cancel);
      } catch (...) {
        std::lock_guard lock(mu);
        error = std::current_exception();
        cv.notify_all();
        return;
      }
      if (!batch) return;  // cancelled midway
      {
        std::lock_guard lock(mu);
        ready.push_back(std::move(*batch));
      }
      cv.notify_all();
    }
  }
};

EpochRange::EpochRange(DataLoader& loader, int64_t epoch, int64_t startBatch)
    : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.loader = &loader;
  s.epoch = epoch;
  s.start = s.next = startBatch;
  s.end = loader.numBatches();
  s.order = loader.order(epoch);
  s.augment = loader.epochRng(epoch, kAugmentStream);
  if (loader.options_.prefetch > 0 && s.next < s.end) {
    s.worker = std::thread([&s, startBatch] { s.produce(startBatch); });
  }
}

EpochRange::EpochRange(EpochRange&&) noexcept = default;

EpochRange& EpochRange::operator=(EpochRange&& other) noexcept {
  if (this != &other) {
    stop();
    state_ = std::move(other.state_);
  }
  return *this;
}

EpochRange::~EpochRange() { stop(); }

void EpochRange::stop() {
  if (!state_) return;
  {
    std::lock_guard lock(state_->mu);
    state_->stopping = true;
  }
  state_->cancel.store(true, std::memory_order_relaxed);
  state_->cv.notify_all();
  if (state_->worker.joinable()) state_->worker.join();
}

int64_t EpochRange::size() const {
  MANTISSA_CHECK(state_ != nullptr, "EpochRange: use after move");
  return state_->end - state_->start;
}

EpochRange::Iterator EpochRange::begin() {
  MANTISSA_CHECK(state_ != nullptr, "EpochRange: use after move");
  if (!state_->started) {
    state_->started = true;
    advance();
  }
  return Iterator(this);
}

void EpochRange::advance() {
  State& s = *state_;
  s.current.reset();
  if (s.next >= s.end) {
    s.finished = true;
    s.loader->position_ = {s.epoch + 1, 0};
    stop();
    return;
  }
  MANTISSA_CHECK(!s.stopping, "EpochRange: iteration after stop()");
  if (s.loader->options_.prefetch == 0) {
    try {
      s.current = s.loader->makeBatch(s.epoch, s.next, s.order, s.augment, nullptr);
    } catch (...) {
      s.finished = true;
      throw;
    }
  } else {
    std::unique_lock lock(s.mu);
    s.cv.wait(lock, [&] { return !s.ready.empty() || s.error; });
    if (s.ready.empty()) {
      s.finished = true;
      std::exception_ptr error = s.error;
      lock.unlock();
      std::rethrow_exception(error);
    }
    s.current = std::move(s.ready.front());
    s.ready.pop_front();
    lock.unlock();
    s.cv.notify_all();
  }
  ++s.next;
  s.loader->position_ =
      s.next == s.end ? LoaderPosition{s.epoch + 1, 0} : LoaderPosition{s.epoch, s.next};
}

const Batch& EpochRange::Iterator::operator*() const {
  MANTISSA_CHECK(range_->state_ && range_->state_->current, "EpochRange: dereferencing the end");
  return *range_->state_->current;
}

EpochRange::Iterator& EpochRange::Iterator::operator++() {
  MANTISSA_CHECK(range_->state_ && !range_->state_->finished,
                 "EpochRange: incrementing past the end");
  range_->advance();
  return *this;
}

bool EpochRange::Iterator::operator==(std::default_sentinel_t) const {
  return !range_->state_ || range_->state_->finished;
}

}  // namespace mantissa::data
