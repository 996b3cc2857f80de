// S2FP8 kernels (Cambier et al., ICLR 2020; FORMATS.md §4, §10.5; docs/formats.md "S2FP8").
//
// Statistics: log2|x| = e + f with the exponent e exact and f = log2 m, m in [0.75, 1.5) (the
// vgetmantps interval), from the atanh series ln m = 2 (s + s^3/3 + ... + s^9/9),
// s = (m-1)/(m+1) in [-1/7, 1/5] (truncation error < 6e-9; float rounding dominates, the tested
// max error is ~7e-8). Sums are integers, so the mean does not depend on thread count or ISA.
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

constexpr uint32_t kOneAndHalfBits = 0x3fc00000u;  // 1.5f
constexpr float kTwoOverLn2 = 2.88539008177792681f;
constexpr float kC3 = 1.0f / 3, kC5 = 1.0f / 5, kC7 = 1.0f / 7, kC9 = 1.0f / 9;

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
  if (mb >= kOneAndHalfBits) {
    mb -= 0x00800000u;  // m / 2, so m is in [0.75, 1.5) as vgetmantps gives it
    e += 1;
  }
  float m = std::bit_cast<float>(mb);
  float s = (m - 1.0f) / (m + 1.0f);
  float z = s * s;
  float p = std::fma(z, kC9, kC7);
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
    r.sumFraction += static_cast<int32_t>(std::nearbyint(lp.f * 0x1p24f));
  }
  return r;
}

constexpr uint32_t kQuietNan = 0x7fc00000u;

int64_t mapScalar(const float* x, float* out, uint8_t* codes, int64_t n, const S2fp8Tables& t) {
  int64_t flushed = 0;
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
    // Branchless binary search over the 128-entry table (entries 124..127 are +Inf): the
    // same c = max{k : a >= T[k]} as the vector path.
    int c = 0;
    for (int step = 64; step > 0; step >>= 1) c += a >= t.thresholds[c + step] ? step : 0;
    if (c == 0 && a != 0.0f) flushed += 1;
    if (out) out[i] = std::bit_cast<float>(sign | std::bit_cast<uint32_t>(t.values[c]));
    if (codes) codes[i] = static_cast<uint8_t>((sign >> 24) | static_cast<uint32_t>(c));
  }
  return flushed;
}

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl")

/// Runs body(i, full, mask) over [0, n) in vectors of 16: unmasked full vectors, then a tail.
/// (Masks built in general registers inside the loop are slow on some AVX-512 cores; counters
/// are kept in vector lanes for the same reason.)
template <class Body>
inline void vectorLoop(int64_t n, const Body& body) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) body(i, std::true_type{}, __mmask16(0xffff));
  if (i < n) body(i, std::false_type{}, static_cast<__mmask16>((1u << (n - i)) - 1u));
}

inline __m512i countLanes(__m512i c, __mmask16 k) {
  return _mm512_mask_sub_epi32(c, k, c, _mm512_set1_epi32(-1));
}

inline __m512i widenAdd(__m512i acc64, __m512i v32, int half) {
  __m256i h = half == 0 ? _mm512_castsi512_si256(v32) : _mm512_extracti64x4_epi64(v32, 1);
  return _mm512_add_epi64(acc64, _mm512_cvtepi32_epi64(h));
}

S2fp8Scan scanAvx512(const float* x, int64_t n) {
  const __m512 absMask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  const __m512 fmax = _mm512_set1_ps(FLT_MAX), zero = _mm512_setzero_ps();
  const __m512 one = _mm512_set1_ps(1.0f);
  __m512 vmin = _mm512_set1_ps(INFINITY), vmax = zero;
  __m512i count = _mm512_setzero_si512(), bad = count, sumE = count, sumF = count;
  __m512i sumF0 = count, sumF1 = count;
  int pending = 0;  // vectors summed in sumF since it was last widened (|f 2^24| < 2^23)
  vectorLoop(n, [&](int64_t i, auto full, __mmask16 m) {
    __m512 v = decltype(full)::value ? _mm512_loadu_ps(x + i) : _mm512_maskz_loadu_ps(m, x + i);
    __m512 a = _mm512_and_ps(v, absMask);
    bad = countLanes(bad, _mm512_cmp_ps_mask(a, fmax, _CMP_NLE_UQ));
    __mmask16 fin = _mm512_cmp_ps_mask(a, fmax, _CMP_LE_OQ);
    __mmask16 nz = _mm512_mask_cmp_ps_mask(fin, a, zero, _CMP_GT_OQ);  // tail lanes are 0
    count = countLanes(count, nz);
    vmin = _mm512_mask_min_ps(vmin, nz, vmin, a);
    vmax = _mm512_mask_max_ps(vmax, nz, vmax, a);
    // Same result as logParts(): vgetmantps/vgetexpps normalise subnormals exactly; the
    // mantissa in [0.75, 1.5) belongs to exponent getexp + 1 when it is below 1.
    __m512 mm = _mm512_getmant_ps(a, _MM_MANT_NORM_p75_1p5, _MM_MANT_SIGN_zero);
    __m512i e = _mm512_cvtps_epi32(_mm512_getexp_ps(a));
    e = _mm512_mask_add_epi32(e, _mm512_cmp_ps_mask(mm, one, _CMP_LT_OQ), e, _mm512_set1_epi32(1));
    __m512 s = _mm512_div_ps(_mm512_sub_ps(mm, one), _mm512_add_ps(mm, one));
    __m512 z = _mm512_mul_ps(s, s);
    __m512 p = _mm512_fmadd_ps(z, _mm512_set1_ps(kC9), _mm512_set1_ps(kC7));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(kC5));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(kC3));
    p = _mm512_fmadd_ps(p, z, one);
    __m512 f = _mm512_mul_ps(_mm512_mul_ps(s, _mm512_set1_ps(kTwoOverLn2)), p);
    __m512i fq = _mm512_cvt_roundps_epi32(_mm512_mul_ps(f, _mm512_set1_ps(0x1p24f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    sumE = _mm512_mask_add_epi32(sumE, nz, sumE, e);
    sumF = _mm512_mask_add_epi32(sumF, nz, sumF, fq);
    if (++pending == 128) {
      sumF0 = widenAdd(sumF0, sumF, 0);
      sumF1 = widenAdd(sumF1, sumF, 1);
      sumF = _mm512_setzero_si512();
      pending = 0;
    }
  });
  sumF0 = widenAdd(sumF0, sumF, 0);
  sumF1 = widenAdd(sumF1, sumF, 1);
  S2fp8Scan r;
  r.count = _mm512_reduce_add_epi32(count);
  r.nonFinite = _mm512_reduce_add_epi32(bad);
  // Per-lane exponent sums stay below 2^31 within one chunk (kKernelChunk / 16 * 150).
  r.sumExponent = _mm512_reduce_add_epi64(widenAdd(widenAdd(_mm512_setzero_si512(), sumE, 0), sumE, 1));
  r.sumFraction = _mm512_reduce_add_epi64(_mm512_add_epi64(sumF0, sumF1));
  if (r.count > 0) {
    r.minAbs = _mm512_reduce_min_ps(vmin);
    r.maxAbs = _mm512_reduce_max_ps(vmax);
  }
  return r;
}

/// Threshold tables for the vectorised binary search, as integers: bits(T) - 1, so that
/// "a >= T" for non-negative floats is the sign bit of (bits(T) - 1 - bits(a)). The search uses
/// no mask registers: a compare-to-mask feeding a masked op costs many cycles of latency on
/// some AVX-512 cores, and the search is a chain of 7 dependent levels.
/// Level for step s holds T[s + 2 s i], indexed by i = c >> log2(2 s).
struct SearchRegs {
  __m512i t64, t32, t16, t8, t4, t2a, t2b, t1[4];
  __m512 v[8];  // values[0..127] in 8 registers
};

inline SearchRegs loadRegs(const S2fp8Tables& t) {
  SearchRegs r;
  alignas(64) int32_t buf[64];
  auto level = [&](int s) {
    int count = 128 / (2 * s);
    for (int i = 0; i < 64; ++i) {
      float th = i < count ? t.thresholds[s + 2 * s * i] : INFINITY;
      buf[i] = static_cast<int32_t>(std::bit_cast<uint32_t>(th)) - 1;
    }
  };
  level(64);
  r.t64 = _mm512_set1_epi32(buf[0]);
  level(32);
  r.t32 = _mm512_load_si512(buf);
  level(16);
  r.t16 = _mm512_load_si512(buf);
  level(8);
  r.t8 = _mm512_load_si512(buf);
  level(4);
  r.t4 = _mm512_load_si512(buf);
  level(2);
  r.t2a = _mm512_load_si512(buf);
  r.t2b = _mm512_load_si512(buf + 16);
  level(1);
  for (int k = 0; k < 4; ++k) r.t1[k] = _mm512_load_si512(buf + 16 * k);
  for (int k = 0; k < 8; ++k) r.v[k] = _mm512_load_ps(t.values + 16 * k);
  return r;
}

/// All-ones lanes where bit `b` of idx is set, zero elsewhere (no mask register).
inline __m512i bitLanes(__m512i idx, int b) {
  return _mm512_srai_epi32(_mm512_slli_epi32(idx, 31 - b), 31);
}

/// Lookup of a 64-entry table held in four registers with 6-bit indices.
inline __m512i lookup64(const __m512i t[4], __m512i idx) {
  __m512i lo = _mm512_permutex2var_epi32(t[0], idx, t[1]);
  __m512i hi = _mm512_permutex2var_epi32(t[2], idx, t[3]);
  return _mm512_ternarylogic_epi32(bitLanes(idx, 5), hi, lo, 0xCA);  // bit 5 ? hi : lo
}

/// 1 in lanes where a >= T, from tm1 = bits(T) - 1 and ab = bits(a) (both non-negative).
inline __m512i geBit(__m512i tm1, __m512i ab) {
  return _mm512_srli_epi32(_mm512_sub_epi32(tm1, ab), 31);
}

inline __m512i nextLevel(__m512i idx, __m512i tm1, __m512i ab) {
  return _mm512_add_epi32(_mm512_add_epi32(idx, idx), geBit(tm1, ab));
}

template <bool kSpecials>
int64_t mapAvx512(const float* x, float* out, uint8_t* codes, int64_t n, const S2fp8Tables& t) {
  const SearchRegs R = loadRegs(t);
  const __m512i vi[8] = {_mm512_castps_si512(R.v[0]), _mm512_castps_si512(R.v[1]),
                         _mm512_castps_si512(R.v[2]), _mm512_castps_si512(R.v[3]),
                         _mm512_castps_si512(R.v[4]), _mm512_castps_si512(R.v[5]),
                         _mm512_castps_si512(R.v[6]), _mm512_castps_si512(R.v[7])};
  const __m512i absMask = _mm512_set1_epi32(0x7fffffff);
  const __m512i signMask = _mm512_set1_epi32(static_cast<int>(0x80000000u));
  const __m512 fmax = _mm512_set1_ps(FLT_MAX), zero = _mm512_setzero_ps();
  const __m512 t1 = _mm512_set1_ps(t.thresholds[1]);
  __m512i flushed = _mm512_setzero_si512();
  vectorLoop(n, [&](int64_t i, auto full, __mmask16 m) {
    constexpr bool kFull = decltype(full)::value;
    __m512 v = kFull ? _mm512_loadu_ps(x + i) : _mm512_maskz_loadu_ps(m, x + i);
    __m512i vb = _mm512_castps_si512(v);
    __m512i ab = _mm512_and_si512(vb, absMask);
    __m512i sign = _mm512_and_si512(vb, signMask);
    // Binary search: c = max{k : a >= T[k]}, one level per bit of c (MSB first).
    __m512i c = geBit(R.t64, ab);
    c = nextLevel(c, _mm512_permutexvar_epi32(c, R.t32), ab);
    c = nextLevel(c, _mm512_permutexvar_epi32(c, R.t16), ab);
    c = nextLevel(c, _mm512_permutexvar_epi32(c, R.t8), ab);
    c = nextLevel(c, _mm512_permutexvar_epi32(c, R.t4), ab);
    c = nextLevel(c, _mm512_permutex2var_epi32(R.t2a, c, R.t2b), ab);
    c = nextLevel(c, lookup64(R.t1, c), ab);
    // Flushed: 0 < |x| < T[1] (false for NaN/Inf and for the zero lanes past the tail).
    __m512 a = _mm512_castsi512_ps(ab);
    flushed = countLanes(flushed, _mm512_mask_cmp_ps_mask(_mm512_cmp_ps_mask(a, t1, _CMP_LT_OQ), a,
                                                          zero, _CMP_GT_OQ));
    if (out) {
      // Off the search chain, so mask-register selects are fine here.
      __mmask16 b5 = _mm512_test_epi32_mask(c, _mm512_set1_epi32(32));
      __mmask16 b6 = _mm512_test_epi32_mask(c, _mm512_set1_epi32(64));
      __m512i lo = _mm512_mask_blend_epi32(b5, _mm512_permutex2var_epi32(vi[0], c, vi[1]),
                                           _mm512_permutex2var_epi32(vi[2], c, vi[3]));
      __m512i hi = _mm512_mask_blend_epi32(b5, _mm512_permutex2var_epi32(vi[4], c, vi[5]),
                                           _mm512_permutex2var_epi32(vi[6], c, vi[7]));
      __m512i val = _mm512_mask_blend_epi32(b6, lo, hi);
      __m512i bits = _mm512_or_si512(val, sign);
      if constexpr (kSpecials) {
        // Non-finite: NaN -> quiet NaN with its sign, Inf stays.
        __mmask16 nf = _mm512_cmp_ps_mask(a, fmax, _CMP_NLE_UQ);
        __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        __m512i special = _mm512_or_si512(sign, _mm512_set1_epi32(0x7f800000));
        special = _mm512_mask_or_epi32(special, nan, special, _mm512_set1_epi32(0x00400000));
        bits = _mm512_mask_mov_epi32(bits, nf, special);
      }
      if constexpr (kFull) {
        _mm512_storeu_si512(out + i, bits);
      } else {
        _mm512_mask_storeu_epi32(out + i, m, bits);
      }
    }
    if (codes) {
      __m512i code = c;
      if constexpr (kSpecials) {
        __mmask16 nf = _mm512_cmp_ps_mask(a, fmax, _CMP_NLE_UQ);
        __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        code = _mm512_mask_mov_epi32(code, nf, _mm512_set1_epi32(0x7c));
        code = _mm512_mask_mov_epi32(code, nan, _mm512_set1_epi32(0x7f));
      }
      code = _mm512_or_si512(code, _mm512_srli_epi32(sign, 24));
      __m128i c8 = _mm512_cvtepi32_epi8(code);
      if constexpr (kFull) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(codes + i), c8);
      } else {
        _mm_mask_storeu_epi8(codes + i, m, c8);
      }
    }
  });
  return _mm512_reduce_add_epi32(flushed);
}

#pragma GCC pop_options

}  // namespace

double S2fp8Scan::meanLog2() const {
  if (count == 0) return 0.0;
  double sum = static_cast<double>(sumExponent) + std::ldexp(static_cast<double>(sumFraction), -24);
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
                 KernelIsa isa, bool mayHaveNonFinite) {
  return reduceChunks(
      n, kKernelChunk, int64_t{0},
      [&](int64_t b, int64_t e) {
        float* o = out ? out + b : nullptr;
        uint8_t* c = codes ? codes + b : nullptr;
        if (isa != KernelIsa::Avx512) return mapScalar(x + b, o, c, e - b, t);
        return mayHaveNonFinite ? mapAvx512<true>(x + b, o, c, e - b, t)
                                : mapAvx512<false>(x + b, o, c, e - b, t);
      },
      [](int64_t a, int64_t b) { return a + b; });
}

}  // namespace mantissa::formats::detail
