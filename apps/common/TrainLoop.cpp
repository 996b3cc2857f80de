#include "apps/common/TrainLoop.h"

#include <chrono>
#include <cmath>

#include "core/autograd/Autograd.h"
#include "core/ops/Loss.h"
#include "core/ops/Reduce.h"

namespace mantissa::train {

namespace {

int64_t countCorrect(const Tensor& logits, const Tensor& target) {
  Tensor pred = argmax(logits.detach(), 1);
  const int64_t* p = pred.data<int64_t>();
  Tensor t = target.contiguous();
  const int64_t* y = t.data<int64_t>();
  int64_t correct = 0;
  for (int64_t i = 0; i < pred.numel(); ++i) correct += p[i] == y[i];
  return correct;
}

using Clock = std::chrono::steady_clock;

}  // namespace

EpochResult trainClassifierEpoch(nn::Module& model, optim::Optimizer& optimizer,
                                 data::DataLoader& loader, const TrainEpochOptions& opts,
                                 Progress* progress) {
  model.train();
  EpochResult r;
  int64_t total = loader.numBatches();
  if (opts.limitBatches > 0) total = std::min(total, opts.limitBatches);
  double lossSum = 0;
  int64_t correct = 0, timedImages = 0;
  auto start = Clock::now(), timedStart = start;
  for (const data::Batch& batch : loader.epoch(opts.epoch, opts.startBatch)) {
    if (batch.index >= total) break;
    Tensor logits = model.forward(batch.data);
    Tensor loss = crossEntropy(logits, batch.target);
    double l = loss.item<double>();
    if (!std::isfinite(l)) {
      throw NonFiniteLoss(detail::concat("non-finite training loss (", l, ") at epoch ",
                                         opts.epoch + 1, ", batch ", batch.index,
                                         ": stopping before the optimizer step"));
    }
    optimizer.zeroGrad();
    loss.backward();
    optimizer.step();
    ++r.batches;
    r.images += batch.target.numel();
    lossSum += l;
    correct += countCorrect(logits, batch.target);
    if (r.batches == opts.warmupBatches) timedStart = Clock::now();
    if (r.batches > opts.warmupBatches) timedImages += batch.target.numel();
    if (opts.afterStep) opts.afterStep(batch.index, l);
    double timed = std::chrono::duration<double>(Clock::now() - timedStart).count();
    r.imagesPerSec = timedImages > 0 && timed > 0 ? timedImages / timed
                     : r.images / std::chrono::duration<double>(Clock::now() - start).count();
    if (progress) {
      progress->update({.epoch = opts.epoch, .numEpochs = opts.numEpochs,
                        .batch = batch.index + 1, .numBatches = total, .loss = lossSum / r.batches,
                        .accuracy = static_cast<double>(correct) / r.images,
                        .imagesPerSec = r.imagesPerSec});
    }
    if (opts.stop && opts.stop->load()) {
      r.stopped = batch.index + 1 < total;
      break;
    }
  }
  if (progress) progress->finish();
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  r.loss = r.batches ? lossSum / r.batches : 0;
  r.accuracy = r.images ? static_cast<double>(correct) / r.images : 0;
  return r;
}

EpochResult evaluateClassifier(nn::Module& model, data::DataLoader& loader, int64_t limitBatches) {
  model.eval();
  autograd::NoGradGuard noGrad;
  EpochResult r;
  double lossSum = 0;
  int64_t correct = 0;
  auto start = Clock::now();
  for (const data::Batch& batch : loader.epoch(0)) {
    if (limitBatches > 0 && batch.index >= limitBatches) break;
    Tensor logits = model.forward(batch.data);
    lossSum += crossEntropy(logits, batch.target, {.reduction = Reduction::Sum}).item<double>();
    correct += countCorrect(logits, batch.target);
    r.images += batch.target.numel();
    ++r.batches;
  }
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  r.loss = r.images ? lossSum / r.images : 0;
  r.accuracy = r.images ? static_cast<double>(correct) / r.images : 0;
  r.imagesPerSec = r.seconds > 0 ? r.images / r.seconds : 0;
  model.train();
  return r;
}

}  // namespace mantissa::train
