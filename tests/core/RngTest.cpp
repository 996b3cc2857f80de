#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "core/Rng.h"

using namespace mantissa;

TEST_CASE("Rng: Philox4x32-10 matches the Random123 known-answer vectors") {
  // Known-answer tests from Random123's kat_vectors (philox4x32_10).
  auto zero = philox4x32({0, 0}, {0, 0, 0, 0});
  CHECK(zero == std::array<uint32_t, 4>{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8});
  auto ones = philox4x32({0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff});
  CHECK(ones == std::array<uint32_t, 4>{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd});
  auto pi = philox4x32({0xa4093822, 0x299f31d0}, {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344});
  CHECK(pi == std::array<uint32_t, 4>{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1});
}

TEST_CASE("Rng: same seed same stream; state restores exactly") {
  Rng a(42), b(42), c(43);
  for (int i = 0; i < 10; ++i) CHECK(a.nextU32() == b.nextU32());
  CHECK(a.nextU32() != c.nextU32());
  Rng r(7);
  r.nextU32();
  r.nextU32();
  Rng::State s = r.state();
  std::vector<uint32_t> expected;
  for (int i = 0; i < 9; ++i) expected.push_back(r.nextU32());
  Rng q(0);
  q.setState(s);
  for (int i = 0; i < 9; ++i) CHECK(q.nextU32() == expected[i]);
}

TEST_CASE("Rng: uniform and normal moments") {
  Rng r(1);
  double su = 0, sn = 0, sn2 = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    float u = r.uniform();
    CHECK_UNARY(u >= 0.f);
    CHECK_UNARY(u < 1.f);
    su += u;
    double z = r.normal();
    sn += z;
    sn2 += z * z;
  }
  CHECK(su / n == doctest::Approx(0.5).epsilon(0.01));
  CHECK(std::fabs(sn / n) < 0.01);
  CHECK(sn2 / n == doctest::Approx(1.0).epsilon(0.02));
  CHECK(r.fork(1).nextU32() != r.fork(2).nextU32());
}
