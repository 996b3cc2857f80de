// S2FP8 kernels (Cambier et al., ICLR 2020; FORMATS.md §4, §10.5; docs/formats.md "S2FP8").
//
// Statistics: log2|x| = e + f with the exponent e exact and f = log2 m, m in [sqrt(1/2),
// sqrt(2)), from the atanh series ln m = 2 (s + s^3/3 + ... + s^11/11), s = (m-1)/(m+1),
// |s| <= 0.1716 (truncation error < 1e-10; float rounding dominates). Sums are integers, so the
// mean does not depend on thread count or ISA.
//
// Payload: the E5M2 code of RNE(2^beta |x|^alpha) is found without evaluating the map per
// element. The map is increasing in |x|, so "rounds to code >= k" is |x| >= T_k where T_k is the
// preimage of the midpoint between codes k-1 and k (ties go to the even code), computed once
// per call in double precision and rounded up to the next float. The code is then a search in a
// sorted table of 123 thresholds: exact RNE of the real-valued map, identical on every ISA.
// Decoded magnitudes (v_k 2^-beta)^(1/alpha) come from a 124-entry table in double precision.
#include "formats/detail/S2fp8Kernels.h"

// GCC 12 reports -Wuninitialized inside the AVX-512 intrinsic headers (_mm512_undefined_*,
// GCC PR 105593); the warnings point into the header, so they are silenced for it alone.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <algorithm>
#include <bit>
#include <cfloat>
#include <cmath>

#include "formats/detail/Chunked.h"

namespace mantissa::formats::detail {

namespace {

constexpr uint32_t kSqrt2Bits = 0x3fb504f3u;  // float nearest sqrt(2)
constexpr float kTwoOverLn2 = 2.88539008177792681f;
constexpr float kC3 = 1.0f / 3, kC5 = 1.0f / 5, kC7 = 1.0f / 7, kC9 = 1.0f / 9, kC11 = 1.0f / 11;

struct LogParts {
  int32_t e;
  float f;
};

/// The scalar form of the vector code below, operation for operation.
LogParts logParts(float a) {
  int32_t adj = 0;
  if (a < 0x1p-126f) {  // fp32 subnormal: normalise (exact)
    a *= 0x1p23f;
    adj = -23;
  }
  uint32_t b = std::bit_cast<uint32_t>(a);
  int32_t e = static_cast<int32_t>(b >> 23) - 127 + adj;
  uint32_t mb = (b & 0x7fffffu) | 0x3f800000u;
  if (mb > kSqrt2Bits) {
    mb -= 0x00800000u;  // m / 2
    e += 1;
  }
  float m = std::bit_cast<float>(mb);
  float s = (m - 1.0f) / (m + 1.0f);
  float z = s * s;
  float p = std::fma(z, kC11, kC9);
  p = std::fma(p, z, kC7);
  p = std::fma(p, z, kC5);
  p = std::fma(p, z, kC3);
  p = std::fma(p, z, 1.0f);
  return {e, (s * kTwoOverLn2) * p};
}

S2fp8Scan combine(const S2fp8Scan& a, const S2fp8Scan& b) {
  S2fp8Scan r;
  r.count = a.count + b.count;
  r.nonFinite = a.nonFinite + b.nonFinite;
  r.sumExponent = a.sumExponent + b.sumExponent;
  r.sumFraction = a.sumFraction + b.sumFraction;
  r.minAbs = std::min(a.minAbs, b.minAbs);
  r.maxAbs = std::max(a.maxAbs, b.maxAbs);
  return r;
}

S2fp8Scan scanScalar(const float* x, int64_t n) {
  S2fp8Scan r;
  for (int64_t i = 0; i < n; ++i) {
    float a = std::fabs(x[i]);
    if (!(a <= FLT_MAX)) {
      r.nonFinite += 1;
      continue;
    }
    if (a == 0.0f) continue;
    r.count += 1;
    r.minAbs = std::min(r.minAbs, a);
    r.maxAbs = std::max(r.maxAbs, a);
    LogParts lp = logParts(a);
    r.sumExponent += lp.e;
    r.sumFraction += static_cast<int32_t>(std::nearbyint(lp.f * 0x1p31f));
  }
  return r;
}

constexpr uint32_t kQuietNan = 0x7fc00000u;

int64_t mapScalar(const float* x, float* out, uint8_t* codes, int64_t n, const S2fp8Tables& t) {
  int64_t flushed = 0;
  const float* tb = t.thresholds + 1;
  for (int64_t i = 0; i < n; ++i) {
    uint32_t u = std::bit_cast<uint32_t>(x[i]);
    uint32_t sign = u & 0x80000000u;
    float a = std::bit_cast<float>(u & 0x7fffffffu);
    if (!(a <= FLT_MAX)) {
      bool nan = a != a;
      if (out) out[i] = std::bit_cast<float>(sign | (nan ? kQuietNan : 0x7f800000u));
      if (codes) codes[i] = static_cast<uint8_t>((sign >> 24) | (nan ? 0x7f : 0x7c));
      continue;
    }
    int c = static_cast<int>(std::upper_bound(tb, tb + 123, a) - tb);
    if (c == 0 && a != 0.0f) flushed += 1;
    if (out) out[i] = std::bit_cast<float>(sign | std::bit_cast<uint32_t>(t.values[c]));
    if (codes) codes[i] = static_cast<uint8_t>((sign >> 24) | static_cast<uint32_t>(c));
  }
  return flushed;
}

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl")

inline __mmask16 tailMask(int64_t left) {
  return left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1u);
}

S2fp8Scan scanAvx512(const float* x, int64_t n) {
  const __m512 absMask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  const __m512 fmax = _mm512_set1_ps(FLT_MAX), zero = _mm512_setzero_ps();
  const __m512 one = _mm512_set1_ps(1.0f);
  __m512 vmin = _mm512_set1_ps(INFINITY), vmax = zero;
  __m512i sumE = _mm512_setzero_si512(), sumF0 = _mm512_setzero_si512(), sumF1 = sumF0;
  int64_t count = 0, bad = 0;
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 m = tailMask(n - i);
    __m512 a = _mm512_and_ps(_mm512_maskz_loadu_ps(m, x + i), absMask);
    __mmask16 nf = _mm512_mask_cmp_ps_mask(m, a, fmax, _CMP_NLE_UQ);
    bad += __builtin_popcount(nf);
    __mmask16 nz = _mm512_mask_cmp_ps_mask(m & ~nf, a, zero, _CMP_GT_OQ);
    count += __builtin_popcount(nz);
    vmin = _mm512_mask_min_ps(vmin, nz, vmin, a);
    vmax = _mm512_mask_max_ps(vmax, nz, vmax, a);
    // Same steps as logParts().
    __mmask16 sub = _mm512_mask_cmp_ps_mask(nz, a, _mm512_set1_ps(0x1p-126f), _CMP_LT_OQ);
    a = _mm512_mask_mul_ps(a, sub, a, _mm512_set1_ps(0x1p23f));
    __m512i b = _mm512_castps_si512(a);
    __m512i e = _mm512_sub_epi32(_mm512_srli_epi32(b, 23), _mm512_set1_epi32(127));
    e = _mm512_mask_sub_epi32(e, sub, e, _mm512_set1_epi32(23));
    __m512i mb = _mm512_or_si512(_mm512_and_si512(b, _mm512_set1_epi32(0x7fffff)),
                                 _mm512_set1_epi32(0x3f800000));
    __mmask16 big = _mm512_cmpgt_epi32_mask(mb, _mm512_set1_epi32(static_cast<int>(kSqrt2Bits)));
    mb = _mm512_mask_sub_epi32(mb, big, mb, _mm512_set1_epi32(0x00800000));
    e = _mm512_mask_add_epi32(e, big, e, _mm512_set1_epi32(1));
    __m512 mm = _mm512_castsi512_ps(mb);
    __m512 s = _mm512_div_ps(_mm512_sub_ps(mm, one), _mm512_add_ps(mm, one));
    __m512 z = _mm512_mul_ps(s, s);
    __m512 p = _mm512_fmadd_ps(z, _mm512_set1_ps(kC11), _mm512_set1_ps(kC9));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(kC7));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(kC5));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(kC3));
    p = _mm512_fmadd_ps(p, z, one);
    __m512 f = _mm512_mul_ps(_mm512_mul_ps(s, _mm512_set1_ps(kTwoOverLn2)), p);
    __m512i fq = _mm512_cvt_roundps_epi32(_mm512_mul_ps(f, _mm512_set1_ps(0x1p31f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    fq = _mm512_maskz_mov_epi32(nz, fq);
    sumE = _mm512_mask_add_epi32(sumE, nz, sumE, e);
    sumF0 = _mm512_add_epi64(sumF0, _mm512_cvtepi32_epi64(_mm512_castsi512_si256(fq)));
    sumF1 = _mm512_add_epi64(sumF1, _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(fq, 1)));
  }
  S2fp8Scan r;
  r.count = count;
  r.nonFinite = bad;
  r.sumExponent = _mm512_reduce_add_epi64(_mm512_add_epi64(
      _mm512_cvtepi32_epi64(_mm512_castsi512_si256(sumE)),
      _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(sumE, 1))));
  r.sumFraction = _mm512_reduce_add_epi64(_mm512_add_epi64(sumF0, sumF1));
  if (count > 0) {
    r.minAbs = _mm512_reduce_min_ps(vmin);
    r.maxAbs = _mm512_reduce_max_ps(vmax);
  }
  return r;
}

/// Threshold tables for the vectorised binary search: level j holds T[s + 2s i] for s = 64 >> j.
struct SearchRegs {
  __m512 t64, t32, t16, t8, t4, t2a, t2b, t1[4];
  __m512 v[8];  // values[0..127] in 8 registers
};

inline SearchRegs loadRegs(const S2fp8Tables& t) {
  SearchRegs r;
  alignas(64) float buf[64];
  auto level = [&](int s) {
    int count = 128 / (2 * s);
    for (int i = 0; i < 64; ++i) buf[i] = i < count ? t.thresholds[s + 2 * s * i] : INFINITY;
  };
  r.t64 = _mm512_set1_ps(t.thresholds[64]);
  level(32);
  r.t32 = _mm512_load_ps(buf);
  level(16);
  r.t16 = _mm512_load_ps(buf);
  level(8);
  r.t8 = _mm512_load_ps(buf);
  level(4);
  r.t4 = _mm512_load_ps(buf);
  level(2);
  r.t2a = _mm512_load_ps(buf);
  r.t2b = _mm512_load_ps(buf + 16);
  level(1);
  for (int k = 0; k < 4; ++k) r.t1[k] = _mm512_load_ps(buf + 16 * k);
  for (int k = 0; k < 8; ++k) r.v[k] = _mm512_load_ps(t.values + 16 * k);
  return r;
}

/// Lookup of a 64-entry table held in four registers with 6-bit indices.
inline __m512 lookup64(const __m512 t[4], __m512i idx) {
  __m512 lo = _mm512_permutex2var_ps(t[0], idx, t[1]);
  __m512 hi = _mm512_permutex2var_ps(t[2], idx, t[3]);
  __mmask16 upper = _mm512_test_epi32_mask(idx, _mm512_set1_epi32(32));
  return _mm512_mask_blend_ps(upper, lo, hi);
}

int64_t mapAvx512(const float* x, float* out, uint8_t* codes, int64_t n, const S2fp8Tables& t) {
  const SearchRegs R = loadRegs(t);
  const __m512 absMask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  const __m512i signMask = _mm512_set1_epi32(static_cast<int>(0x80000000u));
  const __m512 fmax = _mm512_set1_ps(FLT_MAX), zero = _mm512_setzero_ps();
  int64_t flushed = 0;
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 m = tailMask(n - i);
    __m512 v = _mm512_maskz_loadu_ps(m, x + i);
    __m512 a = _mm512_and_ps(v, absMask);
    __m512i sign = _mm512_and_si512(_mm512_castps_si512(v), signMask);
    __mmask16 nf = _mm512_cmp_ps_mask(a, fmax, _CMP_NLE_UQ);
    // Binary search: c = max{k : a >= T[k]}, one level per bit of c (MSB first).
    __m512i c = _mm512_setzero_si512();
    auto step = [&](__m512 cand, int bit) {
      __mmask16 ge = _mm512_cmp_ps_mask(a, cand, _CMP_GE_OQ);
      c = _mm512_mask_or_epi32(c, ge, c, _mm512_set1_epi32(bit));
    };
    step(R.t64, 64);
    step(_mm512_permutexvar_ps(_mm512_srli_epi32(c, 6), R.t32), 32);
    step(_mm512_permutexvar_ps(_mm512_srli_epi32(c, 5), R.t16), 16);
    step(_mm512_permutexvar_ps(_mm512_srli_epi32(c, 4), R.t8), 8);
    step(_mm512_permutexvar_ps(_mm512_srli_epi32(c, 3), R.t4), 4);
    step(_mm512_permutex2var_ps(R.t2a, _mm512_srli_epi32(c, 2), R.t2b), 2);
    step(lookup64(R.t1, _mm512_srli_epi32(c, 1)), 1);
    __mmask16 nz = _mm512_cmp_ps_mask(a, zero, _CMP_NEQ_OQ) & ~nf;
    flushed += __builtin_popcount(nz & _mm512_cmpeq_epi32_mask(c, _mm512_setzero_si512()) & m);
    if (out) {
      __m512 lo = lookup64(R.v, c);
      __m512 hi = lookup64(R.v + 4, c);
      __m512 val = _mm512_mask_blend_ps(_mm512_test_epi32_mask(c, _mm512_set1_epi32(64)), lo, hi);
      __m512i bits = _mm512_or_si512(_mm512_castps_si512(val), sign);
      // Non-finite: NaN -> quiet NaN with its sign, Inf stays.
      __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
      __m512i special = _mm512_or_si512(sign, _mm512_set1_epi32(0x7f800000));
      special = _mm512_mask_or_epi32(special, nan, special, _mm512_set1_epi32(0x00400000));
      bits = _mm512_mask_mov_epi32(bits, nf, special);
      _mm512_mask_storeu_ps(out + i, m, _mm512_castsi512_ps(bits));
    }
    if (codes) {
      __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
      __m512i code = _mm512_mask_mov_epi32(c, nf, _mm512_set1_epi32(0x7c));
      code = _mm512_mask_mov_epi32(code, nan, _mm512_set1_epi32(0x7f));
      code = _mm512_or_si512(code, _mm512_srli_epi32(sign, 24));
      _mm512_mask_cvtepi32_storeu_epi8(codes + i, m, code);
    }
  }
  return flushed;
}

#pragma GCC pop_options

}  // namespace

double S2fp8Scan::meanLog2() const {
  if (count == 0) return 0.0;
  double sum = static_cast<double>(sumExponent) + std::ldexp(static_cast<double>(sumFraction), -31);
  return sum / static_cast<double>(count);
}

float s2fp8Log2(float a) {
  LogParts lp = logParts(std::fabs(a));
  return static_cast<float>(static_cast<double>(lp.e) + static_cast<double>(lp.f));
}

double e5m2Magnitude(int k) {
  if (k < 4) return std::ldexp(static_cast<double>(k), -16);  // 0 and subnormals m * 2^-16
  return std::ldexp(1.0 + (k & 3) / 4.0, (k >> 2) - 15);
}

S2fp8Tables s2fp8Tables(float alpha, float beta) {
  S2fp8Tables t;
  const double a = alpha, b = beta;
  // x for which the map gives y: (y 2^-b)^(1/a).
  auto preimage = [&](double y) {
    return a == 1.0 ? y * std::exp2(-b) : std::exp2((std::log2(y) - b) / a);
  };
  t.thresholds[0] = 0.0f;
  t.values[0] = 0.0f;
  for (int k = 1; k < kE5M2FiniteCodes; ++k) {
    double mid = 0.5 * (e5m2Magnitude(k - 1) + e5m2Magnitude(k));
    double X = preimage(mid);
    float f = static_cast<float>(X);
    if (static_cast<double>(f) < X) f = std::nextafter(f, INFINITY);
    // An exact tie rounds to the even code: it reaches code k only when k is even.
    if (static_cast<double>(f) == X && (k & 1)) f = std::nextafter(f, INFINITY);
    t.thresholds[k] = f;
    t.values[k] = static_cast<float>(preimage(e5m2Magnitude(k)));
  }
  for (int k = kE5M2FiniteCodes; k < 128; ++k) {
    t.thresholds[k] = INFINITY;
    t.values[k] = 0.0f;
  }
  return t;
}

S2fp8Scan s2fp8Scan(const float* x, int64_t n, KernelIsa isa) {
  return reduceChunks(
      n, kKernelChunk, S2fp8Scan{},
      [&](int64_t b, int64_t e) {
        return isa == KernelIsa::Avx512 ? scanAvx512(x + b, e - b) : scanScalar(x + b, e - b);
      },
      combine);
}

int64_t s2fp8Map(const float* x, float* out, uint8_t* codes, int64_t n, const S2fp8Tables& t,
                 KernelIsa isa) {
  return reduceChunks(
      n, kKernelChunk, int64_t{0},
      [&](int64_t b, int64_t e) {
        float* o = out ? out + b : nullptr;
        uint8_t* c = codes ? codes + b : nullptr;
        return isa == KernelIsa::Avx512 ? mapAvx512(x + b, o, c, e - b, t)
                                        : mapScalar(x + b, o, c, e - b, t);
      },
      [](int64_t a, int64_t b) { return a + b; });
}

}  // namespace mantissa::formats::detail
