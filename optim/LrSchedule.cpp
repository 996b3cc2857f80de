#include "optim/LrSchedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <sstream>

#include "core/Error.h"

namespace mantissa::optim {

namespace {
void checkRate(double lr, const char* who) {
  MANTISSA_CHECK(std::isfinite(lr) && lr >= 0, who, ": learning rate ", lr,
                 " must be finite and >= 0");
}
void checkTime(int64_t t, const char* who) {
  MANTISSA_CHECK(t >= 0, who, ": time index ", t, " must be >= 0");
}
}  // namespace

ConstantLr::ConstantLr(double lr) : lr_(lr) { checkRate(lr, "ConstantLr"); }

double ConstantLr::lr(int64_t t) const {
  checkTime(t, "ConstantLr");
  return lr_;
}

std::string ConstantLr::describe() const { return detail::concat("constant(", lr_, ")"); }

StepLr::StepLr(double baseLr, StepLrOptions opts) : base_(baseLr), opts_(opts) {
  checkRate(baseLr, "StepLr");
  MANTISSA_CHECK(opts.stepSize > 0, "StepLr: stepSize ", opts.stepSize, " must be > 0");
  MANTISSA_CHECK(std::isfinite(opts.gamma) && opts.gamma >= 0, "StepLr: gamma ", opts.gamma,
                 " must be >= 0");
}

// Every rate is a closed form in t (PyTorch's `_get_closed_form_lr`), not the recursive update
// PyTorch's schedulers apply per call: the recursion accumulates rounding and depends on how many
// times it was called, the closed form is the same after a resume.
double StepLr::lr(int64_t t) const {
  checkTime(t, "StepLr");
  return base_ * std::pow(opts_.gamma, static_cast<double>(t / opts_.stepSize));
}

std::string StepLr::describe() const {
  return detail::concat("step(base=", base_, ", stepSize=", opts_.stepSize, ", gamma=", opts_.gamma, ")");
}

MultiStepLr::MultiStepLr(double baseLr, MultiStepLrOptions opts) : base_(baseLr), opts_(std::move(opts)) {
  checkRate(baseLr, "MultiStepLr");
  MANTISSA_CHECK(std::isfinite(opts_.gamma) && opts_.gamma >= 0, "MultiStepLr: gamma ",
                 opts_.gamma, " must be >= 0");
  for (size_t i = 0; i < opts_.milestones.size(); ++i) {
    MANTISSA_CHECK(opts_.milestones[i] > 0, "MultiStepLr: milestone ", opts_.milestones[i],
                   " must be > 0");
    MANTISSA_CHECK(i == 0 || opts_.milestones[i] > opts_.milestones[i - 1],
                   "MultiStepLr: milestones must increase (", opts_.milestones[i - 1], " then ",
                   opts_.milestones[i], ")");
  }
}

double MultiStepLr::lr(int64_t t) const {
  checkTime(t, "MultiStepLr");
  // Milestones are sorted (checked), so the count of those <= t is one binary search.
  auto passed = std::upper_bound(opts_.milestones.begin(), opts_.milestones.end(), t) -
                opts_.milestones.begin();
  return base_ * std::pow(opts_.gamma, static_cast<double>(passed));
}

std::string MultiStepLr::describe() const {
  std::ostringstream os;
  os << "multistep(base=" << base_ << ", milestones=[";
  for (size_t i = 0; i < opts_.milestones.size(); ++i) os << (i ? "," : "") << opts_.milestones[i];
  os << "], gamma=" << opts_.gamma << ")";
  return os.str();
}

CosineAnnealingLr::CosineAnnealingLr(double baseLr, CosineAnnealingLrOptions opts)
    : base_(baseLr), opts_(opts) {
  checkRate(baseLr, "CosineAnnealingLr");
  MANTISSA_CHECK(opts.tMax > 0, "CosineAnnealingLr: tMax ", opts.tMax, " must be > 0");
  checkRate(opts.etaMin, "CosineAnnealingLr etaMin");
}

double CosineAnnealingLr::lr(int64_t t) const {
  checkTime(t, "CosineAnnealingLr");
  const double c = std::cos(std::numbers::pi * static_cast<double>(t) / static_cast<double>(opts_.tMax));
  return opts_.etaMin + (base_ - opts_.etaMin) * (1 + c) / 2;
}

std::string CosineAnnealingLr::describe() const {
  return detail::concat("cosine(base=", base_, ", tMax=", opts_.tMax, ", etaMin=", opts_.etaMin, ")");
}

LinearWarmup::LinearWarmup(LrSchedulePtr inner, LinearWarmupOptions opts)
    : inner_(std::move(inner)), opts_(opts) {
  MANTISSA_CHECK(inner_ != nullptr, "LinearWarmup: null inner schedule");
  MANTISSA_CHECK(opts.warmup >= 0, "LinearWarmup: warmup ", opts.warmup, " must be >= 0");
  MANTISSA_CHECK(opts.startFactor >= 0 && opts.startFactor <= 1, "LinearWarmup: startFactor ",
                 opts.startFactor, " outside [0, 1]");
}

double LinearWarmup::lr(int64_t t) const {
  checkTime(t, "LinearWarmup");
  // warmup == 0 never reaches the division below.
  if (t >= opts_.warmup) return inner_->lr(opts_.delayInner ? t - opts_.warmup : t);
  const double factor = opts_.startFactor + (1 - opts_.startFactor) * static_cast<double>(t) /
                                                static_cast<double>(opts_.warmup);
  return factor * inner_->lr(opts_.delayInner ? 0 : t);
}

std::string LinearWarmup::describe() const {
  return detail::concat("warmup(", opts_.warmup, ", start=", opts_.startFactor,
                        opts_.delayInner ? ", then " : ", times ", inner_->describe(), ")");
}

}  // namespace mantissa::optim
