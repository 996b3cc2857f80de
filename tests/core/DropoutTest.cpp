#include <doctest/doctest.h>

#include <cmath>

#include "core/Rng.h"
#include "core/autograd/GradCheck.h"
#include "core/ops/Dropout.h"
#include "core/ops/Elementwise.h"
#include "core/ops/Reduce.h"
#include "core/parallel/ParallelFor.h"

using namespace mantissa;

TEST_CASE("dropout: identity in eval mode and for p = 0") {
  Rng rng(1);
  Tensor x = Tensor::randn({4, 5}, rng);
  Rng before = rng;
  CHECK(dropout(x, 0.5f, false, rng).isSameAs(x));
  CHECK(dropout(x, 0.f, true, rng).isSameAs(x));
  CHECK(rng == before);  // no random numbers drawn
}

TEST_CASE("dropout: kept elements are scaled by 1/(1-p), the rest are zero") {
  Rng rng(2);
  Tensor x = Tensor::rand({1000}, rng, 1.f, 2.f);  // no zeros in the input
  Tensor y = dropout(x, 0.25f, true, rng);
  std::vector<float> vx = x.toVector(), vy = y.toVector();
  int64_t kept = 0;
  bool scaled = true;
  for (size_t i = 0; i < vx.size(); ++i) {
    if (vy[i] != 0.f) {
      ++kept;
      scaled = scaled && vy[i] == vx[i] * (1.f / 0.75f);
    }
  }
  CHECK(scaled);
  // Binomial(1000, 0.75): mean 750, sd 13.7; 5 sd either side.
  CHECK(kept > 750 - 69);
  CHECK(kept < 750 + 69);
}

TEST_CASE("dropout: seeded determinism, independent of thread count") {
  Tensor x = Tensor::ones({3, 50000});
  int saved = numThreads();
  setNumThreads(1);
  Rng a(42);
  std::vector<float> one = dropout(x, 0.3f, true, a).toVector();
  setNumThreads(2);
  Rng b(42);
  std::vector<float> two = dropout(x, 0.3f, true, b).toVector();
  setNumThreads(saved);
  CHECK(one == two);
  CHECK(a == b);  // both generators advanced by the same amount
  // The next call draws a different mask.
  CHECK(dropout(x, 0.3f, true, a).toVector() != one);
  // A different seed gives a different mask.
  Rng c(43);
  CHECK(dropout(x, 0.3f, true, c).toVector() != one);
}

TEST_CASE("dropout: preserves the mean") {
  Rng rng(3);
  const int64_t n = 1 << 18;
  for (float p : {0.1f, 0.5f, 0.9f}) {
    CAPTURE(p);
    Tensor y = dropout(Tensor::ones({n}), p, true, rng);
    // E[y] = 1; Var[y] = p / (1-p); the mean of n samples has sd sqrt(p / ((1-p) n)).
    double sd = std::sqrt(p / ((1.0 - p) * n));
    CHECK(std::fabs(mean(y).item() - 1.0) < 5 * sd);
    // The fraction of zeros estimates p.
    double zeros = 1.0 - mean(greater(y, Tensor::zeros({}))).item();
    CHECK(std::fabs(zeros - p) < 5 * std::sqrt(p * (1 - p) / n));
  }
}

TEST_CASE("dropout: backward uses the forward mask") {
  Rng rng(4);
  Tensor x = Tensor::rand({6, 7}, rng, 1.f, 2.f).requiresGrad();
  Tensor w = Tensor::randn({6, 7}, rng);
  Tensor y = dropout(x, 0.4f, true, rng);
  sum(mul(y, w)).backward();
  std::vector<float> vx = x.detach().toVector(), vy = y.detach().toVector();
  std::vector<float> g = x.grad().toVector(), vw = w.toVector();
  bool same = true;
  for (size_t i = 0; i < vx.size(); ++i) {
    // d(sum(y w))/dx = w * mask, and mask = y / x.
    float mask = vy[i] / vx[i];
    same = same && g[i] == doctest::Approx(vw[i] * mask);
    same = same && (vy[i] == 0.f) == (g[i] == 0.f || vw[i] == 0.f);
  }
  CHECK(same);

  // A gradient check with a generator reset before every evaluation sees a fixed mask.
  auto fn = [](const std::vector<Tensor>& in) {
    Rng fixed(77);
    return dropout(in[0], 0.3f, true, fixed);
  };
  auto r = autograd::gradCheck(fn, {x});
  CHECK_MESSAGE(r.ok, r.message);
}

TEST_CASE("dropout: p outside [0, 1) is an error") {
  Rng rng(5);
  Tensor x = Tensor::ones({2});
  for (float p : {-0.1f, 1.f, 1.5f, NAN}) {
    CAPTURE(p);
    CHECK_THROWS_WITH_AS(dropout(x, p, true, rng), doctest::Contains("outside [0, 1)"), Error);
    CHECK_THROWS_WITH_AS(dropout(x, p, false, rng), doctest::Contains("dropout: probability p"),
                         Error);
  }
}
