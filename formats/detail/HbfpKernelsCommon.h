#pragma once

// Internals of the HBFP kernels shared by HbfpKernels.cpp (blocks along one axis) and
// HbfpGatherKernels.cpp (gathered blocks): block exponent and scale, stochastic bits, the scalar
// element step and the AVX-512 per-block primitives. Private: not part of HbfpKernels.h.
//
// Exactness: x / ulp = x * 2^s with s = N-1-e in [-127, 149], which is not always a normal
// float, so it is applied as two factors 2^s1 * 2^s2 with s1 = floor(s/2) (both normal, same
// sign: no intermediate rounding can change a result >= 1/2). Back-scaling by 2^-s1 * 2^-s2 is
// exact because every value of the grid is a multiple of 2^-149 with at most 24 bits.
// (vscalefps would do it in one instruction but is slower than two multiplies on Zen 4.)
// In nearly every block s lies in [0, 126]; then one factor each way gives the same results
// (VScale).

#include "formats/detail/HbfpKernels.h"

#include "core/Immintrin.h"

#include <algorithm>
#include <bit>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "core/Rng.h"
#include "formats/detail/Grid.h"
#include "formats/detail/Philox512.h"

namespace mantissa::formats::detail::hbfp_internal {

// Unnamed: each kernel file gets its own internal copies, as when all of this was in
// HbfpKernels.cpp (the same inlining, no ODR questions). Only those two files include this.
namespace {

HbfpPass combine(const HbfpPass& a, const HbfpPass& b) {
  return {a.nonFinite + b.nonFinite, a.saturated + b.saturated, a.flushed + b.flushed,
          std::min(a.minMagnitude, b.minMagnitude)};
}

float pow2(int k) { return std::bit_cast<float>(static_cast<uint32_t>(k + 127) << 23); }

/// ceil(log2 amax) from the bits of a non-negative float, clamped to the exponent range.
int blockExponent(float amax) {
  uint32_t b = std::bit_cast<uint32_t>(amax);
  int ef = static_cast<int>(b >> 23);
  if (ef == 0) return kHbfpMinExponent;  // zero or below 2^-126
  int e = ef - 127 + ((b & 0x7fffffu) != 0 ? 1 : 0);
  return std::clamp(e, kHbfpMinExponent, kHbfpMaxExponent);
}

struct Scale {
  float f1, f2, g1, g2;
};

Scale scaleFor(int e, int bits) {
  int s = bits - 1 - e;
  int s1 = s >> 1, s2 = s - s1;  // arithmetic shift: floor(s / 2)
  return {pow2(s1), pow2(s2), pow2(-s1), pow2(-s2)};
}

bool isNonFinite(float v) { return !(std::fabs(v) <= FLT_MAX); }

/// Random bits for flat indices [first, first + count): stochasticBits() for each index, one
/// Philox evaluation per 4 elements (lane l of group g gives elements g + l + 16 w, w = 0..3).
void fillBitsScalar(const StochasticKey& key, uint64_t first, int64_t count, uint32_t* buf) {
  const uint64_t end = first + static_cast<uint64_t>(count);
  for (uint64_t g = first & ~uint64_t{63}; g < end; g += 64) {
    for (uint32_t lane = 0; lane < 16; ++lane) {
      uint64_t c = ((g >> 6) << 4) | lane;
      auto r = philox4x32({key.k0, key.k1},
                          {static_cast<uint32_t>(c), static_cast<uint32_t>(c >> 32), 0u, 0u});
      for (uint64_t w = 0; w < 4; ++w) {
        uint64_t idx = g + lane + 16 * w;
        if (idx >= first && idx < end) buf[idx - first] = r[w];
      }
    }
  }
}

template <class Out>
void quantElem(float v, Out* o, const Scale& sc, float qmax, bool sr, uint32_t rbits,
               HbfpPass& cnt) {
  float y = (v * sc.f1) * sc.f2;
  float r;
  if (sr) {
    // floor(y + k 2^-24) = floor(y) + [k + floor(frac(y) 2^24) >= 2^24]: an exact integer test.
    // y - floor(y) is exact for |y| >= 1 (Sterbenz) but not for small negative y, where
    // floor(frac 2^24) = floor(y 2^24) + 2^24 is used instead (y 2^24 is exact).
    float fl = std::floor(y);
    int32_t f24 = 0;
    if (std::fabs(y) >= 1.0f && std::fabs(y) <= FLT_MAX) {
      f24 = static_cast<int32_t>((y - fl) * 0x1p24f);
    } else if (y == y) {
      f24 = static_cast<int32_t>(std::floor(y * 0x1p24f)) + (y < 0.0f ? (1 << 24) : 0);
    }
    int32_t k = static_cast<int32_t>(rbits >> 8);
    r = fl + ((k + f24) >= (1 << 24) ? 1.0f : 0.0f);
  } else {
    r = std::nearbyint(y);
  }
  if (r != r) r = -qmax;  // NaN (the call fails): same integer as the AVX-512 path
  if (r > qmax || r < -qmax) cnt.saturated += 1;
  r = std::min(std::max(r, -qmax), qmax);
  if (r == 0.0f && v != 0.0f) cnt.flushed += 1;
  if constexpr (std::is_same_v<Out, float>) {
    *o = ((r + 0.0f) * sc.g1) * sc.g2;
  } else if constexpr (std::is_same_v<Out, Bf16Bits>) {
    const uint32_t u = std::bit_cast<uint32_t>(((r + 0.0f) * sc.g1) * sc.g2);
    o->bits = static_cast<uint16_t>(u >> 16);
    const uint32_t mag = u & 0x7fffffffu;
    if (mag != 0) cnt.minMagnitude = std::min(cnt.minMagnitude, mag);
  } else {
    *o = static_cast<Out>(static_cast<int32_t>(r));
  }
}

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl")

/// stochasticBits for flat indices [first, first + count), 64 at a time.
void fillBitsAvx512(const StochasticKey& key, uint64_t first, int64_t count, uint32_t* buf) {
  alignas(64) uint32_t group[64];
  uint64_t end = first + static_cast<uint64_t>(count);
  for (uint64_t g = first & ~uint64_t{63}; g < end; g += 64) {
    __m512i w[4];
    philox16((g >> 6) << 4, key, w);
    uint64_t lo = std::max(g, first), hi = std::min(g + 64, end);
    if (lo == g && hi == g + 64) {  // a whole group: store straight into the buffer
      for (int k = 0; k < 4; ++k) _mm512_storeu_si512(buf + (g - first) + 16 * k, w[k]);
      continue;
    }
    for (int k = 0; k < 4; ++k) _mm512_store_si512(group + 16 * k, w[k]);
    std::copy(group + (lo - g), group + (hi - g), buf + (lo - first));
  }
}

/// Per-lane scale factors: x / ulp = (x * f1) * f2, ulp * M = (M * g1) * g2 (see the top of this
/// file). When `one` (s = N-1-e in [0, 126] in every lane used, i.e. nearly every block) one
/// factor each way does: x / ulp = x * f, ulp * M = M * g with f = 2^s and g = 2^-s both normal.
/// The results are the same: scaling up by a power of two is exact, so is x * 2^s1 * 2^s2 for
/// s1, s2 >= 0, and M * 2^-s >= 2^-126 is a normal number of at most 24 bits.
struct VScale {
  __m512 f1, f2, g1, g2, f, g;
  __m512i e;
  bool one;
};

/// Per-lane exponent and scale from per-lane block maxima (bit patterns of |x|, all finite);
/// `one` considers the lanes of `used`.
[[gnu::always_inline]] inline VScale vscaleFor(__m512i b, int bits, __mmask16 used) {
  __m512i ef = _mm512_srli_epi32(b, 23);
  __mmask16 frac = _mm512_test_epi32_mask(b, _mm512_set1_epi32(0x7fffff));
  __m512i e = _mm512_sub_epi32(ef, _mm512_set1_epi32(127));
  e = _mm512_mask_add_epi32(e, frac, e, _mm512_set1_epi32(1));
  __mmask16 zero = _mm512_cmpeq_epi32_mask(ef, _mm512_setzero_si512());
  e = _mm512_max_epi32(e, _mm512_set1_epi32(kHbfpMinExponent));
  e = _mm512_min_epi32(e, _mm512_set1_epi32(kHbfpMaxExponent));
  e = _mm512_mask_mov_epi32(e, zero, _mm512_set1_epi32(kHbfpMinExponent));
  __m512i s = _mm512_sub_epi32(_mm512_set1_epi32(bits - 1), e);
  __m512i s1 = _mm512_srai_epi32(s, 1), s2 = _mm512_sub_epi32(s, s1);
  const __m512i bias = _mm512_set1_epi32(127);
  auto p2 = [&](__m512i k) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(k, bias), 23));
  };
  __m512i zeroI = _mm512_setzero_si512();
  // Unsigned compare: s in [0, 126].
  __mmask16 inRange = _mm512_cmple_epu32_mask(s, _mm512_set1_epi32(126));
  return {p2(s1),
          p2(s2),
          p2(_mm512_sub_epi32(zeroI, s1)),
          p2(_mm512_sub_epi32(zeroI, s2)),
          p2(s),
          p2(_mm512_sub_epi32(zeroI, s)),
          e,
          (inRange & used) == used};
}

[[gnu::always_inline]] inline VScale vscaleFor(int e, int bits) {
  Scale s = scaleFor(e, bits);
  const int k = bits - 1 - e;
  const bool one = k >= 0 && k <= 126;
  return {_mm512_set1_ps(s.f1),
          _mm512_set1_ps(s.f2),
          _mm512_set1_ps(s.g1),
          _mm512_set1_ps(s.g2),
          _mm512_set1_ps(one ? pow2(k) : 0.0f),
          _mm512_set1_ps(one ? pow2(-k) : 0.0f),
          _mm512_set1_epi32(e),
          one};
}

/// Per-lane counters (kept in vector lanes: moving masks to general registers every vector is
/// slow on some AVX-512 cores).
struct VCounters {
  // An explicit constructor: an implicit one would not be compiled for AVX-512.
  VCounters() : sat(_mm512_setzero_si512()), flushed(sat), minMag(_mm512_set1_epi32(-1)) {}
  __m512i sat, flushed;
  __m512i minMag;  // Bf16Bits output: per lane, 2|v| - 1 of the smallest non-zero value v
  void addTo(HbfpPass& p) const {
    p.saturated += _mm512_reduce_add_epi32(sat);
    p.flushed += _mm512_reduce_add_epi32(flushed);
    const auto m = static_cast<uint32_t>(_mm512_reduce_min_epu32(minMag));
    if (m != UINT32_MAX) p.minMagnitude = std::min(p.minMagnitude, (m + 1) >> 1);
  }
};

inline __m512i countLanes(__m512i c, __mmask16 k) {
  return _mm512_mask_sub_epi32(c, k, c, _mm512_set1_epi32(-1));
}

/// Runs body(j, full, mask) over [0, n) in vectors of 16: unmasked full vectors, then a tail.
template <class Body>
[[gnu::always_inline]] inline void vectorLoop(int64_t n, const Body& body) {
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) body(j, std::true_type{}, __mmask16(0xffff));
  if (j < n) body(j, std::false_type{}, static_cast<__mmask16>((1u << (n - j)) - 1u));
}

template <bool kFull>
inline __m512 loadVec(const float* p, __mmask16 m) {
  if constexpr (kFull) {
    return _mm512_loadu_ps(p);
  } else {
    return _mm512_maskz_loadu_ps(m, p);
  }
}

/// Running max of |x| as bit patterns (integer order = magnitude order for |x|; Inf and NaN
/// patterns are above every finite one, so a non-finite element shows in the max). Lanes past
/// the tail load as 0.
template <bool kFull>
inline __m512i absMaxVec(__m512i acc, const float* xp, __mmask16 m) {
  __m512i a =
      _mm512_and_si512(_mm512_castps_si512(loadVec<kFull>(xp, m)), _mm512_set1_epi32(0x7fffffff));
  return _mm512_max_epu32(acc, a);
}

inline bool anyNonFinite(__m512i amaxBits) {
  return _mm512_cmpge_epu32_mask(amaxBits, _mm512_set1_epi32(0x7f800000)) != 0;
}

int64_t countNonFinite(const float* x, int64_t n) {
  int64_t c = 0;
  for (int64_t i = 0; i < n; ++i) c += isNonFinite(x[i]) ? 1 : 0;
  return c;
}

/// One vector of elements v: the mantissas M (as floats) with per-lane scales (one factor each
/// way when kOne), counted. !kSat: no mantissa can exceed qmax (satPossible), so none is
/// counted or clamped.
template <bool kFull, bool kOne, bool kSat>
[[gnu::always_inline]] inline __m512 mantissaVec(__m512 v, __mmask16 m, const VScale& sc,
                                                 __m512 qmax, bool sr, const uint32_t* rbits,
                                                 VCounters& cnt) {
  __m512 y = kOne ? _mm512_mul_ps(v, sc.f) : _mm512_mul_ps(_mm512_mul_ps(v, sc.f1), sc.f2);
  __m512 r;
  if (sr) {
    // Same exact test as quantElem().
    const __m512 two24 = _mm512_set1_ps(0x1p24f);
    __m512 fl = _mm512_roundscale_ps(y, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    __m512i fA = _mm512_cvttps_epi32(_mm512_mul_ps(_mm512_sub_ps(y, fl), two24));
    __m512i fB = _mm512_cvttps_epi32(
        _mm512_roundscale_ps(_mm512_mul_ps(y, two24), _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC));
    fB = _mm512_mask_add_epi32(fB, _mm512_cmp_ps_mask(y, _mm512_setzero_ps(), _CMP_LT_OQ), fB,
                               _mm512_set1_epi32(1 << 24));
    __mmask16 small = _mm512_cmp_ps_mask(_mm512_abs_ps(y), _mm512_set1_ps(1.0f), _CMP_LT_OQ);
    __m512i f24 = _mm512_mask_mov_epi32(fA, small, fB);
    __m512i rb = kFull ? _mm512_loadu_si512(rbits) : _mm512_maskz_loadu_epi32(m, rbits);
    __m512i k = _mm512_srli_epi32(rb, 8);
    __mmask16 up = _mm512_cmpge_epi32_mask(_mm512_add_epi32(k, f24), _mm512_set1_epi32(1 << 24));
    r = _mm512_mask_add_ps(fl, up, fl, _mm512_set1_ps(1.0f));
  } else {
    r = _mm512_roundscale_ps(y, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  // r is finite (blocks with a non-finite value are not quantized): |r| > qmax is r > qmax or
  // r < -qmax, and VRANGEPS (min of magnitudes, sign of r) clamps to [-qmax, qmax].
  const __m512 zero = _mm512_setzero_ps();
  if constexpr (kSat) {
    cnt.sat = countLanes(cnt.sat, _mm512_cmp_ps_mask(_mm512_abs_ps(r), qmax, _CMP_GT_OQ));
    r = _mm512_range_ps(r, qmax, 0x2);  // imm 0b0010: min |.|, sign of the first operand
  }
  __mmask16 rz = _mm512_cmp_ps_mask(r, zero, _CMP_EQ_OQ);
  cnt.flushed = countLanes(cnt.flushed, _mm512_mask_cmp_ps_mask(rz, v, zero, _CMP_NEQ_UQ));
  return r;
}

/// The values M * ulp of mantissas M.
template <bool kOne>
[[gnu::always_inline]] inline __m512 valueVec(__m512 r, const VScale& sc) {
  // The products are exact or rounded once, so the fused "+ 0" only turns -0 into +0.
  const __m512 zero = _mm512_setzero_ps();
  return kOne ? _mm512_fmadd_ps(r, sc.g, zero)
              : _mm512_fmadd_ps(_mm512_mul_ps(r, sc.g1), sc.g2, zero);
}

/// Whether a mantissa can exceed qmax, from y = the scaled block maximum (y of every element of
/// the block is at most y in magnitude: the scaling and rounding are monotone). Nearest: y
/// rounds above qmax. Stochastic: y > qmax (floor(y') + 1 <= qmax for y' < qmax; y' = qmax
/// exactly never rounds up).
inline bool satPossible(float y, float qmax, bool sr) {
  return sr ? !(y <= qmax) : !(std::nearbyint(y) <= qmax);
}

/// f(one, sat) with the runtime flags as std::bool_constant.
template <class F>
[[gnu::always_inline]] inline void withModes(bool one, bool sat, const F& f) {
  if (one) {
    if (sat) {
      f(std::true_type{}, std::true_type{});
    } else {
      f(std::true_type{}, std::false_type{});
    }
  } else if (sat) {
    f(std::false_type{}, std::true_type{});
  } else {
    f(std::false_type{}, std::false_type{});
  }
}

/// The bf16 patterns (high halves) of the values o in the low 256 bits, lane i in word i; the
/// non-zero magnitudes count towards the smallest one. Lanes outside a partial vector hold +0
/// (masked loads give 0, which quantizes to +0), so no mask is needed.
[[gnu::always_inline]] inline __m256i bf16Halves(__m512 o, VCounters& cnt) {
  const __m512i u = _mm512_castps_si512(o);
  // 2|v| - 1 without masks: ±0 wraps to UINT32_MAX ("none"), the order of the others is kept.
  cnt.minMag =
      _mm512_min_epu32(cnt.minMag, _mm512_sub_epi32(_mm512_slli_epi32(u, 1), _mm512_set1_epi32(1)));
  // Words 1, 3, ..., 31 (the high half of each lane) to words 0..15: one permute.
  const __m512i odd =
      _mm512_setr_epi32(0x30001, 0x70005, 0xB0009, 0xF000D, 0x130011, 0x170015, 0x1B0019, 0x1F001D,
                        0x30001, 0x70005, 0xB0009, 0xF000D, 0x130011, 0x170015, 0x1B0019, 0x1F001D);
  return _mm512_castsi512_si256(_mm512_permutexvar_epi16(odd, u));
}

/// One vector of elements v: quantize with per-lane scales (one factor each way when kOne),
/// store values, their bf16 patterns or mantissas.
template <bool kFull, bool kOne, bool kSat, class Out>
[[gnu::always_inline]] inline void quantVec(__m512 v, Out* op, __mmask16 m, const VScale& sc,
                                            __m512 qmax, bool sr, const uint32_t* rbits,
                                            VCounters& cnt) {
  const __m512 r = mantissaVec<kFull, kOne, kSat>(v, m, sc, qmax, sr, rbits, cnt);
  if constexpr (std::is_same_v<Out, float>) {
    const __m512 o = valueVec<kOne>(r, sc);
    if constexpr (kFull) {
      _mm512_storeu_ps(op, o);
    } else {
      _mm512_mask_storeu_ps(op, m, o);
    }
  } else if constexpr (std::is_same_v<Out, Bf16Bits>) {
    const __m256i h = bf16Halves(valueVec<kOne>(r, sc), cnt);
    if constexpr (kFull) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(op), h);
    } else {
      _mm256_mask_storeu_epi16(op, m, h);
    }
  } else {
    __m512i qi = _mm512_cvtps_epi32(r);
    // Narrow in registers and store whole vectors: memory-destination vpmov is slow.
    if constexpr (sizeof(Out) == 1) {
      __m128i c = _mm512_cvtepi32_epi8(qi);
      if constexpr (kFull) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(op), c);
      } else {
        _mm_mask_storeu_epi8(op, m, c);
      }
    } else if constexpr (sizeof(Out) == 2) {
      __m256i c = _mm512_cvtepi32_epi16(qi);
      if constexpr (kFull) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(op), c);
      } else {
        _mm256_mask_storeu_epi16(op, m, c);
      }
    } else {
      if constexpr (kFull) {
        _mm512_storeu_si512(op, qi);
      } else {
        _mm512_mask_storeu_epi32(op, m, qi);
      }
    }
  }
}

/// Int8 codes with nearest rounding (widths <= 8: |M| <= 127) of the 4 vectors v[k] (scale
/// *sc[k]), packed in order into 64 bytes: the steps of mantissaVec + quantVec done on integers
/// (one rounding conversion instead of VRNDSCALE + VCVT, packs instead of VPMOVDB: the same
/// integers, so the same codes and counts).
template <bool kOne, bool kSat>
[[gnu::always_inline]] inline __m512i codes64Rne(const __m512 (&v)[4], const VScale* const (&sc)[4],
                                                 __m512i qmaxI, VCounters& cnt) {
  __m512i q[4];
  for (int k = 0; k < 4; ++k) {
    const __m512 y = kOne ? _mm512_mul_ps(v[k], sc[k]->f)
                          : _mm512_mul_ps(_mm512_mul_ps(v[k], sc[k]->f1), sc[k]->f2);
    q[k] = _mm512_cvt_roundps_epi32(y, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    if constexpr (kSat) {
      cnt.sat = countLanes(cnt.sat, _mm512_cmpgt_epi32_mask(_mm512_abs_epi32(q[k]), qmaxI));
      q[k] = _mm512_max_epi32(_mm512_min_epi32(q[k], qmaxI),
                              _mm512_sub_epi32(_mm512_setzero_si512(), qmaxI));
    }
    // Flushed: code 0, input not +-0 (finite here).
    const __mmask16 rz = _mm512_testn_epi32_mask(q[k], q[k]);
    cnt.flushed = countLanes(
        cnt.flushed,
        _mm512_mask_test_epi32_mask(rz, _mm512_castps_si512(v[k]), _mm512_set1_epi32(0x7fffffff)));
  }
  // Saturating packs (exact: |q| <= 127) leave dword 4c + k = q[k] lanes 4c..4c+3.
  const __m512i b =
      _mm512_packs_epi16(_mm512_packs_epi32(q[0], q[1]), _mm512_packs_epi32(q[2], q[3]));
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  return _mm512_permutexvar_epi32(order, b);
}

/// What every block of a call shares.
struct BlockCtx {
  int bits;
  float qmaxS;
  __m512 qmax;
  __m512i qmaxI;
  bool sr;
  StochasticKey key;
  uint32_t* rbits;  // room for one block's stochastic bits (sr)
};

/// satPossible for a block with maximum bits `amax` and exponent e (scaled as its elements).
[[gnu::always_inline]] inline bool blockSat(uint32_t amax, int e, const BlockCtx& c) {
  const Scale sc = scaleFor(e, c.bits);
  return satPossible((std::bit_cast<float>(amax) * sc.f1) * sc.f2, c.qmaxS, c.sr);
}

/// One block of n contiguous values (kLen = n when it is known at compile time): its exponent
/// (to *ex when given) and its values to op; `index` is the flat index of its first element
/// (stochastic bits). A block holding a non-finite value is only counted (returns false).
template <int64_t kLen, class Out>
[[gnu::always_inline]] inline bool contigBlock(const float* xp, Out* op, int64_t n, int16_t* ex,
                                               const BlockCtx& c, uint64_t index, VCounters& cnt,
                                               HbfpPass& r) {
  const int64_t len = kLen ? kLen : n;
  __m512i acc = _mm512_setzero_si512();
  vectorLoop(
      len, [&](int64_t j, auto full, __mmask16 m) __attribute__((always_inline)) {
        acc = absMaxVec<decltype(full)::value>(acc, xp + j, m);
      });
  const uint32_t amax = _mm512_reduce_max_epu32(acc);
  if (amax >= 0x7f800000u) {
    r.nonFinite += countNonFinite(xp, len);  // the call fails; values are not used
    return false;
  }
  const int e = blockExponent(std::bit_cast<float>(amax));
  if (ex) *ex = static_cast<int16_t>(e);
  const VScale vs = vscaleFor(e, c.bits);
  if constexpr (kLen == 64 && std::is_same_v<Out, int8_t>) {
    if (!c.sr && c.bits <= 8) {  // int8 codes, nearest: in registers, one 64-byte store
      withModes(
          vs.one, blockSat(amax, e, c), [&](auto one, auto sat) __attribute__((always_inline)) {
            const __m512 v[4] = {_mm512_loadu_ps(xp), _mm512_loadu_ps(xp + 16),
                                 _mm512_loadu_ps(xp + 32), _mm512_loadu_ps(xp + 48)};
            const VScale* const sc[4] = {&vs, &vs, &vs, &vs};
            _mm512_storeu_si512(
                op, codes64Rne<decltype(one)::value, decltype(sat)::value>(v, sc, c.qmaxI, cnt));
          });
      return true;
    }
  }
  if (c.sr) fillBitsAvx512(c.key, index, len, c.rbits);
  withModes(
      vs.one, blockSat(amax, e, c), [&](auto one, auto sat) __attribute__((always_inline)) {
        vectorLoop(
            len, [&](int64_t j, auto full, __mmask16 m) __attribute__((always_inline)) {
              constexpr bool kFull = decltype(full)::value;
              quantVec<kFull, decltype(one)::value, decltype(sat)::value>(
                  loadVec<kFull>(xp + j, m), op + j, m, vs, c.qmax, c.sr,
                  c.sr ? c.rbits + j : nullptr, cnt);
            });
      });
  return true;
}

// Out of line as before the split: inlined into gatheredAvx512 (its one caller there) it changes
// that function's register allocation, and gathered blocks ran 2-3% slower.
[[gnu::noinline]] BlockCtx blockCtx(const HbfpParams& p, const StochasticKey& key,
                                    std::vector<uint32_t>& bits, int64_t block) {
  const bool sr = p.rounding == Rounding::Stochastic;
  if (sr) bits.resize(static_cast<size_t>(block));
  const float qmax = std::ldexp(1.0f, p.bits - 1) - 1.0f;
  return {p.bits, qmax, _mm512_set1_ps(qmax), _mm512_set1_epi32(static_cast<int32_t>(qmax)),
          sr,     key,  bits.data()};
}

#pragma GCC pop_options

}  // namespace

}  // namespace mantissa::formats::detail::hbfp_internal
