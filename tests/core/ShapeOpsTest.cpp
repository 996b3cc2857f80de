#include <doctest/doctest.h>

#include "core/Rng.h"
#include "core/autograd/GradCheck.h"
#include "core/ops/Elementwise.h"
#include "core/ops/Reduce.h"
#include "core/ops/ShapeOps.h"

using namespace mantissa;

namespace {
using Fn = std::function<Tensor(const std::vector<Tensor>&)>;
}

TEST_CASE("concat: values along each axis") {
  Tensor a = Tensor::arange(6).reshape({2, 3});        // [[0,1,2],[3,4,5]]
  Tensor b = add(Tensor::arange(3), 10.f).reshape({1, 3});  // [[10,11,12]]
  SUBCASE("axis 0") {
    Tensor c = concat({a, b}, 0);
    CHECK(c.shape() == Shape{3, 3});
    CHECK(c.toVector() == std::vector<float>{0, 1, 2, 3, 4, 5, 10, 11, 12});
  }
  SUBCASE("axis 1 (negative) with a non-contiguous input") {
    Tensor bt = add(Tensor::arange(4), 20.f).reshape({2, 2});  // [[20,21],[22,23]]
    Tensor c = concat({a, bt.transpose(0, 1)}, -1);            // appends [[20,22],[21,23]]
    CHECK(c.shape() == Shape{2, 5});
    CHECK(c.toVector() == std::vector<float>{0, 1, 2, 20, 22, 3, 4, 5, 21, 23});
  }
  SUBCASE("middle axis of a rank-3 tensor, zero-size input") {
    Tensor x = Tensor::arange(8).reshape({2, 2, 2});
    Tensor e = Tensor::zeros({2, 0, 2});
    Tensor y = Tensor::full({2, 1, 2}, -1.f);
    Tensor c = concat({x, e, y}, 1);
    CHECK(c.shape() == Shape{2, 3, 2});
    CHECK(c.toVector() == std::vector<float>{0, 1, 2, 3, -1, -1, 4, 5, 6, 7, -1, -1});
  }
  SUBCASE("integer dtypes") {
    Tensor c = concat({Tensor::fromInts({1, 2}), Tensor::fromInts({3}, {1})}, 0);
    CHECK(c.dtype() == DType::I64);
    CHECK(c.toVector<int64_t>() == std::vector<int64_t>{1, 2, 3});
  }
}

TEST_CASE("concat: errors name the offending tensor") {
  Tensor a = Tensor::zeros({2, 3});
  CHECK_THROWS_WITH_AS(concat({}, 0), doctest::Contains("concat: no tensors given"), Error);
  CHECK_THROWS_WITH_AS(concat({a, Tensor::zeros({2, 4})}, 0),
                       doctest::Contains("concat: tensor 1 has shape [2, 4] but tensor 0 has "
                                         "shape [2, 3]; sizes must match on every axis except axis 0"),
                       Error);
  CHECK_THROWS_WITH_AS(concat({a, Tensor::zeros({2, 3, 1})}, 0),
                       doctest::Contains("concat: tensor 1 has shape [2, 3, 1] (rank 3)"), Error);
  CHECK_THROWS_WITH_AS(concat({a, Tensor::fromInts({1, 2, 3}, {1, 3})}, 0),
                       doctest::Contains("concat: tensor 1 has dtype i64 but tensor 0 has f32"),
                       Error);
  CHECK_THROWS_WITH_AS(concat({a}, 2), doctest::Contains("concat: axis 2 out of range"), Error);
  CHECK_THROWS_WITH_AS(concat({a, Tensor()}, 0), doctest::Contains("concat: tensor 1 is undefined"),
                       Error);
}

TEST_CASE("stack: new axis and errors") {
  Tensor a = Tensor::arange(3), b = add(Tensor::arange(3), 3.f);
  Tensor s0 = stack({a, b}, 0);
  CHECK(s0.shape() == Shape{2, 3});
  CHECK(s0.toVector() == std::vector<float>{0, 1, 2, 3, 4, 5});
  Tensor s1 = stack({a, b}, -1);
  CHECK(s1.shape() == Shape{3, 2});
  CHECK(s1.toVector() == std::vector<float>{0, 3, 1, 4, 2, 5});
  CHECK_THROWS_WITH_AS(stack({a, Tensor::zeros({4})}),
                       doctest::Contains("stack: tensor 1 has shape [4] but tensor 0 has shape [3]"),
                       Error);
}

TEST_CASE("pad: values, torch ordering and errors") {
  Tensor x = Tensor::arange(4).reshape({1, 2, 2});  // [[[0,1],[2,3]]]
  SUBCASE("last two axes") {
    Tensor y = pad(x, {{1, 0}, {0, 2}}, -1.f);
    CHECK(y.shape() == Shape{1, 3, 4});
    CHECK(y.toVector() == std::vector<float>{-1, -1, -1, -1,  //
                                             0, 1, -1, -1,    //
                                             2, 3, -1, -1});
  }
  SUBCASE("PyTorch F.pad list (last axis first) gives the same result") {
    // F.pad(x, (0, 2, 1, 0)) pads W by (0, 2) and H by (1, 0).
    std::vector<PadWidth> w = padWidthsFromTorch({0, 2, 1, 0});
    REQUIRE(w.size() == 2);
    CHECK(w[0].before == 1);
    CHECK(w[0].after == 0);
    CHECK(w[1].before == 0);
    CHECK(w[1].after == 2);
    CHECK(pad(x, w, -1.f).toVector() == pad(x, {{1, 0}, {0, 2}}, -1.f).toVector());
  }
  SUBCASE("all axes, default value 0, non-contiguous input") {
    Tensor t = Tensor::arange(2).reshape({2, 1}).transpose(0, 1);  // [[0, 1]]
    Tensor y = pad(add(t, 1.f), {{1, 1}, {0, 1}});
    CHECK(y.shape() == Shape{3, 3});
    CHECK(y.toVector() == std::vector<float>{0, 0, 0, 1, 2, 0, 0, 0, 0});
  }
  CHECK_THROWS_WITH_AS(pad(x, {{0, 0}, {0, 0}, {0, 0}, {0, 0}}),
                       doctest::Contains("pad: 4 pad widths given for a tensor of shape [1, 2, 2]"),
                       Error);
  CHECK_THROWS_WITH_AS(pad(x, {{0, -1}}),
                       doctest::Contains("pad: negative width {0, -1} for axis 2"), Error);
  CHECK_THROWS_WITH_AS(padWidthsFromTorch({1, 2, 3}),
                       doctest::Contains("pad: a PyTorch pad list needs an even length"), Error);
}

TEST_CASE("shape ops: gradients match central differences") {
  Rng rng(21);
  Tensor a = Tensor::randn({2, 3, 4}, rng).requiresGrad();
  Tensor b = Tensor::randn({2, 2, 4}, rng).requiresGrad();
  Tensor c = Tensor::randn({2, 3, 4}, rng).requiresGrad();
  Tensor constant = Tensor::randn({2, 1, 4}, rng);  // needs no gradient
  std::vector<std::pair<const char*, Fn>> fns = {
      {"concat axis 1", [](const std::vector<Tensor>& in) { return concat({in[0], in[1], in[3]}, 1); }},
      {"concat axis 0", [](const std::vector<Tensor>& in) { return concat({in[0], in[2]}, 0); }},
      {"concat axis -1 of transposed",
       [](const std::vector<Tensor>& in) { return concat({in[0].transpose(1, 2), in[1].transpose(1, 2)}, -1); }},
      {"stack", [](const std::vector<Tensor>& in) { return stack({in[0], in[2]}, 2); }},
      {"pad", [](const std::vector<Tensor>& in) { return pad(in[0], {{2, 1}, {0, 3}}, 0.5f); }},
      {"pad leading axis only", [](const std::vector<Tensor>& in) { return pad(in[1], {{1, 1}, {0, 0}, {0, 0}}); }},
      {"the same input twice", [](const std::vector<Tensor>& in) { return concat({in[0], in[0]}, 1); }},
  };
  for (auto& [name, fn] : fns) {
    CAPTURE(name);
    auto r = autograd::gradCheck(fn, {a, b, c, constant});
    CHECK_MESSAGE(r.ok, r.message);
  }
}

TEST_CASE("concat: large input takes the parallel copy and matches a naive loop") {
  Rng rng(5);
  Tensor a = Tensor::randn({300, 7, 33}, rng), b = Tensor::randn({300, 5, 33}, rng);
  Tensor c = concat({a, b}, 1);
  std::vector<float> va = a.toVector(), vb = b.toVector(), vc = c.toVector();
  bool same = true;
  for (int64_t o = 0; o < 300; ++o) {
    for (int64_t k = 0; k < 12; ++k) {
      for (int64_t i = 0; i < 33; ++i) {
        float ref = k < 7 ? va[(o * 7 + k) * 33 + i] : vb[(o * 5 + (k - 7)) * 33 + i];
        same = same && vc[(o * 12 + k) * 33 + i] == ref;
      }
    }
  }
  CHECK(same);
}

TEST_CASE("pad and contiguous: strided views are copied element by element correctly") {
  // copyStrided copies row by row along the last axis (a memcpy when both rows are dense, a
  // strided loop otherwise): the option-A shortcut (stepped slices + channel pad), permuted and
  // transposed views, a size-1 last axis, rank 1 and rank 0, large enough to run in parallel.
  Rng rng(6);
  Tensor x = Tensor::randn({64, 16, 28, 28}, rng);
  Tensor s = x.slice(2, 0, 28, 2).slice(3, 0, 28, 2);  // [64, 16, 14, 14], steps of 2
  Tensor y = pad(s, {{8, 8}, {0, 0}, {0, 0}});          // [64, 32, 14, 14]
  std::vector<float> vx = x.toVector(), vy = y.toVector();
  bool same = true;
  for (int64_t n = 0; n < 64; ++n)
    for (int64_t c = 0; c < 32; ++c)
      for (int64_t h = 0; h < 14; ++h)
        for (int64_t w = 0; w < 14; ++w) {
          const float want =
              c < 8 || c >= 24 ? 0.f : vx[((n * 16 + (c - 8)) * 28 + 2 * h) * 28 + 2 * w];
          same = same && vy[((n * 32 + c) * 14 + h) * 14 + w] == want;
        }
  CHECK(same);
  Tensor a = Tensor::randn({5, 3, 7, 1}, rng);
  for (const std::vector<int64_t>& order :
       {std::vector<int64_t>{3, 1, 0, 2}, {0, 1, 3, 2}, {2, 0, 3, 1}}) {
    Tensor p = a.permute(order), c = p.contiguous();
    bool ok = c.shape() == p.shape();
    for (int64_t i = 0; i < p.size(0) && ok; ++i)
      for (int64_t j = 0; j < p.size(1); ++j)
        for (int64_t k = 0; k < p.size(2); ++k)
          for (int64_t l = 0; l < p.size(3); ++l) ok = ok && c.at({i, j, k, l}) == p.at({i, j, k, l});
    CHECK(ok);
  }
  Tensor v = Tensor::randn({40}, rng).slice(0, 3, 40, 3);
  std::vector<float> vv = v.contiguous().toVector();
  REQUIRE(vv.size() == 13);
  for (int64_t i = 0; i < 13; ++i) CHECK(vv[size_t(i)] == float(v.at({i})));
  Tensor scalar = Tensor::full({}, 2.5);
  CHECK(scalar.clone().item() == 2.5f);
}
