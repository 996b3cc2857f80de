// One and two steps of every optimizer and option against values computed by hand from
// PyTorch's documented update rules (torch.optim.SGD / Adam / AdamW / RMSprop pseudo-code),
// evaluated in double on three scalars. The arithmetic of each case is in the comments.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <memory>

#include "optim/Adam.h"
#include "optim/RmsProp.h"
#include "optim/Sgd.h"

using namespace mantissa;
using namespace mantissa::optim;

namespace {

// p0 and the gradients of steps 1 and 2. The third gradient shrinks sharply at step 2 so that
// AMSGrad's running maximum differs from the plain second moment.
const std::vector<float> kP0 = {1.f, -2.f, 0.5f};
const std::vector<std::vector<float>> kGrads = {{0.1f, 0.2f, -0.3f}, {-0.5f, 0.4f, 0.001f}};

using Factory = std::function<std::unique_ptr<Optimizer>(NamedParameters)>;

/// Runs two steps and returns the parameter after each.
std::vector<std::vector<float>> twoSteps(const Factory& make) {
  Tensor w = Tensor::fromVector(kP0).requiresGrad();
  auto opt = make({{"w", w}});
  std::vector<std::vector<float>> out;
  for (const auto& g : kGrads) {
    w.setGrad(Tensor::fromVector(g));
    opt->step();
    out.push_back(w.toVector());
  }
  return out;
}

void checkClose(const std::vector<float>& got, const std::vector<double>& want, double rel = 2e-6) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    CAPTURE(i);
    CHECK(got[i] == doctest::Approx(want[i]).epsilon(rel));
  }
}

}  // namespace

TEST_CASE("Sgd: one and two steps against hand-computed values") {
  SUBCASE("plain: p -= lr g") {
    auto r = twoSteps([](NamedParameters p) { return std::make_unique<Sgd>(p, SgdOptions{.lr = 0.1}); });
    checkClose(r[0], {1 - 0.01, -2 - 0.02, 0.5 + 0.03});             // 0.99, -2.02, 0.53
    checkClose(r[1], {0.99 + 0.05, -2.02 - 0.04, 0.53 - 0.0001});    // 1.04, -2.06, 0.5299
  }
  SUBCASE("momentum 0.9: the buffer starts at g, then 0.9 buf + g") {
    auto r = twoSteps([](NamedParameters p) {
      return std::make_unique<Sgd>(p, SgdOptions{.lr = 0.1, .momentum = 0.9});
    });
    checkClose(r[0], {0.99, -2.02, 0.53});
    // buf2 = 0.9 g1 + g2 = (-0.41, 0.58, -0.269); p2 = p1 - 0.1 buf2.
    checkClose(r[1], {1.031, -2.078, 0.5569});
  }
  SUBCASE("dampening 0.5: the first buffer is undamped") {
    auto r = twoSteps([](NamedParameters p) {
      return std::make_unique<Sgd>(p, SgdOptions{.lr = 0.1, .momentum = 0.9, .dampening = 0.5});
    });
    checkClose(r[0], {0.99, -2.02, 0.53});
    // buf2 = 0.9 g1 + 0.5 g2 = (-0.16, 0.38, -0.2695).
    checkClose(r[1], {1.006, -2.058, 0.55695});
  }
  SUBCASE("nesterov: step with g + 0.9 buf") {
    auto r = twoSteps([](NamedParameters p) {
      return std::make_unique<Sgd>(p, SgdOptions{.lr = 0.1, .momentum = 0.9, .nesterov = true});
    });
    // Step 1: buf = g1, d = 1.9 g1 = (0.19, 0.38, -0.57).
    checkClose(r[0], {0.981, -2.038, 0.557});
    // Step 2: buf = (-0.41, 0.58, -0.269), d = g2 + 0.9 buf = (-0.869, 0.922, -0.2411).
    checkClose(r[1], {1.0679, -2.1302, 0.58111});
  }
  SUBCASE("weight decay 0.01: g + 0.01 p") {
    auto r = twoSteps([](NamedParameters p) {
      return std::make_unique<Sgd>(p, SgdOptions{.lr = 0.1, .weightDecay = 0.01});
    });
    // d1 = (0.11, 0.18, -0.295); d2 = g2 + 0.01 p1 = (-0.49011, 0.37982, 0.006295).
    checkClose(r[0], {0.989, -2.018, 0.5295});
    checkClose(r[1], {1.038011, -2.055982, 0.5288705});
  }
}

TEST_CASE("Adam and AdamW: one and two steps against hand-computed values") {
  // Step 1 of Adam is p - lr * g / (|g| + eps) = p - lr sign(g) (bias corrections cancel).
  // Step 2 (t = 2): m = 0.09 g1 + 0.1 g2, v = 0.000999 g1^2 + 0.001 g2^2,
  // p -= 0.1 / (1 - 0.81) * m / (sqrt(v) / sqrt(1 - 0.998001) + 1e-8).
  SUBCASE("defaults with lr 0.1") {
    auto r = twoSteps([](NamedParameters p) { return std::make_unique<Adam>(p, AdamOptions{.lr = 0.1}); });
    checkClose(r[0], {0.9, -2.1, 0.6});
    checkClose(r[1], {0.959835427, -2.196518195, 0.666757278});
  }
  SUBCASE("amsgrad keeps v1 for the third element (v2 < v1 there)") {
    auto r = twoSteps([](NamedParameters p) {
      return std::make_unique<Adam>(p, AdamOptions{.lr = 0.1, .amsgrad = true});
    });
    checkClose(r[0], {0.9, -2.1, 0.6});
    checkClose(r[1], {0.959835427, -2.196518195, 0.666724262});
  }
  SUBCASE("coupled weight decay 0.1: g + 0.1 p (the second gradient is 0 at step 1)") {
    auto r = twoSteps([](NamedParameters p) {
      return std::make_unique<Adam>(p, AdamOptions{.lr = 0.1, .weightDecay = 0.1});
    });
    checkClose(r[0], {0.9, -2.0, 0.6});
    checkClose(r[1], {0.937522035, -2.074413677, 0.647446454});
  }
  SUBCASE("AdamW decoupled weight decay 0.1: p *= 1 - 0.01 first") {
    auto r = twoSteps([](NamedParameters p) {
      return std::make_unique<AdamW>(p, AdamWOptions{.lr = 0.1, .weightDecay = 0.1});
    });
    checkClose(r[0], {0.99 - 0.1, -1.98 - 0.1, 0.495 + 0.1});
    checkClose(r[1], {0.940935426, -2.155718195, 0.655807278});
  }
  SUBCASE("betas change the moments") {
    // betas (0.5, 0.5), lr 1: step 2 m = 0.25 g1 + 0.5 g2 over 0.75, v likewise.
    auto r = twoSteps([](NamedParameters p) {
      return std::make_unique<Adam>(p, AdamOptions{.lr = 1.0, .betas = {0.5, 0.5}, .eps = 0});
    });
    std::vector<double> want(3);
    for (int i = 0; i < 3; ++i) {
      double g1 = kGrads[0][i], g2 = kGrads[1][i];
      double p1 = kP0[i] - (g1 > 0 ? 1 : -1);
      double m = (0.25 * g1 + 0.5 * g2) / 0.75, v = (0.25 * g1 * g1 + 0.5 * g2 * g2) / 0.75;
      want[i] = p1 - m / std::sqrt(v);
    }
    checkClose(r[1], want);
  }
}

TEST_CASE("RmsProp: one and two steps against hand-computed values") {
  SUBCASE("defaults with lr 0.01") {
    auto r = twoSteps([](NamedParameters p) { return std::make_unique<RmsProp>(p, RmsPropOptions{.lr = 0.01}); });
    // Step 1: s = 0.01 g^2, p -= 0.01 g / (0.1 |g|) = 0.1 sign(g).
    checkClose(r[0], {0.9, -2.1, 0.6});
    // Step 2: s = 0.0099 g1^2 + 0.01 g2^2, p -= 0.01 g2 / sqrt(s).
    checkClose(r[1], {0.998077011, -2.189532226, 0.599664956});
  }
  SUBCASE("centered with momentum 0.9") {
    auto r = twoSteps([](NamedParameters p) {
      return std::make_unique<RmsProp>(p, RmsPropOptions{.lr = 0.01, .momentum = 0.9, .centered = true});
    });
    // Step 1: a = 0.01 g, d = sqrt(0.01 g^2 - 0.0001 g^2) = sqrt(0.0099) |g|; buf = g / d.
    checkClose(r[0], {1 - 0.01 / std::sqrt(0.0099), -2 - 0.01 / std::sqrt(0.0099),
                      0.5 + 0.01 / std::sqrt(0.0099)});
    checkClose(r[1], {0.907424736, -2.281302337, 0.690620451});
  }
  SUBCASE("weight decay, alpha and eps") {
    auto r = twoSteps([](NamedParameters p) {
      return std::make_unique<RmsProp>(p, RmsPropOptions{.lr = 0.1, .alpha = 0.5, .eps = 0.1, .weightDecay = 0.5});
    });
    std::vector<double> p(kP0.begin(), kP0.end()), s(3, 0.0);
    for (const auto& g : kGrads) {
      for (int i = 0; i < 3; ++i) {
        double gi = g[i] + 0.5 * p[i];
        s[i] = 0.5 * s[i] + 0.5 * gi * gi;
        p[i] -= 0.1 * gi / (std::sqrt(s[i]) + 0.1);
      }
    }
    checkClose(r[1], p);
  }
}

TEST_CASE("optimizers: option errors name the option") {
  Tensor w = Tensor::zeros({2}).requiresGrad();
  NamedParameters ps = {{"w", w}};
  CHECK_THROWS_WITH_AS(Sgd(ps, {.lr = 0.1, .nesterov = true}),
                       doctest::Contains("sgd: nesterov momentum needs momentum > 0 and dampening = 0"),
                       Error);
  CHECK_THROWS_WITH_AS(Sgd(ps, {.lr = -1}), doctest::Contains("sgd: learning rate -1"), Error);
  CHECK_THROWS_WITH_AS(Sgd(ps, {.momentum = -0.5}), doctest::Contains("sgd: momentum -0.5"), Error);
  CHECK_THROWS_WITH_AS(Adam(ps, {.betas = {0.9, 1.0}}),
                       doctest::Contains("adam: betas.second = 1 outside [0, 1)"), Error);
  CHECK_THROWS_WITH_AS(AdamW(ps, {.eps = -1}), doctest::Contains("adamw: eps -1"), Error);
  CHECK_THROWS_WITH_AS(RmsProp(ps, {.alpha = 1.5}),
                       doctest::Contains("rmsprop: alpha = 1.5 outside [0, 1]"), Error);
  CHECK_THROWS_WITH_AS(RmsProp(ps, {.weightDecay = -1}), doctest::Contains("rmsprop: weightDecay -1"),
                       Error);
}
