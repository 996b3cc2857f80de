#include <doctest/doctest.h>

#include <immintrin.h>

#include <atomic>
#include <cmath>
#include <limits>

#include "core/CpuFeatures.h"
#include "core/Rng.h"
#include "formats/Bfloat16.h"
#include "formats/Fp16.h"
#include "formats/Fp32.h"
#include "tests/formats/FormatTestUtil.h"

using namespace mantissa;
using namespace mantissa::formats;
using namespace mantissa::formats::testutil;

namespace {

constexpr uint32_t kQuietNan = 0x7FC00000u;

// Independent bf16 RNE in integer arithmetic: keep the upper half, look at the dropped half.
uint32_t refBf16(uint32_t u) {
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (u & 0x80000000u) | kQuietNan;
  uint32_t hi = u >> 16, lo = u & 0xFFFFu;
  if (lo > 0x8000u || (lo == 0x8000u && (hi & 1u))) ++hi;  // carries into the exponent: Inf
  return hi << 16;
}

// fp16 reference for 8 floats: the F16C conversion instruction with RNE, NaNs made canonical.
__m256i refFp16x8(__m256 x) {
  __m256 y = _mm256_cvtph_ps(_mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
  __m256i canon = _mm256_or_si256(
      _mm256_and_si256(_mm256_castps_si256(x), _mm256_set1_epi32(INT32_MIN)),
      _mm256_set1_epi32(static_cast<int>(kQuietNan)));
  return _mm256_blendv_epi8(_mm256_castps_si256(y), canon, _mm256_castps_si256(nan));
}

// refBf16 for 8 floats in AVX2 integer arithmetic (the same steps, lane by lane).
__m256i refBf16x8(__m256i u) {
  __m256i hi = _mm256_srli_epi32(u, 16);
  __m256i lo = _mm256_and_si256(u, _mm256_set1_epi32(0xFFFF));
  __m256i half = _mm256_set1_epi32(0x8000);
  // lo and hi are below 2^17, so the signed compares order them correctly.
  __m256i above = _mm256_cmpgt_epi32(lo, half);
  __m256i odd = _mm256_and_si256(hi, _mm256_set1_epi32(1));
  __m256i tieOdd = _mm256_and_si256(_mm256_cmpeq_epi32(lo, half),
                                    _mm256_cmpeq_epi32(odd, _mm256_set1_epi32(1)));
  __m256i up = _mm256_or_si256(above, tieOdd);  // all-ones lanes: subtracting -1 adds 1
  __m256i r = _mm256_slli_epi32(_mm256_sub_epi32(hi, up), 16);
  __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7FFFFFFF)),
                                   _mm256_set1_epi32(0x7F800000));
  __m256i canon = _mm256_or_si256(_mm256_and_si256(u, _mm256_set1_epi32(INT32_MIN)),
                                  _mm256_set1_epi32(static_cast<int>(kQuietNan)));
  return _mm256_blendv_epi8(r, canon, nan);
}

// Mismatching 32-bit lanes of two vectors.
int64_t mismatches(__m256i a, __m256i b) {
  return __builtin_popcount(~static_cast<unsigned>(_mm256_movemask_ps(
      _mm256_castsi256_ps(_mm256_cmpeq_epi32(a, b)))) & 0xFFu);
}

// The fp16 grid through the generic grid quantizer (what fp16:round=stochastic uses), RNE.
struct GridFp16 final : formats::detail::GridFormat {
  GridFp16() : GridFormat(Fp16::fp16Grid(), Rounding::NearestEven) {}
  std::string spec() const override { return "fp16-grid"; }
  double bitsPerValue(const Shape&, int64_t) const override { return 16; }
  Encoded encode(const Tensor&, const QuantizeArgs&, FormatState*) const override { return {}; }
  Tensor decode(const Encoded&) const override { return {}; }
};

}  // namespace

TEST_CASE("bf16/fp16: all 2^32 float32 patterns match independent references") {
  // One pass over every float32 bit pattern, in cache-sized chunks through the public quantize:
  // bf16 against the integer RNE above (refBf16, vectorised as refBf16x8), fp16 (F16C path)
  // and the shared grid quantizer with the fp16 grid against the F16C instruction.
  constexpr int64_t kChunk = int64_t{1} << 19;
  Bfloat16 bf16;
  Fp16 fp16;
  GridFp16 fp16Grid;
  Tensor in = Tensor::empty({kChunk});
  auto* src = reinterpret_cast<uint32_t*>(in.data<float>());
  int64_t badBf16 = 0, badFp16 = 0, badGrid = 0;
  uint32_t firstBad = 0;
  bool recorded = false;
  for (uint64_t base = 0; base < (uint64_t{1} << 32); base += kChunk) {
    for (int64_t i = 0; i < kChunk; ++i) src[i] = static_cast<uint32_t>(base + i);
    Tensor qb = bf16.quantize(in, {});
    Tensor qh = fp16.quantize(in, {});
    Tensor qg = fp16Grid.quantize(in, {});
    const auto* b = reinterpret_cast<const __m256i*>(qb.data<float>());
    const auto* h = reinterpret_cast<const __m256i*>(qh.data<float>());
    const auto* g = reinterpret_cast<const __m256i*>(qg.data<float>());
    const auto* x = reinterpret_cast<const __m256i*>(src);
    int64_t cb = 0, ch = 0, cg = 0;
    for (int64_t v = 0; v < kChunk / 8; ++v) {
      __m256i xi = _mm256_loadu_si256(x + v);
      __m256i rh = refFp16x8(_mm256_castsi256_ps(xi));
      cb += mismatches(refBf16x8(xi), _mm256_loadu_si256(b + v));
      ch += mismatches(rh, _mm256_loadu_si256(h + v));
      cg += mismatches(rh, _mm256_loadu_si256(g + v));
    }
    if (cb + ch + cg > 0 && !recorded) {
      for (int64_t i = 0; i < kChunk && !recorded; ++i) {
        if (bitsOf(qb.data<float>()[i]) != refBf16(src[i]) ||
            bitsOf(qh.data<float>()[i]) != bitsOf(qg.data<float>()[i])) {
          firstBad = src[i];
          recorded = true;
        }
      }
    }
    badBf16 += cb;
    badFp16 += ch;
    badGrid += cg;
  }
  CAPTURE(firstBad);
  CHECK(badBf16 == 0);
  CHECK(badFp16 == 0);
  CHECK(badGrid == 0);
}

TEST_CASE("bf16: the vectorised test reference agrees with the scalar one") {
  Rng rng(12);
  std::vector<uint32_t> u = {0x3F808000u, 0x3F818000u, 0x7F7F8000u, 0x7F800001u, 0xFFC00001u,
                             0x00008000u, 0x00018000u, 0x80000000u};
  while (u.size() < 4096) u.push_back(rng.nextU32());
  int64_t bad = 0;
  for (size_t i = 0; i < u.size(); i += 8) {
    alignas(32) uint32_t out[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(out),
                       refBf16x8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(&u[i]))));
    for (int j = 0; j < 8; ++j) bad += out[j] != refBf16(u[i + j]);
  }
  CHECK(bad == 0);
}

TEST_CASE("bf16: table of FORMATS.md §10.3") {
  Bfloat16 f;
  struct Row {
    float in;
    uint16_t code;
    float value;
  };
  for (Row r : {Row{1.0f, 0x3F80, 1.0f}, Row{floatOf(0x3DCCCCCDu), 0x3DCD, 0.10009765625f},
                Row{3.0f, 0x4040, 3.0f}, Row{1.00390625f, 0x3F80, 1.0f},
                Row{1.01171875f, 0x3F82, 1.015625f},
                Row{3.3895313892515355e38f, 0x7F7F, 3.3895313892515355e38f}}) {
    CAPTURE(r.in);
    CHECK(quantizeOne(f, r.in) == r.value);
    Encoded e = f.encode(Tensor::fromVector({r.in}), {});
    CHECK(e.codes.dtype() == DType::U16);
    CHECK(e.codes.toVector<uint16_t>()[0] == r.code);
  }
  // Just above the largest finite value, rounding carries into the Inf pattern.
  CHECK(quantizeOne(f, floatOf(0x7F7F8000u)) == std::numeric_limits<float>::infinity());  // tie, odd
  CHECK(quantizeOne(f, floatOf(0x7F7F7FFFu)) == floatOf(0x7F7F0000u));
  // Subnormals are kept (the AVX-512 BF16 instruction would flush this to zero).
  CHECK(quantizeOne(f, 0x1p-133f) == 0x1p-133f);
  CHECK(quantizeOne(f, 0x1p-134f) == 0.f);  // tie with 0: even
}

TEST_CASE("fp16: max, min normal, subnormals and overflow") {
  Fp16 f;
  CHECK(quantizeOne(f, 65504.f) == 65504.f);
  CHECK(quantizeOne(f, 65519.f) == 65504.f);
  CHECK(quantizeOne(f, 65520.f) == std::numeric_limits<float>::infinity());  // tie → even → 2^16
  CHECK(quantizeOne(f, 0x1p-14f) == 0x1p-14f);
  CHECK(quantizeOne(f, 0x1p-24f) == 0x1p-24f);
  CHECK(quantizeOne(f, 0x1p-25f) == 0.f);
  CHECK(quantizeOne(f, 0x1.8p-25f) == 0x1p-24f);
  CHECK(quantizeOne(f, 0.1f) == 0.0999755859375f);
  Encoded e = f.encode(Tensor::fromVector({1.f, -2.f, 65504.f, 0x1p-24f}), {});
  CHECK(e.codes.toVector<uint16_t>() == std::vector<uint16_t>{0x3C00, 0xC000, 0x7BFF, 0x0001});
}

TEST_CASE("bf16/fp16: NaN stays NaN, Inf stays Inf, decode(encode(x)) == quantize(x)") {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> v = {floatOf(0x7F800001u), floatOf(0xFFFFFFFFu), inf, -inf, -0.f, 1e-40f,
                          -7e-45f, 1e38f, 70000.f, -65520.f, 0.3f};
  Rng rng(2);
  for (int i = 0; i < 2000; ++i) v.push_back(floatOf(rng.nextU32()));
  for (const char* spec : {"bf16", "fp16", "bf16:round=stochastic", "fp16:round=stochastic"}) {
    CAPTURE(spec);
    FormatPtr f = parse(spec);
    QuantizeArgs args{.seed = 1, .stream = 2, .step = 3};
    Tensor x = Tensor::fromVector(v);
    std::vector<float> q = f->quantize(x, args).toVector<float>();
    CHECK(bitsOf(q[0]) == kQuietNan);
    CHECK(bitsOf(q[1]) == (0x80000000u | kQuietNan));
    CHECK(q[2] == inf);
    CHECK(q[3] == -inf);
    CHECK(bitsOf(q[4]) == 0x80000000u);
    Encoded e = f->encode(x, args);
    CHECK(e.packedBytes() == 2 * v.size());
    std::vector<float> d = f->decode(e).toVector<float>();
    bool same = true;
    for (size_t i = 0; i < v.size(); ++i) same = same && bitsOf(d[i]) == bitsOf(q[i]);
    CHECK(same);
  }
}

TEST_CASE("fp16: the AVX2 (x86-64-v3) and AVX-512 F16C paths agree") {
  std::vector<float> v = {std::numeric_limits<float>::quiet_NaN(), floatOf(0xFF800001u),
                          std::numeric_limits<float>::infinity(), 65520.f, -1e-8f, -0.f};
  Rng rng(9);
  while (v.size() < 100003) v.push_back(floatOf(rng.nextU32()));
  const auto n = static_cast<int64_t>(v.size());
  std::vector<float> a(v.size()), b(v.size());
  QuantStats sa, sb;
  formats::detail::fp16RoundTrip(v.data(), a.data(), n, false, &sa);
  if (cpuFeatures().avx512) {
    formats::detail::fp16RoundTrip(v.data(), b.data(), n, true, &sb);
    bool same = true;
    for (size_t i = 0; i < v.size(); ++i) same = same && bitsOf(a[i]) == bitsOf(b[i]);
    CHECK(same);
    CHECK(sa.saturated == sb.saturated);
    CHECK(sa.flushed == sb.flushed);
    CHECK(sa.nonFinite == sb.nonFinite);
  }
  // Either way, the AVX2 path against the F16C reference.
  int64_t bad = 0;
  for (size_t i = 0; i + 8 <= v.size(); i += 8) {
    __m256i ref = refFp16x8(_mm256_loadu_ps(&v[i]));
    bad += mismatches(ref, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(&a[i])));
  }
  CHECK(bad == 0);
  CHECK(bitsOf(a[0]) == kQuietNan);
  CHECK(bitsOf(a[1]) == (0x80000000u | kQuietNan));
}

TEST_CASE("bf16/fp16: statistics") {
  QuantStats st;
  quantizeValues(Fp16(), {1e6f, -1e6f, 1e-9f, 0.f, 1.f, std::numeric_limits<float>::quiet_NaN()},
                 &st);
  CHECK(st.count == 6);
  CHECK(st.saturated == 2);  // overflowed to ±Inf
  CHECK(st.flushed == 1);
  CHECK(st.nonFinite == 1);
  QuantStats sb;
  quantizeValues(Bfloat16(), {3.4e38f, 1e-45f, 2.f}, &sb);
  CHECK(sb.saturated == 1);
  CHECK(sb.flushed == 1);
}

TEST_CASE("fp32: identity, no copy") {
  Fp32 f;
  Tensor x = Tensor::fromVector({1.f, std::numeric_limits<float>::quiet_NaN(), 1e-45f});
  Tensor q = f.quantize(x, {});
  CHECK(q.isSameAs(x));
  CHECK(f.isIdentity());
  Encoded e = f.encode(x, {});
  CHECK(e.packedBytes() == 12);
  std::vector<float> d = f.decode(e).toVector<float>();
  CHECK(d[0] == 1.f);
  CHECK(std::isnan(d[1]));
  CHECK(d[2] == 1e-45f);
}
