#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/Rng.h"
#include "formats/Fp8.h"
#include "tests/formats/FormatTestUtil.h"

using namespace mantissa;
using namespace mantissa::formats;
using namespace mantissa::formats::testutil;

namespace {

struct Variant {
  const char* spec;
  int e, m, bias;
  RefSpecials specials;
  bool saturate;
};

const Variant kVariants[] = {
    {"e4m3", 4, 3, 7, RefSpecials::OcpE4M3, true},
    {"e4m3:sat=0", 4, 3, 7, RefSpecials::OcpE4M3, false},
    {"e5m2", 5, 2, 15, RefSpecials::Ieee, true},
    {"e5m2:sat=0", 5, 2, 15, RefSpecials::Ieee, false},
};

double refValue(const Variant& v, unsigned code) {
  return refDecode(code, 1, v.e, v.m, v.bias, v.specials);
}

// Largest finite value of the variant, found by scanning the reference decoder.
double refMax(const Variant& v) {
  double mx = 0;
  for (unsigned c = 0; c < 256; ++c) {
    double x = refValue(v, c);
    if (std::isfinite(x)) mx = std::max(mx, x);
  }
  return mx;
}

// What an overflow gives: ±max when saturating, else NaN (E4M3) or ±Inf (E5M2).
float overflowResult(const Variant& v, bool negative) {
  float r = v.saturate ? static_cast<float>(refMax(v))
                       : (v.specials == RefSpecials::Ieee ? std::numeric_limits<float>::infinity()
                                                          : std::numeric_limits<float>::quiet_NaN());
  return negative ? -r : r;
}

}  // namespace

TEST_CASE("Fp8: all 256 codes decode to the values of the OCP definition") {
  for (const Variant& v : kVariants) {
    CAPTURE(v.spec);
    FormatPtr f = parse(v.spec);
    std::vector<float> got = decodeAllCodes(*f, v.spec);
    for (unsigned c = 0; c < 256; ++c) {
      CAPTURE(c);
      CHECK(sameFloat(got[c], static_cast<float>(refValue(v, c))));
    }
  }
}

TEST_CASE("Fp8: stated max, min normal and min subnormal (FORMATS.md §1.1)") {
  CHECK(refMax(kVariants[0]) == 448.0);
  CHECK(refMax(kVariants[2]) == 57344.0);
  CHECK(refValue(kVariants[0], 0x08) == 0.015625);
  CHECK(refValue(kVariants[0], 0x01) == 0.001953125);
  CHECK(refValue(kVariants[2], 0x04) == std::ldexp(1.0, -14));
  CHECK(refValue(kVariants[2], 0x01) == std::ldexp(1.0, -16));
  auto e4 = parse("e4m3");
  auto e5 = parse("e5m2");
  CHECK(quantizeOne(*e4, 448.f) == 448.f);
  CHECK(quantizeOne(*e5, 57344.f) == 57344.f);
  CHECK(quantizeOne(*e4, 0.001953125f) == 0.001953125f);
  CHECK(quantizeOne(*e5, std::ldexp(1.f, -16)) == std::ldexp(1.f, -16));
}

TEST_CASE("Fp8: every finite code round-trips through quantize and encode") {
  for (const Variant& v : kVariants) {
    CAPTURE(v.spec);
    FormatPtr f = parse(v.spec);
    std::vector<float> values;
    std::vector<unsigned> codes;
    for (unsigned c = 0; c < 256; ++c) {
      double x = refValue(v, c);
      if (!std::isfinite(x)) continue;
      values.push_back(static_cast<float>(x));
      codes.push_back(c);
    }
    std::vector<float> q = quantizeValues(*f, values);
    std::vector<uint8_t> enc = encodeValues(*f, values);
    for (size_t i = 0; i < values.size(); ++i) {
      CAPTURE(codes[i]);
      CHECK(bitsOf(q[i]) == bitsOf(values[i]));  // keeps the sign of -0
      CHECK(enc[i] == codes[i]);
    }
  }
}

TEST_CASE("Fp8: NaN and Inf codes and inputs") {
  for (const Variant& v : kVariants) {
    CAPTURE(v.spec);
    FormatPtr f = parse(v.spec);
    const float inf = std::numeric_limits<float>::infinity();
    const float nan = std::numeric_limits<float>::quiet_NaN();
    std::vector<float> q = quantizeValues(*f, {nan, -nan, inf, -inf});
    std::vector<uint8_t> c = encodeValues(*f, {nan, -nan, inf, -inf});
    CHECK(std::isnan(q[0]));
    CHECK(std::isnan(q[1]));
    CHECK(c[0] == 0x7F);  // S.1111.111 / S.11111.11: NaN in both layouts
    CHECK(c[1] == 0xFF);
    CHECK(sameFloat(q[2], overflowResult(v, false)));
    CHECK(sameFloat(q[3], overflowResult(v, true)));
    if (v.specials == RefSpecials::Ieee && !v.saturate) {
      CHECK(c[2] == 0x7C);
      CHECK(c[3] == 0xFC);
    }
    // NaN codes of E5M2 other than all-ones decode to NaN and re-encode to the canonical one.
    if (v.specials == RefSpecials::Ieee) {
      std::vector<float> all = decodeAllCodes(*f, v.spec);
      CHECK(encodeValues(*f, {all[0x7D], all[0x7E], all[0xFD]}) == std::vector<uint8_t>{0x7F, 0x7F, 0xFF});
    }
  }
}

TEST_CASE("Fp8: every midpoint between neighbouring codes rounds to the even code") {
  for (const Variant& v : kVariants) {
    CAPTURE(v.spec);
    FormatPtr f = parse(v.spec);
    // Non-negative finite codes in increasing order (codes 0x00..0x7F are monotone).
    std::vector<unsigned> pos;
    for (unsigned c = 0; c < 128; ++c) {
      if (std::isfinite(refValue(v, c))) pos.push_back(c);
    }
    std::vector<float> inputs;
    std::vector<float> expected;
    for (size_t i = 0; i + 1 < pos.size(); ++i) {
      double lo = refValue(v, pos[i]), hi = refValue(v, pos[i + 1]);
      REQUIRE(lo < hi);
      auto mid = static_cast<float>((lo + hi) / 2);  // few significant bits: exact in float
      REQUIRE(static_cast<double>(mid) == (lo + hi) / 2);
      unsigned evenCode = (pos[i] & 1u) == 0 ? pos[i] : pos[i + 1];
      auto even = static_cast<float>(refValue(v, evenCode));
      for (float sign : {1.f, -1.f}) {
        inputs.push_back(sign * mid);
        expected.push_back(sign * even);
        inputs.push_back(sign * std::nextafter(mid, 0.f));
        expected.push_back(sign * static_cast<float>(lo));
        inputs.push_back(sign * std::nextafter(mid, 1e30f));
        expected.push_back(sign * static_cast<float>(hi));
      }
    }
    std::vector<float> q = quantizeValues(*f, inputs);
    for (size_t i = 0; i < inputs.size(); ++i) {
      CAPTURE(inputs[i]);
      CHECK(sameFloat(q[i], expected[i]));
    }
  }
}

TEST_CASE("Fp8: overflow and underflow boundaries") {
  for (const Variant& v : kVariants) {
    CAPTURE(v.spec);
    FormatPtr f = parse(v.spec);
    auto mx = static_cast<float>(refMax(v));
    // Top binade ulp: 2^(exponent of max - m).
    float ulp = std::ldexp(1.f, std::ilogb(mx) - v.m);
    float tie = mx + ulp / 2;  // halfway to the first value above max
    bool maxIsEven = (static_cast<uint32_t>(std::ldexp(mx, v.m - std::ilogb(mx))) & 1u) == 0;
    float minSub = std::ldexp(1.f, 1 - v.bias - v.m);
    std::vector<float> in = {tie, std::nextafter(tie, 0.f), std::nextafter(tie, 1e30f),
                             -std::nextafter(tie, 1e30f), 1e30f, -3.4e38f,
                             minSub / 2, std::nextafter(minSub / 2, 1.f), -minSub / 2,
                             std::nextafter(minSub / 2, 0.f), 1e-30f};
    std::vector<float> q = quantizeValues(*f, in);
    CHECK(sameFloat(q[0], maxIsEven ? mx : overflowResult(v, false)));
    CHECK(q[1] == mx);
    CHECK(sameFloat(q[2], overflowResult(v, false)));
    CHECK(sameFloat(q[3], overflowResult(v, true)));
    CHECK(sameFloat(q[4], overflowResult(v, false)));
    CHECK(sameFloat(q[5], overflowResult(v, true)));
    CHECK(bitsOf(q[6]) == bitsOf(0.f));  // tie between 0 and min subnormal: even is 0
    CHECK(q[7] == minSub);
    CHECK(bitsOf(q[8]) == bitsOf(-0.f));
    CHECK(bitsOf(q[9]) == bitsOf(0.f));
    CHECK(bitsOf(q[10]) == bitsOf(0.f));
  }
}

TEST_CASE("Fp8: E4M3 table of FORMATS.md §10.1") {
  struct Row {
    float in;
    float out;
    uint8_t code;
  };
  auto f = parse("e4m3");
  for (Row r : {Row{1.0f, 1.0f, 0x38}, Row{0.1f, 0.1015625f, 0x1D}, Row{-0.1f, -0.1015625f, 0x9D},
                Row{0.3f, 0.3125f, 0x2A}, Row{3.0f, 3.0f, 0x44}, Row{448.f, 448.f, 0x7E},
                Row{460.f, 448.f, 0x7E}, Row{464.f, 448.f, 0x7E}, Row{470.f, 448.f, 0x7E},
                Row{std::numeric_limits<float>::infinity(), 448.f, 0x7E},
                Row{0.015625f, 0.015625f, 0x08}, Row{0.001953125f, 0.001953125f, 0x01},
                Row{std::ldexp(1.f, -10), 0.f, 0x00},
                Row{1.5f * std::ldexp(1.f, -10), std::ldexp(1.f, -9), 0x01}}) {
    CAPTURE(r.in);
    CHECK(quantizeOne(*f, r.in) == r.out);
    CHECK(encodeValues(*f, {r.in})[0] == r.code);
  }
  auto ns = parse("e4m3:sat=0");
  CHECK(std::isnan(quantizeOne(*ns, 470.f)));
  CHECK(encodeValues(*ns, {470.f})[0] == 0x7F);
  CHECK(encodeValues(*ns, {std::numeric_limits<float>::infinity()})[0] == 0x7F);
  CHECK(quantizeOne(*ns, 464.f) == 448.f);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  CHECK(std::isnan(quantizeOne(*f, nan)));
  CHECK((encodeValues(*f, {nan})[0] & 0x7F) == 0x7F);
}

TEST_CASE("Fp8: E5M2 table of FORMATS.md §10.2") {
  struct Row {
    float in;
    float out;
    uint8_t code;
  };
  auto f = parse("e5m2");
  for (Row r : {Row{1.0f, 1.0f, 0x3C}, Row{0.1f, 0.09375f, 0x2E}, Row{-0.1f, -0.09375f, 0xAE},
                Row{0.3f, 0.3125f, 0x35}, Row{3.0f, 3.0f, 0x42}, Row{57344.f, 57344.f, 0x7B},
                Row{60000.f, 57344.f, 0x7B}, Row{61440.f, 57344.f, 0x7B},
                Row{std::ldexp(1.f, -14), std::ldexp(1.f, -14), 0x04},
                Row{std::ldexp(1.f, -16), std::ldexp(1.f, -16), 0x01},
                Row{std::ldexp(1.f, -17), 0.f, 0x00}}) {
    CAPTURE(r.in);
    CHECK(quantizeOne(*f, r.in) == r.out);
    CHECK(encodeValues(*f, {r.in})[0] == r.code);
  }
  auto ns = parse("e5m2:sat=0");
  CHECK(quantizeOne(*ns, 61440.f) == std::numeric_limits<float>::infinity());
  CHECK(encodeValues(*ns, {61440.f})[0] == 0x7C);
  CHECK(quantizeOne(*ns, std::numeric_limits<float>::infinity()) ==
        std::numeric_limits<float>::infinity());
  CHECK(encodeValues(*ns, {std::numeric_limits<float>::infinity()})[0] == 0x7C);
  CHECK(quantizeOne(*ns, 60000.f) == 57344.f);
}

TEST_CASE("Fp8: statistics count saturated, flushed and non-finite inputs") {
  QuantStats st;
  auto f = parse("e4m3");
  quantizeValues(*f, {1000.f, -1000.f, 1e-5f, 0.f, 1.f, 448.f, 460.f,
                      std::numeric_limits<float>::infinity()},
                 &st);
  CHECK(st.count == 8);
  CHECK(st.saturated == 2);  // 460 rounds to 448 (not clamped); Inf counts as non-finite
  CHECK(st.flushed == 1);
  CHECK(st.nonFinite == 1);
}

TEST_CASE("Fp8: decode(encode(x)) == quantize(x) bit for bit, for both roundings") {
  Rng rng(3);
  Tensor x = Tensor::randn({4, 1000}, rng, 0.f, 50.f);
  x.data<float>()[0] = std::numeric_limits<float>::quiet_NaN();
  x.data<float>()[1] = -std::numeric_limits<float>::infinity();
  x.data<float>()[2] = -0.f;
  x.data<float>()[3] = 1e-9f;
  for (const char* spec : {"e4m3", "e4m3:sat=0", "e5m2", "e5m2:sat=0", "e4m3:round=stochastic",
                           "e5m2:sat=0,round=stochastic"}) {
    CAPTURE(spec);
    FormatPtr f = parse(spec);
    QuantizeArgs args{.seed = 5, .stream = 9, .step = 2};
    std::vector<float> q = f->quantize(x, args).toVector<float>();
    Encoded e = f->encode(x, args);
    CHECK(e.codes.dtype() == DType::U8);
    CHECK(e.shape == Shape{4, 1000});
    CHECK(e.packedBytes() == 4000);
    std::vector<float> d = f->decode(e).toVector<float>();
    bool same = true;
    for (size_t i = 0; i < q.size(); ++i) same = same && bitsOf(q[i]) == bitsOf(d[i]);
    CHECK(same);
  }
}
