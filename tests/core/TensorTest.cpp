#include <doctest/doctest.h>

#include <cstdint>

#include "core/Rng.h"
#include "core/Tensor.h"

using namespace mantissa;

TEST_CASE("Tensor: creation, shape and 64-byte alignment") {
  Tensor t = Tensor::zeros({2, 3, 4});
  CHECK(t.dim() == 3);
  CHECK(t.numel() == 24);
  CHECK(t.size(-1) == 4);
  CHECK(t.strides() == Shape{12, 4, 1});
  CHECK(reinterpret_cast<uintptr_t>(t.data<float>()) % 64 == 0);
  CHECK(Tensor::full({2}, 2.5).toVector() == std::vector<float>{2.5f, 2.5f});
  CHECK(Tensor::arange(4).toVector() == std::vector<float>{0, 1, 2, 3});
  CHECK_THROWS_WITH_AS(Tensor::fromVector({1.f, 2.f, 3.f}, {2, 2}),
                       doctest::Contains("do not fill shape [2, 2]"), Error);
  CHECK_THROWS_WITH_AS(t.data<int64_t>(), doctest::Contains("dtype f32"), Error);
}

TEST_CASE("Tensor: integer dtypes and conversion") {
  Tensor labels = Tensor::fromInts({3, 1, 4});
  CHECK(labels.dtype() == DType::I64);
  CHECK(labels.toVector<int64_t>() == std::vector<int64_t>{3, 1, 4});
  Tensor codes = Tensor::full({3}, 200, DType::U8);
  CHECK(codes.nbytes() == 3);
  CHECK(codes.to(DType::F32).toVector() == std::vector<float>{200, 200, 200});
}

TEST_CASE("Tensor: views share storage and respect strides") {
  Tensor t = Tensor::arange(24).reshape({2, 3, 4});
  SUBCASE("reshape with -1") {
    Tensor r = t.reshape({4, -1});
    CHECK(r.shape() == Shape{4, 6});
    CHECK(r.storage() == t.storage());
    CHECK_THROWS_AS(t.reshape({5, -1}), Error);
  }
  SUBCASE("permute and contiguous") {
    Tensor p = t.permute({2, 0, 1});
    CHECK(p.shape() == Shape{4, 2, 3});
    CHECK_FALSE(p.isContiguous());
    CHECK(p.at({1, 1, 2}) == t.at({1, 2, 1}));
    Tensor c = p.contiguous();
    CHECK(c.isContiguous());
    CHECK(c.toVector()[0 * 6 + 1 * 3 + 2] == static_cast<float>(t.at({1, 2, 0})));
  }
  SUBCASE("slice with step") {
    Tensor s = t.slice(2, 1, 4, 2);  // last axis, elements 1 and 3
    CHECK(s.shape() == Shape{2, 3, 2});
    CHECK(s.at({1, 2, 1}) == 23.0);
    CHECK(t.slice(1, -1, 3).shape() == Shape{2, 1, 4});
  }
  SUBCASE("expand uses stride 0") {
    Tensor row = Tensor::arange(3).reshape({1, 3});
    Tensor e = row.expand({4, 3});
    CHECK(e.strides()[0] == 0);
    CHECK(e.at({3, 2}) == 2.0);
    CHECK_THROWS_WITH_AS(row.expand({4, 2}), doctest::Contains("cannot expand"), Error);
  }
  SUBCASE("flatten, squeeze, unsqueeze, transpose") {
    CHECK(t.flatten(1).shape() == Shape{2, 12});
    CHECK(t.unsqueeze(0).shape() == Shape{1, 2, 3, 4});
    CHECK(t.unsqueeze(0).squeeze(0).shape() == Shape{2, 3, 4});
    CHECK(t.transpose(0, 2).shape() == Shape{4, 3, 2});
    CHECK_THROWS_AS(t.squeeze(0), Error);
  }
}

TEST_CASE("Tensor: printing shows dtype, shape and values") {
  Tensor t = Tensor::fromVector({1.f, 2.f, 3.f, 4.f}, {2, 2});
  std::string s = t.toString();
  CHECK(s.find("f32 [2, 2]") != std::string::npos);
  CHECK(s.find("[[1, 2],") != std::string::npos);
  CHECK(Tensor().toString() == "Tensor(undefined)");
}

TEST_CASE("Tensor: undefined handle errors clearly") {
  Tensor t;
  CHECK_FALSE(t.defined());
  CHECK_THROWS_WITH_AS(t.shape(), doctest::Contains("undefined tensor"), Error);
}
