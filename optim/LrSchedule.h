#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace mantissa::optim {

/// A learning rate as a pure function of a time index t (an epoch or a step: the caller
/// decides which and passes the same kind every time). Having no internal counter, a resumed
/// run gets exactly the rates it would have seen: `opt.setLr(schedule->lr(epoch))`.
/// Schedules are immutable and shareable; compose them through LinearWarmup.
class LrSchedule {
 public:
  virtual ~LrSchedule() = default;
  /// The rate at t >= 0.
  virtual double lr(int64_t t) const = 0;
  /// One line for logs, e.g. "cosine(base=0.1, tMax=90, etaMin=0)".
  virtual std::string describe() const = 0;
};

using LrSchedulePtr = std::shared_ptr<const LrSchedule>;

/// The same rate for every t.
class ConstantLr : public LrSchedule {
 public:
  explicit ConstantLr(double lr);
  double lr(int64_t t) const override;
  std::string describe() const override;

 private:
  double lr_;
};

struct StepLrOptions {
  int64_t stepSize = 30;
  double gamma = 0.1;
};

/// PyTorch StepLR: base * gamma^floor(t / stepSize).
class StepLr : public LrSchedule {
 public:
  StepLr(double baseLr, StepLrOptions opts);
  double lr(int64_t t) const override;
  std::string describe() const override;

 private:
  double base_;
  StepLrOptions opts_;
};

struct MultiStepLrOptions {
  /// Increasing times at which the rate is multiplied by gamma.
  std::vector<int64_t> milestones;
  double gamma = 0.1;
};

/// PyTorch MultiStepLR: base * gamma^(number of milestones <= t).
class MultiStepLr : public LrSchedule {
 public:
  MultiStepLr(double baseLr, MultiStepLrOptions opts);
  double lr(int64_t t) const override;
  std::string describe() const override;

 private:
  double base_;
  MultiStepLrOptions opts_;
};

struct CosineAnnealingLrOptions {
  /// Half period: the rate reaches etaMin at t = tMax.
  int64_t tMax = 100;
  double etaMin = 0;
};

/// PyTorch CosineAnnealingLR in its closed form (SGDR without restarts, Loshchilov & Hutter
/// 2017): etaMin + (base - etaMin) * (1 + cos(pi * t / tMax)) / 2. Like PyTorch's closed form
/// the cosine keeps going past tMax (rising again); stop training at tMax or wrap it.
class CosineAnnealingLr : public LrSchedule {
 public:
  CosineAnnealingLr(double baseLr, CosineAnnealingLrOptions opts);
  double lr(int64_t t) const override;
  std::string describe() const override;

 private:
  double base_;
  CosineAnnealingLrOptions opts_;
};

struct LinearWarmupOptions {
  /// Length of the warm-up; the factor reaches 1 at t = warmup.
  int64_t warmup = 5;
  /// Factor at t = 0 (PyTorch LinearLR start_factor), in [0, 1].
  double startFactor = 0;
  /// false: lr(t) = factor(t) * inner(t) (PyTorch ChainedScheduler of LinearLR and inner).
  /// true: the inner schedule starts after the warm-up: lr(t) = factor(t) * inner(0) for
  /// t < warmup, inner(t - warmup) afterwards (PyTorch SequentialLR with milestone warmup).
  bool delayInner = false;
};

/// Linear warm-up in front of any schedule:
/// factor(t) = startFactor + (1 - startFactor) * min(t, warmup) / warmup.
class LinearWarmup : public LrSchedule {
 public:
  LinearWarmup(LrSchedulePtr inner, LinearWarmupOptions opts);
  double lr(int64_t t) const override;
  std::string describe() const override;

 private:
  LrSchedulePtr inner_;
  LinearWarmupOptions opts_;
};

}  // namespace mantissa::optim
