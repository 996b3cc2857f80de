// S2FP8 kernels (Cambier et al., ICLR 2020; FORMATS.md §4, §10.5; docs/formats.md "S2FP8").
//
// Statistics: sum log2|x| = sum e + log2(prod m) with |x| = m 2^e, m in [1, 2) (vgetexpps and
// vgetmantps, both exact, subnormals included). Exponents are summed exactly; the mantissas are
// multiplied in double, element i of a chunk into lane i % 16, and each lane's product is kept
// in [1, 2^512) by moving its exponent into the exponent sum (exact: scaling by a power of two
// does not change the rounding of later products). Only the 16 lane products go through log2
// (libm, in double). The result is exact up to 2^-53 per product (~1e-12 in log2 per lane), so
// the mean is far more accurate than one FP32 log2 per element, and it is bit for bit the same
// on every ISA and thread count: the same products in the same order, chunks combined in order.
//
// Payload: the E5M2 code of RNE(2^beta |x|^alpha) is found without evaluating the map per
// element. The map is increasing in |x|, so "rounds to code >= k" is |x| >= T_k where T_k is the
// preimage of the midpoint between codes k-1 and k (ties go to the even code), computed once
// per call in double precision and rounded up to the next float. The code is then a search in a
// sorted table of 123 thresholds: exact RNE of the real-valued map, identical on every ISA.
// Decoded magnitudes (v_k 2^-beta)^(1/alpha) come from a 124-entry table in double precision.
#include "formats/detail/S2fp8Kernels.h"

#include "core/Immintrin.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cfloat>
#include <cmath>
#include <type_traits>

#include "core/CpuFeatures.h"
#include "formats/detail/Chunked.h"

namespace mantissa::formats::detail {

namespace {

constexpr int kLanes = 16;
/// Vectors (of kLanes elements) between two renormalisations of the lane products: each factor
/// is below 2, so a product stays below 2^512.
constexpr int kRenormEvery = 512;

/// |x| = m 2^e with m in [1, 2), exactly (subnormals normalised), for finite x != 0: what
/// vgetmantps (interval [1, 2)) and vgetexpps give.
inline void splitMantissa(float a, float& m, int& e) {
  int fe;
  float fm = std::frexp(a, &fe);  // [0.5, 1)
  m = fm * 2.0f;
  e = fe - 1;
}

/// Moves each lane product's exponent into `exps`, leaving the product in [1, 2).
inline void renormalise(double* prod, int64_t& exps) {
  for (int l = 0; l < kLanes; ++l) {
    int e;
    double m = std::frexp(prod[l], &e);
    prod[l] = m * 2.0;
    exps += e - 1;
  }
}

/// The scan's result from its per-lane parts (shared by both ISAs, so they agree bit for bit).
void finishScan(S2fp8Scan& r, double* prod) {
  renormalise(prod, r.sumExponent);
  r.sumLog2Mantissa = 0.0;
  for (int l = 0; l < kLanes; ++l) r.sumLog2Mantissa += std::log2(prod[l]);
}

S2fp8Scan combine(const S2fp8Scan& a, const S2fp8Scan& b) {
  S2fp8Scan r;
  r.count = a.count + b.count;
  r.nonFinite = a.nonFinite + b.nonFinite;
  r.sumExponent = a.sumExponent + b.sumExponent;
  r.sumLog2Mantissa = a.sumLog2Mantissa + b.sumLog2Mantissa;
  r.minAbs = std::min(a.minAbs, b.minAbs);
  r.maxAbs = std::max(a.maxAbs, b.maxAbs);
  return r;
}

S2fp8Scan scanScalar(const float* x, int64_t n) {
  S2fp8Scan r;
  double prod[kLanes];
  std::fill(prod, prod + kLanes, 1.0);
  for (int64_t i = 0; i < n; ++i) {
    float a = std::fabs(x[i]);
    if (!(a <= FLT_MAX)) {
      r.nonFinite += 1;
    } else if (a != 0.0f) {
      r.count += 1;
      r.minAbs = std::min(r.minAbs, a);
      r.maxAbs = std::max(r.maxAbs, a);
      float m;
      int e;
      splitMantissa(a, m, e);
      r.sumExponent += e;
      prod[i % kLanes] *= static_cast<double>(m);
    }
    if ((i + 1) % (int64_t{kLanes} * kRenormEvery) == 0) renormalise(prod, r.sumExponent);
  }
  finishScan(r, prod);
  return r;
}

constexpr uint32_t kQuietNan = 0x7fc00000u;

int64_t mapScalar(const float* x, float* out, uint8_t* codes, int64_t n, const S2fp8Tables& t) {
  int64_t nonZero = 0;
  for (int64_t i = 0; i < n; ++i) {
    uint32_t u = std::bit_cast<uint32_t>(x[i]);
    uint32_t sign = u & 0x80000000u;
    float a = std::bit_cast<float>(u & 0x7fffffffu);
    if (!(a <= FLT_MAX)) {
      bool nan = a != a;
      if (out) out[i] = std::bit_cast<float>(sign | (nan ? kQuietNan : 0x7f800000u));
      if (codes) codes[i] = static_cast<uint8_t>((sign >> 24) | (nan ? 0x7f : 0x7c));
      nonZero += 1;
      continue;
    }
    // Branchless binary search over the 128-entry table (entries 124..127 are +Inf): the
    // same c = max{k : a >= T[k]} as the vector path.
    int c = 0;
    for (int step = 64; step > 0; step >>= 1) c += a >= t.thresholds[c + step] ? step : 0;
    nonZero += c != 0;
    if (out) out[i] = std::bit_cast<float>(sign | std::bit_cast<uint32_t>(t.values[c]));
    if (codes) codes[i] = static_cast<uint8_t>((sign >> 24) | static_cast<uint32_t>(c));
  }
  return nonZero;
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

/// renormalise() on the lane products held in two vectors of 8 doubles (lanes 0-7 in p0, 8-15 in
/// p1), the exponents added lane-wise into exps.
inline void renormaliseAvx512(__m512d& p0, __m512d& p1, __m512d& exps) {
  exps = _mm512_add_pd(exps, _mm512_add_pd(_mm512_getexp_pd(p0), _mm512_getexp_pd(p1)));
  p0 = _mm512_getmant_pd(p0, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_zero);
  p1 = _mm512_getmant_pd(p1, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_zero);
}

S2fp8Scan scanAvx512(const float* x, int64_t n) {
  const __m512 absMask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  const __m512 fmax = _mm512_set1_ps(FLT_MAX), zero = _mm512_setzero_ps();
  const __m512 one = _mm512_set1_ps(1.0f);
  __m512 vmin = _mm512_set1_ps(INFINITY), vmax = zero;
  // Exponents (|e| <= 149) summed in float lanes: exact while a lane holds fewer than 2^24 / 149
  // elements, which a kernel chunk guarantees (kKernelChunk / 16 = 4096).
  __m512 sumE = zero;
  __m512i count = _mm512_setzero_si512(), bad = count;
  __m512d p0 = _mm512_set1_pd(1.0), p1 = p0, pexp = _mm512_setzero_pd();
  int pending = 0;
  vectorLoop(n, [&](int64_t i, auto full, __mmask16 m) {
    __m512 v = decltype(full)::value ? _mm512_loadu_ps(x + i) : _mm512_maskz_loadu_ps(m, x + i);
    __m512 a = _mm512_and_ps(v, absMask);
    bad = countLanes(bad, _mm512_cmp_ps_mask(a, fmax, _CMP_NLE_UQ));
    __mmask16 fin = _mm512_cmp_ps_mask(a, fmax, _CMP_LE_OQ);
    __mmask16 nz = _mm512_mask_cmp_ps_mask(fin, a, zero, _CMP_GT_OQ);  // tail lanes are 0
    count = countLanes(count, nz);
    vmin = _mm512_mask_min_ps(vmin, nz, vmin, a);
    vmax = _mm512_mask_max_ps(vmax, nz, vmax, a);
    sumE = _mm512_mask_add_ps(sumE, nz, sumE, _mm512_getexp_ps(a));
    // Lanes that do not count multiply by 1.
    __m512 mm = _mm512_mask_getmant_ps(one, nz, a, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_zero);
    __m256 mmHi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(mm), 1));
    p0 = _mm512_mul_pd(p0, _mm512_cvtps_pd(_mm512_castps512_ps256(mm)));
    p1 = _mm512_mul_pd(p1, _mm512_cvtps_pd(mmHi));
    if (++pending == kRenormEvery) {
      renormaliseAvx512(p0, p1, pexp);
      pending = 0;
    }
  });
  S2fp8Scan r;
  r.count = _mm512_reduce_add_epi32(count);
  r.nonFinite = _mm512_reduce_add_epi32(bad);
  alignas(64) float e[16];
  alignas(64) double prod[16], pe[8];
  _mm512_store_ps(e, sumE);
  _mm512_store_pd(prod, p0);
  _mm512_store_pd(prod + 8, p1);
  _mm512_store_pd(pe, pexp);
  for (int l = 0; l < 16; ++l) r.sumExponent += static_cast<int64_t>(e[l]);
  for (int l = 0; l < 8; ++l) r.sumExponent += static_cast<int64_t>(pe[l]);
  finishScan(r, prod);
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

/// 2 idx + [a >= T]. With VBMI2 one vpshldd does the shift and the insert: it is written as
/// inline assembly so that the region's target stays AVX-512 F/BW/DQ/VL (the compiler never
/// emits VBMI2 on its own) and the instruction only runs where cpuFeatures() found VBMI2. A
/// mask-register form (compare, masked add) measured slower than both on the search chain.
template <bool kVbmi2>
inline __m512i nextLevel(__m512i idx, __m512i tm1, __m512i ab) {
  __m512i d = _mm512_sub_epi32(tm1, ab);
  if constexpr (kVbmi2) {
    __m512i r;
    asm("vpshldd $1, %2, %1, %0" : "=v"(r) : "v"(idx), "v"(d));  // (idx << 1) | (d >> 31)
    return r;
  } else {
    return _mm512_add_epi32(_mm512_add_epi32(idx, idx), _mm512_srli_epi32(d, 31));
  }
}

/// c = max{k : a >= T[k]} for 16 magnitudes (bits ab), one level per bit of c (MSB first).
template <bool kVbmi2>
inline __m512i searchCodes(const SearchRegs& R, __m512i ab) {
  __m512i c = geBit(R.t64, ab);
  c = nextLevel<kVbmi2>(c, _mm512_permutexvar_epi32(c, R.t32), ab);
  c = nextLevel<kVbmi2>(c, _mm512_permutexvar_epi32(c, R.t16), ab);
  c = nextLevel<kVbmi2>(c, _mm512_permutexvar_epi32(c, R.t8), ab);
  c = nextLevel<kVbmi2>(c, _mm512_permutexvar_epi32(c, R.t4), ab);
  c = nextLevel<kVbmi2>(c, _mm512_permutex2var_epi32(R.t2a, c, R.t2b), ab);
  return nextLevel<kVbmi2>(c, lookup64(R.t1, c), ab);
}

/// Decoded magnitudes values[0..127] as high and low 16-bit halves, four registers each, and the
/// word permutes that interleave looked-up halves back into floats.
struct ValueRegs {
  __m512i hi[4], lo[4];
  __m512i interLo, interHi;  // elements 0-15 and 16-31
};

inline ValueRegs loadValueRegs(const S2fp8Tables& t) {
  ValueRegs r;
  alignas(64) uint16_t hi[128], lo[128], il[32], ih[32];
  for (int k = 0; k < 128; ++k) {
    uint32_t b = std::bit_cast<uint32_t>(t.values[k]);
    hi[k] = static_cast<uint16_t>(b >> 16);
    lo[k] = static_cast<uint16_t>(b);
  }
  for (int j = 0; j < 16; ++j) {
    il[2 * j] = static_cast<uint16_t>(j);
    il[2 * j + 1] = static_cast<uint16_t>(32 + j);
    ih[2 * j] = static_cast<uint16_t>(16 + j);
    ih[2 * j + 1] = static_cast<uint16_t>(48 + j);
  }
  for (int k = 0; k < 4; ++k) {
    r.hi[k] = _mm512_load_si512(hi + 32 * k);
    r.lo[k] = _mm512_load_si512(lo + 32 * k);
  }
  r.interLo = _mm512_load_si512(il);
  r.interHi = _mm512_load_si512(ih);
  return r;
}

/// Non-finite lanes of one vector: NaN -> quiet NaN with its sign, Inf stays.
inline __m512i withSpecials(__m512i bits, __m512i sign, __mmask16 nf, __mmask16 nan) {
  __m512i special = _mm512_or_si512(sign, _mm512_set1_epi32(0x7f800000));
  special = _mm512_mask_or_epi32(special, nan, special, _mm512_set1_epi32(0x00400000));
  return _mm512_mask_mov_epi32(bits, nf, special);
}

// ---- The same search on 16-bit keys, 32 elements per vector ----------------------------------
//
// With h = the top 16 bits of |x| and H_k those of T_k: T_k <= |x| implies H_k <= h, and H_k < h
// implies T_k < |x|. So c16 = max{k : H_k <= h} is the code c = max{k : T_k <= |x|} or, when
// H_c16 == h and the low 16 bits of |x| are below those of T_c16, one more than it -- provided
// no two thresholds that a finite |x| can reach share their top 16 bits (else the 32-bit search
// runs; s2fp8WordSearchApplies). Half the lanes per operation of the 32-bit search, and the
// codes come out as the 16-bit indices the value lookup takes.

/// Level tables as in SearchRegs, with H - 1 in 16-bit lanes ("h >= H" is the sign bit of
/// H - 1 - h: both are at most 0x7fff), plus the top and low halves of all 128 thresholds for
/// the correction.
struct WordSearchRegs {
  __m512i t64, t32, t16, t8, t4, t2, t1a, t1b;
  __m512i hiT[4], loT[4];
};

inline WordSearchRegs loadWordRegs(const S2fp8Tables& t) {
  WordSearchRegs r;
  alignas(64) uint16_t buf[64];
  auto level = [&](int s) {
    int count = 128 / (2 * s);
    for (int i = 0; i < 64; ++i) {
      uint32_t h = i < count ? std::bit_cast<uint32_t>(t.thresholds[s + 2 * s * i]) >> 16 : 0x7f80u;
      buf[i] = static_cast<uint16_t>(h - 1);
    }
  };
  level(64);
  r.t64 = _mm512_set1_epi16(static_cast<int16_t>(buf[0]));
  level(32);
  r.t32 = _mm512_load_si512(buf);
  level(16);
  r.t16 = _mm512_load_si512(buf);
  level(8);
  r.t8 = _mm512_load_si512(buf);
  level(4);
  r.t4 = _mm512_load_si512(buf);
  level(2);
  r.t2 = _mm512_load_si512(buf);
  level(1);
  r.t1a = _mm512_load_si512(buf);
  r.t1b = _mm512_load_si512(buf + 32);
  alignas(64) uint16_t hi[128], lo[128];
  for (int k = 0; k < 128; ++k) {
    uint32_t b = std::bit_cast<uint32_t>(t.thresholds[k]);
    hi[k] = static_cast<uint16_t>(b >> 16);
    lo[k] = static_cast<uint16_t>(b);
  }
  for (int k = 0; k < 4; ++k) {
    r.hiT[k] = _mm512_load_si512(hi + 32 * k);
    r.loT[k] = _mm512_load_si512(lo + 32 * k);
  }
  return r;
}

template <bool kVbmi2>
inline __m512i nextLevelWords(__m512i idx, __m512i tm1, __m512i h) {
  __m512i d = _mm512_sub_epi16(tm1, h);
  if constexpr (kVbmi2) {
    __m512i r;
    asm("vpshldw $1, %2, %1, %0" : "=v"(r) : "v"(idx), "v"(d));  // (idx << 1) | (d >> 15)
    return r;
  } else {
    return _mm512_add_epi16(_mm512_add_epi16(idx, idx), _mm512_srli_epi16(d, 15));
  }
}

/// Words table[idx] of a 128-entry table in four registers (idx < 128).
inline __m512i lookupWords128(const __m512i* t, __m512i idx, __mmask32 bit6) {
  return _mm512_mask_blend_epi16(bit6, _mm512_permutex2var_epi16(t[0], idx, t[1]),
                                 _mm512_permutex2var_epi16(t[2], idx, t[3]));
}

/// Codes of 32 magnitudes given as top halves h and low halves l (16-bit lanes).
template <bool kVbmi2>
inline __m512i searchCodesWords(const WordSearchRegs& R, __m512i h, __m512i l) {
  __m512i c = _mm512_srli_epi16(_mm512_sub_epi16(R.t64, h), 15);
  c = nextLevelWords<kVbmi2>(c, _mm512_permutexvar_epi16(c, R.t32), h);
  c = nextLevelWords<kVbmi2>(c, _mm512_permutexvar_epi16(c, R.t16), h);
  c = nextLevelWords<kVbmi2>(c, _mm512_permutexvar_epi16(c, R.t8), h);
  c = nextLevelWords<kVbmi2>(c, _mm512_permutexvar_epi16(c, R.t4), h);
  c = nextLevelWords<kVbmi2>(c, _mm512_permutexvar_epi16(c, R.t2), h);
  c = nextLevelWords<kVbmi2>(c, _mm512_permutex2var_epi16(R.t1a, c, R.t1b), h);
  // c = max{k : H_k <= h}; one less where the top halves tie and the low half is below T_c's.
  const __mmask32 bit6 = _mm512_test_epi16_mask(c, _mm512_set1_epi16(64));
  const __mmask32 tie = _mm512_cmpeq_epi16_mask(h, lookupWords128(R.hiT, c, bit6));
  const __mmask32 below = _mm512_mask_cmplt_epu16_mask(tie, l, lookupWords128(R.loT, c, bit6));
  return _mm512_mask_sub_epi16(c, below, c, _mm512_set1_epi16(1));
}

/// The map, 32 elements a step. kWords: the 16-bit search (s2fp8WordSearchApplies(t) must hold),
/// else two 32-bit searches whose codes are then packed to words. Either way the codes end up as
/// 32 word lanes, and one pass of word permutes looks up the decoded values of both vectors.
template <bool kVbmi2, bool kWords, bool kSpecials, bool kOut, bool kCodes>
int64_t mapAvx512(const float* x, float* out, uint8_t* codes, int64_t n, const S2fp8Tables& t) {
  const std::conditional_t<kWords, WordSearchRegs, SearchRegs> R = [&] {
    if constexpr (kWords) {
      return loadWordRegs(t);
    } else {
      return loadRegs(t);
    }
  }();
  [[maybe_unused]] const ValueRegs V = loadValueRegs(t);
  const __m512i absMask = _mm512_set1_epi32(0x7fffffff);
  const __m512i signMask = _mm512_set1_epi32(static_cast<int>(0x80000000u));
  const __m512 fmax = _mm512_set1_ps(FLT_MAX);
  alignas(64) uint16_t hiIdx[32], loIdx[32];  // words: top / low half of each dword, v0 then v1
  for (int j = 0; j < 16; ++j) {
    hiIdx[j] = static_cast<uint16_t>(2 * j + 1);
    hiIdx[16 + j] = static_cast<uint16_t>(32 + 2 * j + 1);
    loIdx[j] = static_cast<uint16_t>(2 * j);
    loIdx[16 + j] = static_cast<uint16_t>(32 + 2 * j);
  }
  const __m512i packHi = _mm512_load_si512(hiIdx), packLo = _mm512_load_si512(loIdx);
  const __m512i oneW = _mm512_set1_epi16(1);
  // Non-zero codes per word lane: at most kKernelChunk / 32 = 2048 per call, no overflow.
  __m512i nonZero = _mm512_setzero_si512();
  auto step = [&](int64_t i, auto full, __mmask16 m0, __mmask16 m1) {
    constexpr bool kFull = decltype(full)::value;
    __m512 v0 = kFull ? _mm512_loadu_ps(x + i) : _mm512_maskz_loadu_ps(m0, x + i);
    __m512 v1 = kFull ? _mm512_loadu_ps(x + i + 16) : _mm512_maskz_loadu_ps(m1, x + i + 16);
    __m512i ab0 = _mm512_and_si512(_mm512_castps_si512(v0), absMask);
    __m512i ab1 = _mm512_and_si512(_mm512_castps_si512(v1), absMask);
    __m512i c;  // codes of v0 (words 0-15) and v1 (words 16-31)
    if constexpr (kWords) {
      __m512i h = _mm512_permutex2var_epi16(ab0, packHi, ab1);
      __m512i l = _mm512_permutex2var_epi16(ab0, packLo, ab1);
      c = searchCodesWords<kVbmi2>(R, h, l);
    } else {
      // Codes are below 128: the low word of each dword holds them.
      c = _mm512_permutex2var_epi16(searchCodes<kVbmi2>(R, ab0), packLo,
                                    searchCodes<kVbmi2>(R, ab1));
    }
    // Lanes with a non-zero code (NaN and Inf reach code 127; the zero lanes past the tail 0).
    nonZero = _mm512_add_epi16(nonZero, _mm512_min_epu16(c, oneW));
    [[maybe_unused]] __mmask16 nf0 = 0, nan0 = 0, nf1 = 0, nan1 = 0;
    if constexpr (kSpecials) {
      nf0 = _mm512_cmp_ps_mask(_mm512_castsi512_ps(ab0), fmax, _CMP_NLE_UQ);
      nf1 = _mm512_cmp_ps_mask(_mm512_castsi512_ps(ab1), fmax, _CMP_NLE_UQ);
      nan0 = _mm512_cmp_ps_mask(v0, v0, _CMP_UNORD_Q);
      nan1 = _mm512_cmp_ps_mask(v1, v1, _CMP_UNORD_Q);
    }
    if constexpr (kOut) {
      // Off the search chains, so mask-register selects are fine here.
      __m512i s0 = _mm512_and_si512(_mm512_castps_si512(v0), signMask);
      __m512i s1 = _mm512_and_si512(_mm512_castps_si512(v1), signMask);
      __mmask32 b6 = _mm512_test_epi16_mask(c, _mm512_set1_epi16(64));
      __m512i lo = lookupWords128(V.lo, c, b6), hi = lookupWords128(V.hi, c, b6);
      __m512i bits0 = _mm512_or_si512(_mm512_permutex2var_epi16(lo, V.interLo, hi), s0);
      __m512i bits1 = _mm512_or_si512(_mm512_permutex2var_epi16(lo, V.interHi, hi), s1);
      if constexpr (kSpecials) {
        bits0 = withSpecials(bits0, s0, nf0, nan0);
        bits1 = withSpecials(bits1, s1, nf1, nan1);
      }
      if constexpr (kFull) {
        _mm512_storeu_si512(out + i, bits0);
        _mm512_storeu_si512(out + i + 16, bits1);
      } else {
        _mm512_mask_storeu_epi32(out + i, m0, bits0);
        _mm512_mask_storeu_epi32(out + i + 16, m1, bits1);
      }
    }
    if constexpr (kCodes) {
      __m512i code = c;
      if constexpr (kSpecials) {
        code = _mm512_mask_mov_epi16(code, _mm512_kunpackw(nf1, nf0), _mm512_set1_epi16(0x7c));
        code = _mm512_mask_mov_epi16(code, _mm512_kunpackw(nan1, nan0), _mm512_set1_epi16(0x7f));
      }
      // Sign: bit 15 of each input's top half, moved to bit 7.
      __m512i sh =
          _mm512_permutex2var_epi16(_mm512_castps_si512(v0), packHi, _mm512_castps_si512(v1));
      code = _mm512_or_si512(code,
                             _mm512_and_si512(_mm512_srli_epi16(sh, 8), _mm512_set1_epi16(0x80)));
      __m256i c8 = _mm512_cvtepi16_epi8(code);
      if constexpr (kFull) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(codes + i), c8);
      } else {
        _mm256_mask_storeu_epi8(codes + i, _mm512_kunpackw(m1, m0), c8);
      }
    }
  };
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) step(i, std::true_type{}, __mmask16(0xffff), __mmask16(0xffff));
  if (i < n) {
    const int64_t left = n - i;  // 1..31
    const uint32_t bits = static_cast<uint32_t>((uint64_t{1} << left) - 1u);
    step(i, std::false_type{}, static_cast<__mmask16>(bits), static_cast<__mmask16>(bits >> 16));
  }
  return _mm512_reduce_add_epi32(_mm512_madd_epi16(nonZero, oneW));
}

template <bool kVbmi2, bool kSpecials, bool kOut, bool kCodes>
int64_t mapAvx512Pick(const float* x, float* out, uint8_t* codes, int64_t n, const S2fp8Tables& t,
                      bool words) {
  return words ? mapAvx512<kVbmi2, true, kSpecials, kOut, kCodes>(x, out, codes, n, t)
               : mapAvx512<kVbmi2, false, kSpecials, kOut, kCodes>(x, out, codes, n, t);
}

template <bool kVbmi2>
int64_t mapAvx512Any(const float* x, float* out, uint8_t* codes, int64_t n, const S2fp8Tables& t,
                     bool specials, bool words) {
  if (specials) {
    if (out && codes) return mapAvx512Pick<kVbmi2, true, true, true>(x, out, codes, n, t, words);
    if (out) return mapAvx512Pick<kVbmi2, true, true, false>(x, out, codes, n, t, words);
    if (codes) return mapAvx512Pick<kVbmi2, true, false, true>(x, out, codes, n, t, words);
    return mapAvx512Pick<kVbmi2, true, false, false>(x, out, codes, n, t, words);
  }
  if (out && codes) return mapAvx512Pick<kVbmi2, false, true, true>(x, out, codes, n, t, words);
  if (out) return mapAvx512Pick<kVbmi2, false, true, false>(x, out, codes, n, t, words);
  if (codes) return mapAvx512Pick<kVbmi2, false, false, true>(x, out, codes, n, t, words);
  return mapAvx512Pick<kVbmi2, false, false, false>(x, out, codes, n, t, words);
}

#pragma GCC pop_options

}  // namespace

bool s2fp8WordSearchApplies(const S2fp8Tables& t) {
  uint32_t prev = 0;  // top bits of T_0 = 0
  for (int k = 1; k < kE5M2FiniteCodes; ++k) {
    if (!(t.thresholds[k] <= FLT_MAX)) break;  // +Inf: no finite |x| reaches it
    const uint32_t h = std::bit_cast<uint32_t>(t.thresholds[k]) >> 16;
    if (h <= prev) return false;
    prev = h;
  }
  return true;
}

double S2fp8Scan::meanLog2() const {
  if (count == 0) return 0.0;
  return (static_cast<double>(sumExponent) + sumLog2Mantissa) / static_cast<double>(count);
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

namespace {
std::atomic<bool> gVbmi2{cpuFeatures().avx512Vbmi2};
std::atomic<bool> gWordSearch{true};
}  // namespace

bool s2fp8UseWordSearch(bool allow) { return gWordSearch.exchange(allow); }

bool s2fp8UseVbmi2(bool allow) {
  return gVbmi2.exchange(allow && cpuFeatures().avx512Vbmi2);
}

int64_t s2fp8Map(const float* x, float* out, uint8_t* codes, int64_t n, const S2fp8Tables& t,
                 KernelIsa isa, bool mayHaveNonFinite) {
  const bool vbmi2 = gVbmi2.load(std::memory_order_relaxed);
  const bool words = isa == KernelIsa::Avx512 && gWordSearch.load(std::memory_order_relaxed) &&
                     s2fp8WordSearchApplies(t);
  return reduceChunks(
      n, kKernelChunk, int64_t{0},
      [&](int64_t b, int64_t e) {
        float* o = out ? out + b : nullptr;
        uint8_t* c = codes ? codes + b : nullptr;
        if (isa != KernelIsa::Avx512) return mapScalar(x + b, o, c, e - b, t);
        return vbmi2 ? mapAvx512Any<true>(x + b, o, c, e - b, t, mayHaveNonFinite, words)
                     : mapAvx512Any<false>(x + b, o, c, e - b, t, mayHaveNonFinite, words);
      },
      [](int64_t a, int64_t b) { return a + b; });
}

}  // namespace mantissa::formats::detail
