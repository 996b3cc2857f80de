#include <doctest/doctest.h>

#include <memory>

#include "optim/LrSchedule.h"
#include "optim/Sgd.h"

using namespace mantissa;
using namespace mantissa::optim;

TEST_CASE("LrSchedule: step and multi-step values at chosen epochs") {
  StepLr step(0.1, {.stepSize = 3, .gamma = 0.5});
  CHECK(step.lr(0) == doctest::Approx(0.1));
  CHECK(step.lr(2) == doctest::Approx(0.1));
  CHECK(step.lr(3) == doctest::Approx(0.05));
  CHECK(step.lr(5) == doctest::Approx(0.05));
  CHECK(step.lr(6) == doctest::Approx(0.025));
  CHECK(step.lr(30) == doctest::Approx(0.1 / 1024));

  MultiStepLr multi(1.0, {.milestones = {2, 5}, .gamma = 0.1});
  CHECK(multi.lr(0) == 1.0);
  CHECK(multi.lr(1) == 1.0);
  CHECK(multi.lr(2) == doctest::Approx(0.1));
  CHECK(multi.lr(4) == doctest::Approx(0.1));
  CHECK(multi.lr(5) == doctest::Approx(0.01));
  CHECK(multi.lr(500) == doctest::Approx(0.01));
  CHECK(ConstantLr(0.3).lr(7) == 0.3);
}

TEST_CASE("LrSchedule: cosine annealing values at chosen epochs") {
  CosineAnnealingLr cos(0.1, {.tMax = 10, .etaMin = 0.001});
  CHECK(cos.lr(0) == doctest::Approx(0.1));
  // t = 2: 0.001 + 0.099 (1 + cos(pi/5)) / 2, cos(pi/5) = 0.80901699.
  CHECK(cos.lr(2) == doctest::Approx(0.0905463412));
  CHECK(cos.lr(5) == doctest::Approx(0.001 + 0.099 / 2));
  CHECK(cos.lr(10) == doctest::Approx(0.001));
  // PyTorch's closed form keeps following the cosine past tMax.
  CHECK(cos.lr(15) == doctest::Approx(0.0505));
  CHECK(cos.lr(20) == doctest::Approx(0.1));
}

TEST_CASE("LrSchedule: linear warm-up composes with other schedules") {
  SUBCASE("multiplying a constant") {
    LinearWarmup w(std::make_shared<ConstantLr>(0.1), {.warmup = 4, .startFactor = 0.25});
    CHECK(w.lr(0) == doctest::Approx(0.025));
    CHECK(w.lr(1) == doctest::Approx(0.04375));  // factor 0.25 + 0.75 / 4
    CHECK(w.lr(2) == doctest::Approx(0.0625));
    CHECK(w.lr(4) == doctest::Approx(0.1));
    CHECK(w.lr(100) == doctest::Approx(0.1));
  }
  SUBCASE("multiplying a cosine (chained)") {
    LinearWarmup w(std::make_shared<CosineAnnealingLr>(0.1, CosineAnnealingLrOptions{.tMax = 10}),
                   {.warmup = 2});
    CHECK(w.lr(0) == 0.0);
    // 0.5 * 0.1 (1 + cos(pi/10)) / 2, cos(pi/10) = 0.95105652.
    CHECK(w.lr(1) == doctest::Approx(0.0487764129));
    CHECK(w.lr(5) == doctest::Approx(0.05));
  }
  SUBCASE("delaying a cosine until the warm-up ends (sequential)") {
    LinearWarmup w(std::make_shared<CosineAnnealingLr>(0.1, CosineAnnealingLrOptions{.tMax = 10}),
                   {.warmup = 2, .delayInner = true});
    CHECK(w.lr(0) == 0.0);
    CHECK(w.lr(1) == doctest::Approx(0.05));
    CHECK(w.lr(2) == doctest::Approx(0.1));
    CHECK(w.lr(7) == doctest::Approx(0.05));
    CHECK(w.lr(12) == doctest::Approx(0.0));
  }
  SUBCASE("warm-up in front of a multi-step schedule, driving an optimizer") {
    auto sched = std::make_shared<LinearWarmup>(
        std::make_shared<MultiStepLr>(0.2, MultiStepLrOptions{.milestones = {3}, .gamma = 0.5}),
        LinearWarmupOptions{.warmup = 2, .startFactor = 0.5});
    Sgd sgd({{"w", Tensor::zeros({1}).requiresGrad()}}, {.lr = 1.0});
    std::vector<double> seen;
    for (int64_t epoch = 0; epoch < 5; ++epoch) {
      sgd.setLr(sched->lr(epoch));
      seen.push_back(sgd.lr());
    }
    CHECK(seen[0] == doctest::Approx(0.1));
    CHECK(seen[1] == doctest::Approx(0.15));
    CHECK(seen[2] == doctest::Approx(0.2));
    CHECK(seen[3] == doctest::Approx(0.1));
    CHECK(seen[4] == doctest::Approx(0.1));
    // A pure function: asking again (as a resumed run would) gives the same rate.
    CHECK(sched->lr(1) == seen[1]);
    CHECK(sched->describe() == "warmup(2, start=0.5, times multistep(base=0.2, milestones=[3], gamma=0.5))");
  }
}

TEST_CASE("LrSchedule: errors name the schedule and option") {
  CHECK_THROWS_WITH_AS(StepLr(0.1, {.stepSize = 0}), doctest::Contains("StepLr: stepSize 0 must be > 0"),
                       Error);
  CHECK_THROWS_WITH_AS(MultiStepLr(0.1, {.milestones = {5, 3}}),
                       doctest::Contains("MultiStepLr: milestones must increase (5 then 3)"), Error);
  CHECK_THROWS_WITH_AS(CosineAnnealingLr(0.1, {.tMax = 0}),
                       doctest::Contains("CosineAnnealingLr: tMax 0 must be > 0"), Error);
  CHECK_THROWS_WITH_AS(LinearWarmup(nullptr, {}), doctest::Contains("LinearWarmup: null inner schedule"),
                       Error);
  CHECK_THROWS_WITH_AS(LinearWarmup(std::make_shared<ConstantLr>(1.0), {.startFactor = 2}),
                       doctest::Contains("LinearWarmup: startFactor 2 outside [0, 1]"), Error);
  CHECK_THROWS_WITH_AS(StepLr(0.1, {}).lr(-1), doctest::Contains("StepLr: time index -1 must be >= 0"),
                       Error);
  CHECK_THROWS_WITH_AS(ConstantLr(-1.0), doctest::Contains("ConstantLr: learning rate -1"), Error);
}
