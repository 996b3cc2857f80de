#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "core/autograd/Autograd.h"
#include "core/ops/Elementwise.h"

#include "core/ops/Norm.h"
#include "core/ops/reference/Norm.h"
#include "core/parallel/ParallelFor.h"
#include "tests/core/OpsCheck.h"

using namespace mantissa;
using mantissa::testing::checkClose;
using mantissa::testing::checkGradients;

TEST_CASE("norm: batchNorm hand-computed values and running-statistic update") {
  // One channel holding 1, 2, 3, 4: mean 2.5, biased variance 1.25, unbiased 5/3.
  Tensor x = Tensor::fromVector({1, 2, 3, 4}, {4, 1});
  Tensor rm = Tensor::zeros({1}), rv = Tensor::ones({1});
  Tensor y = batchNorm(x, Tensor(), Tensor(), rm, rv, {.training = true, .momentum = 0.1, .eps = 1e-5});
  const double inv = 1.0 / std::sqrt(1.25 + 1e-5);
  CHECK(y.at({0, 0}) == doctest::Approx(-1.5 * inv).epsilon(1e-6));
  CHECK(y.at({3, 0}) == doctest::Approx(1.5 * inv).epsilon(1e-6));
  CHECK(rm.item() == doctest::Approx(0.25).epsilon(1e-6));                    // 0.9*0 + 0.1*2.5
  CHECK(rv.item() == doctest::Approx(0.9 + 0.1 * 5.0 / 3.0).epsilon(1e-6));  // unbiased
  // A second step compounds: 0.9*0.25 + 0.1*2.5.
  batchNorm(x, Tensor(), Tensor(), rm, rv, {.training = true});
  CHECK(rm.item() == doctest::Approx(0.475).epsilon(1e-6));
  // Inference normalises with the running statistics and leaves them alone.
  Tensor rm0 = Tensor::fromVector({1.f}, {1}), rv0 = Tensor::fromVector({4.f}, {1});
  Tensor ye = batchNorm(x, Tensor::fromVector({2.f}, {1}), Tensor::fromVector({0.5f}, {1}), rm0, rv0,
                        {.training = false, .eps = 0.0001});
  CHECK(ye.at({2, 0}) == doctest::Approx((3.0 - 1.0) / std::sqrt(4.0001) * 2 + 0.5).epsilon(1e-6));
  CHECK(rm0.item() == 1.f);
  CHECK(rv0.item() == 4.f);
}

TEST_CASE("norm: batchNorm oneDNN kernels match the reference") {
  Rng rng(51);
  for (Shape shape : {Shape{8, 5}, Shape{4, 3, 5}, Shape{2, 3, 5, 7}, Shape{1, 16, 6, 6},
                      Shape{3, 1, 1, 2}}) {
    for (bool training : {true, false}) {
      for (int affine : {0, 1, 2}) {  // none, gamma and beta, gamma only
        CAPTURE(toString(shape));
        CAPTURE(training);
        CAPTURE(affine);
        const int64_t c = shape[1];
        Tensor x = Tensor::randn(shape, rng, 0.5f, 2.f).requiresGrad();
        Tensor gamma = affine ? Tensor::randn({c}, rng).requiresGrad() : Tensor();
        Tensor beta = affine == 1 ? Tensor::randn({c}, rng).requiresGrad() : Tensor();
        Tensor rm = Tensor::randn({c}, rng), rv = Tensor::rand({c}, rng, 0.5f, 2.f);
        Tensor rmRef = rm.clone(), rvRef = rv.clone();
        BatchNormOptions o{.training = training, .momentum = 0.3};
        Tensor y = batchNorm(x, gamma, beta, rm, rv, o);
        Tensor want = reference::batchNorm(x.detach(), gamma.defined() ? gamma.detach() : Tensor(),
                                           beta.defined() ? beta.detach() : Tensor(), rmRef, rvRef, o);
        checkClose(y, want, "batchNorm forward");
        checkClose(rm, rmRef, "running mean");
        checkClose(rv, rvRef, "running var");
        // Backward against the running statistics as they were at forward time.
        Tensor g = Tensor::randn(shape, rng);
        y.backward({.grad = g});
        reference::BatchNormGrads r = reference::batchNormBackward(
            x.detach(), affine ? gamma.detach() : Tensor(), training ? Tensor() : rm, training ? Tensor() : rv, g, o);
        checkClose(x.grad(), r.x, "batchNorm backward data");
        if (gamma.defined()) checkClose(gamma.grad(), r.gamma, "batchNorm backward gamma");
        if (beta.defined()) checkClose(beta.grad(), r.beta, "batchNorm backward beta");
      }
    }
  }
}

namespace {

/// The first index where the bits of a and b differ, or -1.
int64_t firstBitDifference(const Tensor& a, const Tensor& b) {
  std::vector<float> va = a.toVector<float>(), vb = b.toVector<float>();
  if (va.size() != vb.size()) return 0;
  for (size_t i = 0; i < va.size(); ++i) {
    if (std::bit_cast<uint32_t>(va[i]) != std::bit_cast<uint32_t>(vb[i])) return int64_t(i);
  }
  return -1;
}

/// Turns the batch-norm oneDNN inference path on for its lifetime.
struct DnnlInference {
  DnnlInference() { detail::setBatchNormDnnlInference(true); }
  ~DnnlInference() { detail::setBatchNormDnnlInference(false); }
};

}  // namespace

TEST_CASE("norm: inference batchNorm and fused batchNormRelu are bit-identical to oneDNN's") {
  // Mantissa's one-pass inference kernel must reproduce oneDNN's ncsp_bnorm bit for bit (the
  // kernel it replaced), and batchNormRelu must equal relu(batchNorm) bit for bit. Awkward
  // shapes (odd planes, one channel, one element, planes that do not fill a vector), all affine
  // combinations, and values that stress the rounding: exact zeros after subtracting the mean,
  // negative gammas (-0 products), beta -0, huge and tiny magnitudes, subnormals, Inf and NaN.
  Rng rng(57);
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (Shape shape :
       {Shape{7, 5}, Shape{3, 4, 9}, Shape{2, 3, 5, 7}, Shape{5, 17, 3, 1}, Shape{1, 1, 1, 1},
        Shape{4, 33, 1, 13}, Shape{3, 16, 28, 28}, Shape{2, 64, 7, 7}}) {
    for (int affine : {0, 1, 2, 3}) {  // none, gamma and beta, gamma only, beta only
      for (bool withGrad : {false, true}) {
        CAPTURE(toString(shape));
        CAPTURE(affine);
        CAPTURE(withGrad);
        const int64_t c = shape[1];
        Tensor rm = Tensor::randn({c}, rng, 0.f, 3.f), rv = Tensor::rand({c}, rng, 1e-3f, 4.f);
        std::vector<float> xs = Tensor::randn(shape, rng, 0.2f, 5.f).toVector<float>();
        std::vector<float> means = rm.toVector<float>();
        const int64_t plane = Tensor::zeros(shape).numel() / (shape[0] * c);
        for (size_t i = 0; i < xs.size(); ++i) {
          const int64_t ch = (int64_t(i) / plane) % c;
          switch (i % 23) {
            case 0:
              xs[i] = means[size_t(ch)];
              break;  // x - mean == 0
            case 5:
              xs[i] *= 1e30f;
              break;
            case 9:
              xs[i] = 1e-40f;
              break;  // subnormal
            case 13:
              xs[i] = -xs[i] * 1e-20f;
              break;
            default:
              break;
          }
        }
        if (xs.size() > 40) {
          xs[17] = inf;
          xs[31] = -inf;
          xs[38] = nan;
        }
        Tensor x = Tensor::fromVector(xs, shape);
        Tensor gamma, beta;
        if (affine == 1 || affine == 2) {
          std::vector<float> g = Tensor::randn({c}, rng).toVector<float>();
          g[0] = -std::abs(g[0]);  // a negative scale: -0 products
          gamma = Tensor::fromVector(g, {c});
        }
        if (affine == 1 || affine == 3) {
          std::vector<float> b = Tensor::randn({c}, rng).toVector<float>();
          b[0] = -0.0f;
          beta = Tensor::fromVector(b, {c});
        }
        if (withGrad) x = x.requiresGrad();
        const BatchNormOptions o{.training = false};
        Tensor want, wantRelu;
        {
          DnnlInference dnnl;
          want = batchNorm(x, gamma, beta, rm, rv, o).detach();
          wantRelu = relu(want);
        }
        // A residual that cancels some outputs exactly (+0 and -0 sums), as in a ResNet block.
        std::vector<float> rs = Tensor::randn(shape, rng, 0.f, 2.f).toVector<float>();
        std::vector<float> wv = want.toVector<float>();
        for (size_t i = 0; i < rs.size(); i += 7) rs[i] = -wv[i];
        Tensor residual = Tensor::fromVector(rs, shape);
        Tensor wantAdd = relu(add(want, residual));
        Tensor got = batchNorm(x, gamma, beta, rm, rv, o);
        Tensor gotRelu = batchNormRelu(x, gamma, beta, rm, rv, o);
        Tensor gotAdd = batchNormAddRelu(x, gamma, beta, rm, rv, residual, o);
        CHECK(firstBitDifference(got, want) == -1);
        CHECK(firstBitDifference(gotRelu, wantRelu) == -1);
        CHECK(firstBitDifference(gotAdd, wantAdd) == -1);
        // A strided residual (a transposed view of a contiguous tensor) is read correctly too.
        Tensor rt = residual.transpose(0, 1).contiguous().transpose(0, 1);
        CHECK(firstBitDifference(batchNormAddRelu(x, gamma, beta, rm, rv, rt, o), wantAdd) == -1);
        CHECK(got.needsGrad() == withGrad);
        if (withGrad) {
          // The composition's backward: relu's mask, then batch norm's.
          gotRelu.backward({.grad = Tensor::ones(shape)});
          CHECK(x.grad().defined());
        }
      }
    }
  }
}

TEST_CASE("norm: batchNormAddRelu outside the fused case is the composition") {
  // A broadcast residual and a residual that needs a gradient take the unfused path; values and
  // gradients must be those of relu(add(batchNorm(x), residual)).
  Rng rng(59);
  Tensor x = Tensor::randn({3, 4, 5, 2}, rng), gamma = Tensor::randn({4}, rng),
         beta = Tensor::randn({4}, rng);
  Tensor rm = Tensor::randn({4}, rng), rv = Tensor::rand({4}, rng, 0.5f, 2.f);
  const BatchNormOptions o{.training = false};
  Tensor bcast = Tensor::randn({1, 4, 1, 1}, rng);
  CHECK(firstBitDifference(batchNormAddRelu(x, gamma, beta, rm, rv, bcast, o),
                           relu(add(batchNorm(x, gamma, beta, rm, rv, o), bcast))) == -1);
  for (bool training : {false, true}) {
    CAPTURE(training);
    Tensor r1 = Tensor::randn({3, 4, 5, 2}, rng).requiresGrad();
    Tensor r2 = r1.detach().clone().requiresGrad();
    Tensor x1 = x.clone().requiresGrad(), x2 = x.clone().requiresGrad();
    Tensor rm1 = rm.clone(), rv1 = rv.clone(), rm2 = rm.clone(), rv2 = rv.clone();
    const BatchNormOptions ot{.training = training};
    Tensor fused = batchNormAddRelu(x1, gamma, beta, rm1, rv1, r1, ot);
    Tensor composed = relu(add(batchNorm(x2, gamma, beta, rm2, rv2, ot), r2));
    CHECK(firstBitDifference(fused, composed) == -1);
    CHECK(firstBitDifference(rm1, rm2) == -1);
    CHECK(firstBitDifference(rv1, rv2) == -1);
    Tensor g = Tensor::randn({3, 4, 5, 2}, rng);
    fused.backward({.grad = g});
    composed.backward({.grad = g});
    CHECK(firstBitDifference(x1.grad(), x2.grad()) == -1);
    CHECK(firstBitDifference(r1.grad(), r2.grad()) == -1);
  }
  CHECK_THROWS_WITH_AS(batchNormAddRelu(x, gamma, beta, rm, rv, Tensor(), o),
                       doctest::Contains("batchNormAddRelu: undefined residual"), Error);
}

TEST_CASE("norm: lrn backward is bit-identical to oneDNN's reference kernel") {
  // Mantissa's backward loop must give exactly the bits of oneDNN's lrn_ref (the kernel oneDNN
  // runs for plain NCHW, reachable through detail::setLrnDnnlBackward): beta 0.75 (its sqrt
  // fast path) and others (powf), windows wider than the channel count, one channel, one
  // position, exact zeros and large values.
  Rng rng(67);
  struct Case {
    Shape shape;
    LrnOptions o;
  };
  for (const Case& c : {Case{{4, 64, 13, 13}, {.size = 5, .alpha = 5e-4, .beta = 0.75, .k = 2}},
                        Case{{3, 7, 5, 3}, {.size = 3, .alpha = 0.5, .beta = 0.75, .k = 1}},
                        Case{{2, 3, 4, 4}, {.size = 7, .alpha = 1.5, .beta = 0.6, .k = 0.5}},
                        Case{{5, 1, 3, 1}, {.size = 5, .alpha = 2.0, .beta = 1.3, .k = 1}},
                        Case{{2, 10, 1, 1}, {.size = 1, .alpha = 1e-2, .beta = 0.75, .k = 3}}}) {
    CAPTURE(toString(c.shape));
    CAPTURE(c.o.size);
    CAPTURE(c.o.beta);
    std::vector<float> xs = Tensor::randn(c.shape, rng, 0.f, 3.f).toVector<float>();
    for (size_t i = 0; i < xs.size(); i += 11) xs[i] = 0.f;
    for (size_t i = 5; i < xs.size(); i += 17) xs[i] *= 1e3f;
    Tensor g = Tensor::randn(c.shape, rng);
    Tensor grads[2];
    for (int dnnl : {0, 1}) {
      detail::setLrnDnnlBackward(dnnl == 1);
      Tensor x = Tensor::fromVector(xs, c.shape).requiresGrad();
      lrn(x, c.o).backward({.grad = g});
      grads[dnnl] = x.grad();
    }
    detail::setLrnDnnlBackward(false);
    CHECK(firstBitDifference(grads[0], grads[1]) == -1);
    checkClose(grads[0], reference::lrnBackward(Tensor::fromVector(xs, c.shape), g, c.o),
               "lrn backward");
  }
}

TEST_CASE("norm: lrn hand-computed values pin the alpha/size convention") {
  // Channels 1, 2, 3 at one pixel; size 3, alpha 3, beta 1, k 1: denominators
  // 1 + 3/3*(1+4) = 6, 1 + (1+4+9) = 15, 1 + (4+9) = 14.
  Tensor x = Tensor::fromVector({1, 2, 3}, {1, 3, 1, 1});
  std::vector<float> y = lrn(x, {.size = 3, .alpha = 3, .beta = 1, .k = 1}).toVector();
  CHECK(y[0] == doctest::Approx(1.0 / 6));
  CHECK(y[1] == doctest::Approx(2.0 / 15));
  CHECK(y[2] == doctest::Approx(3.0 / 14));
}

TEST_CASE("norm: lrn oneDNN kernels match the reference") {
  Rng rng(52);
  std::vector<std::pair<Shape, LrnOptions>> cases = {
      {{2, 7, 5, 4}, {}},                                          // AlexNet constants
      {{1, 3, 3, 3}, {.size = 3, .alpha = 0.5, .beta = 0.75, .k = 1}},
      {{2, 16, 6, 5}, {.size = 5, .alpha = 1.0, .beta = 0.6, .k = 2}},
      {{1, 9, 2, 2}, {.size = 1, .alpha = 0.3, .beta = 1.2, .k = 1.5}},
      {{2, 4, 3, 3}, {.size = 7, .alpha = 0.8, .beta = 0.75, .k = 1}},  // window wider than C
  };
  for (const auto& [shape, o] : cases) {
    CAPTURE(toString(shape));
    CAPTURE(o.size);
    Tensor x = Tensor::randn(shape, rng).requiresGrad();
    Tensor y = lrn(x, o);
    checkClose(y, reference::lrn(x.detach(), o), "lrn forward");
    Tensor g = Tensor::randn(shape, rng);
    y.backward({.grad = g});
    checkClose(x.grad(), reference::lrnBackward(x.detach(), g, o), "lrn backward");
  }
}

TEST_CASE("norm: gradients match central differences") {
  Rng rng(53);
  autograd::GradCheckOptions smooth{.eps = 1e-3, .atol = 2e-3, .rtol = 2e-2, .maxElements = 48};
  auto param = [&](const Shape& s) { return Tensor::randn(s, rng).requiresGrad(); };
  SUBCASE("batchNorm training, 4-D, affine") {
    checkGradients(
        [](const std::vector<Tensor>& in) {
          return batchNorm(in[0], in[1], in[2], Tensor(), Tensor(), {.training = true});
        },
        {param({3, 2, 2, 3}), param({2}), param({2})}, smooth);
  }
  SUBCASE("batchNorm training, 2-D, no affine") {
    checkGradients(
        [](const std::vector<Tensor>& in) {
          return batchNorm(in[0], Tensor(), Tensor(), Tensor(), Tensor(), {.training = true});
        },
        {param({5, 3})}, smooth);
  }
  SUBCASE("batchNorm training, constant gamma and beta (data gradient only)") {
    Tensor gamma = Tensor::randn({2}, rng), beta = Tensor::randn({2}, rng);
    checkGradients(
        [gamma, beta](const std::vector<Tensor>& in) {
          return batchNorm(in[0], gamma, beta, Tensor(), Tensor(), {.training = true});
        },
        {param({4, 2, 3})}, smooth);
  }
  SUBCASE("batchNorm inference") {
    Tensor rm = Tensor::randn({3}, rng), rv = Tensor::rand({3}, rng, 0.5f, 1.5f);
    checkGradients(
        [rm, rv](const std::vector<Tensor>& in) {
          return batchNorm(in[0], in[1], in[2], rm, rv, {.training = false});
        },
        {param({2, 3, 2, 2}), param({3}), param({3})}, smooth);
  }
  SUBCASE("lrn") {
    checkGradients([](const std::vector<Tensor>& in) {
                     return lrn(in[0], {.size = 3, .alpha = 0.5, .beta = 0.75, .k = 1});
                   },
                   {param({2, 5, 2, 2})}, smooth);
  }
}

TEST_CASE("norm: bad shapes and options give errors naming the op") {
  Tensor x = Tensor::ones({4, 3, 2, 2});
  Tensor rm = Tensor::zeros({3}), rv = Tensor::ones({3});
  CHECK_THROWS_WITH_AS(batchNorm(x, Tensor::ones({4}), Tensor(), rm, rv),
                       doctest::Contains("batchNorm: gamma must be f32 [3], got [4]"), Error);
  CHECK_THROWS_WITH_AS(batchNorm(Tensor::ones({4, 3, 2, 2, 2}), Tensor(), Tensor(), rm, rv),
                       doctest::Contains("batchNorm: input must be [N, C], [N, C, L] or [N, C, H, W]"),
                       Error);
  CHECK_THROWS_WITH_AS(batchNorm(x, Tensor(), Tensor(), Tensor(), Tensor(), {.training = false}),
                       doctest::Contains("inference mode needs the running statistics"), Error);
  CHECK_THROWS_WITH_AS(batchNorm(Tensor::ones({1, 3}), Tensor(), Tensor(), rm, rv, {.training = true}),
                       doctest::Contains("more than one value per channel"), Error);
  CHECK_THROWS_WITH_AS(lrn(x, {.size = 4}), doctest::Contains("lrn: size must be odd"), Error);
  CHECK_THROWS_WITH_AS(lrn(Tensor::ones({3, 2})), doctest::Contains("lrn: input must be 4-D"), Error);
}

namespace {

/// Training-mode batch norm in double from the float inputs: per channel the mean and biased
/// variance by two passes, y, and for an upstream gradient g the gradients of x, gamma and beta.
struct BnDouble {
  std::vector<double> mean, var, y, dx, dgamma, dbeta;
};

BnDouble bnDouble(const std::vector<float>& x, const std::vector<float>& gamma,
                  const std::vector<float>& beta, const std::vector<float>& g, const Shape& s,
                  double eps) {
  const int64_t n = s[0], c = s[1];
  int64_t plane = 1;
  for (size_t i = 2; i < s.size(); ++i) plane *= s[i];
  const double m = double(n * plane);
  auto at = [&](int64_t b, int64_t j, int64_t i) { return size_t((b * c + j) * plane + i); };
  BnDouble r;
  r.y.resize(x.size());
  r.dx.resize(x.size());
  for (int64_t j = 0; j < c; ++j) {
    double s1 = 0, s2 = 0;
    for (int64_t b = 0; b < n; ++b)
      for (int64_t i = 0; i < plane; ++i) s1 += x[at(b, j, i)];
    const double mu = s1 / m;
    for (int64_t b = 0; b < n; ++b)
      for (int64_t i = 0; i < plane; ++i) s2 += (x[at(b, j, i)] - mu) * (x[at(b, j, i)] - mu);
    const double var = s2 / m, inv = 1 / std::sqrt(var + eps);
    double sg = 0, sgx = 0;
    for (int64_t b = 0; b < n; ++b)
      for (int64_t i = 0; i < plane; ++i) {
        const size_t k = at(b, j, i);
        const double xhat = (x[k] - mu) * inv;
        r.y[k] = xhat * gamma[size_t(j)] + beta[size_t(j)];
        sg += g[k];
        sgx += g[k] * xhat;
      }
    for (int64_t b = 0; b < n; ++b)
      for (int64_t i = 0; i < plane; ++i) {
        const size_t k = at(b, j, i);
        const double xhat = (x[k] - mu) * inv;
        r.dx[k] = gamma[size_t(j)] * inv * (g[k] - sg / m - xhat * sgx / m);
      }
    r.mean.push_back(mu);
    r.var.push_back(var);
    r.dgamma.push_back(sgx);
    r.dbeta.push_back(sg);
  }
  return r;
}

}  // namespace

TEST_CASE("norm: training batchNorm against a double-precision reference, large means included") {
  // Mantissa's training kernels (two-pass statistics in double, one-FMA normalisation): every
  // value within a few float roundings of the double result. Large-mean data is where a one-pass
  // E[x^2] - E[x]^2 in float fails (mean 1e4, std 1: E[x^2] ~ 1e8 has an ulp of 8).
  Rng rng(67);
  constexpr double u = 1.0 / (1 << 24);  // unit roundoff of float
  struct Case {
    Shape shape;
    float mean, std;
  };
  for (const Case& cs :
       {Case{{7, 3}, 0.f, 1.f}, Case{{5, 4, 3}, 2.f, 0.5f}, Case{{3, 2, 7, 5}, 0.5f, 2.f},
        Case{{2, 3, 1, 1}, 0.f, 1.f}, Case{{4, 5, 9, 9}, 1e4f, 1.f},
        Case{{6, 2, 4, 3}, -3e3f, 1e-2f}, Case{{9, 17}, 1e5f, 3.f}}) {
    CAPTURE(toString(cs.shape));
    CAPTURE(cs.mean);
    const int64_t c = cs.shape[1];
    Tensor x = Tensor::randn(cs.shape, rng, cs.mean, cs.std).requiresGrad();
    Tensor gamma = Tensor::randn({c}, rng, 1.f, 0.5f).requiresGrad();
    Tensor beta = Tensor::randn({c}, rng).requiresGrad();
    Tensor rm = Tensor::randn({c}, rng), rv = Tensor::rand({c}, rng, 0.5f, 2.f);
    // momentum 1: the running statistics become the batch mean and the unbiased variance.
    const BatchNormOptions o{.training = true, .momentum = 1.0, .eps = 1e-5};
    Tensor y = batchNorm(x, gamma, beta, rm, rv, o);
    Tensor g = Tensor::randn(cs.shape, rng);
    y.backward({.grad = g});
    const std::vector<float> xv = x.detach().toVector(), gv = gamma.detach().toVector(),
                             bv = beta.detach().toVector(), grad = g.toVector();
    const BnDouble r = bnDouble(xv, gv, bv, grad, cs.shape, o.eps);
    const std::vector<float> yv = y.toVector(), dx = x.grad().toVector(),
                             dgamma = gamma.grad().toVector(), dbeta = beta.grad().toVector(),
                             rmv = rm.toVector(), rvv = rv.toVector();
    const int64_t m = int64_t(xv.size()) / c, plane = m / cs.shape[0];
    int bad = 0;
    for (int64_t j = 0; j < c; ++j) {
      CHECK(std::abs(rmv[size_t(j)] - r.mean[size_t(j)]) <= u * std::abs(r.mean[size_t(j)]));
      const double unbiased = r.var[size_t(j)] * double(m) / double(m - 1);
      CHECK(std::abs(rvv[size_t(j)] - unbiased) <= 4 * u * unbiased);
      const double inv = 1 / std::sqrt(r.var[size_t(j)] + o.eps);
      double sumAbsG = 0, sumAbsGx = 0, c1 = std::abs(r.dbeta[size_t(j)]) / double(m),
             c2 = std::abs(r.dgamma[size_t(j)]) * inv / double(m);
      for (int64_t k = 0; k < m; ++k) {
        const size_t e = size_t((k / plane * c + j) * plane + k % plane);
        sumAbsG += std::abs(grad[e]);
        sumAbsGx += std::abs(grad[e] * (xv[e] - r.mean[size_t(j)]) * inv);
      }
      // y: (x - mean) rounded once, times gamma/sigma (rounded), one FMA with beta.
      for (int64_t k = 0; k < m; ++k) {
        const size_t e = size_t((k / plane * c + j) * plane + k % plane);
        const double xhat = (xv[e] - r.mean[size_t(j)]) * inv;
        const double tolY = 4 * u * (std::abs(xhat * gv[size_t(j)]) + std::abs(bv[size_t(j)]));
        const double f = std::abs(gv[size_t(j)] * inv);
        const double tolDx = 8 * u * f * (std::abs(grad[e]) + c1 + std::abs(xhat) * c2) + 1e-30;
        bad += std::abs(yv[e] - r.y[e]) > tolY;
        bad += std::abs(dx[e] - r.dx[e]) > tolDx;
      }
      CHECK(std::abs(dbeta[size_t(j)] - r.dbeta[size_t(j)]) <= 2 * u * sumAbsG);
      CHECK(std::abs(dgamma[size_t(j)] - r.dgamma[size_t(j)]) <= 2 * u * sumAbsGx);
    }
    CHECK(bad == 0);
  }
}

TEST_CASE("norm: training batchNormRelu / batchNormLeakyRelu are the compositions bit for bit") {
  // Values, running statistics and every gradient: the fused backward recomputes the activation's
  // mask from x with the forward's expression.
  Rng rng(71);
  for (int act : {0, 1, 2}) {  // relu, leaky 0.2, leaky -0.5
    for (Shape shape : {Shape{3, 4, 5, 7}, Shape{6, 3}, Shape{2, 5, 9}}) {
      CAPTURE(toString(shape));
      CAPTURE(act);
      const float slope = act == 1 ? 0.2f : -0.5f;
      const int64_t c = shape[1];
      Tensor xs = Tensor::randn(shape, rng, 0.3f, 1.5f);
      Tensor x1 = xs.clone().requiresGrad(), x2 = xs.clone().requiresGrad();
      Tensor gs = Tensor::randn({c}, rng), bs = Tensor::randn({c}, rng);
      Tensor g1 = gs.clone().requiresGrad(), g2 = gs.clone().requiresGrad();
      Tensor b1 = bs.clone().requiresGrad(), b2 = bs.clone().requiresGrad();
      Tensor rm1 = Tensor::zeros({c}), rv1 = Tensor::ones({c});
      Tensor rm2 = rm1.clone(), rv2 = rv1.clone();
      const BatchNormOptions o{.training = true};
      Tensor fused = act == 0 ? batchNormRelu(x1, g1, b1, rm1, rv1, o)
                              : batchNormLeakyRelu(x1, g1, b1, rm1, rv1, slope, o);
      Tensor bn = batchNorm(x2, g2, b2, rm2, rv2, o);
      Tensor composed = act == 0 ? relu(bn) : leakyRelu(bn, slope);
      CHECK(firstBitDifference(fused, composed) == -1);
      CHECK(firstBitDifference(rm1, rm2) == -1);
      CHECK(firstBitDifference(rv1, rv2) == -1);
      Tensor g = Tensor::randn(shape, rng);
      fused.backward({.grad = g});
      composed.backward({.grad = g});
      CHECK(firstBitDifference(x1.grad(), x2.grad()) == -1);
      CHECK(firstBitDifference(g1.grad(), g2.grad()) == -1);
      CHECK(firstBitDifference(b1.grad(), b2.grad()) == -1);
    }
  }
}

TEST_CASE("norm: training batch norm gives the same bits with 1 and 2 threads") {
  // Runs resume bit for bit from checkpoints whatever the thread count: each channel's sums run
  // in one fixed order on one thread.
  Rng rng(73);
  const Shape shape{16, 6, 9, 11};
  Tensor xs = Tensor::randn(shape, rng, 1.f, 2.f), rs = Tensor::randn(shape, rng);
  Tensor gs = Tensor::randn({6}, rng), bs = Tensor::randn({6}, rng), up = Tensor::randn(shape, rng);
  const int before = numThreads();
  std::vector<std::vector<Tensor>> runs;
  for (int threads : {1, 2}) {
    setNumThreads(threads);
    Tensor x = xs.clone().requiresGrad(), r = rs.clone().requiresGrad();
    Tensor gamma = gs.clone().requiresGrad(), beta = bs.clone().requiresGrad();
    Tensor rm = Tensor::zeros({6}), rv = Tensor::ones({6});
    const BatchNormOptions o{.training = true};
    Tensor y =
        add(batchNorm(x, gamma, beta, rm, rv, o), batchNormAddRelu(x, gamma, beta, rm, rv, r, o));
    y.backward({.grad = up});
    runs.push_back({y, rm, rv, x.grad(), r.grad(), gamma.grad(), beta.grad()});
  }
  setNumThreads(before);
  for (size_t i = 0; i < runs[0].size(); ++i) {
    CAPTURE(i);
    CHECK(firstBitDifference(runs[0][i], runs[1][i]) == -1);
  }
}
