// HBFP block quantizer (Drumond et al., NeurIPS 2018; FORMATS.md A.3 and §3.2; docs/formats.md
// "HBFP"). Per block: e = ceil(log2 max|x|) computed exactly from the float bits (no eps),
// clamped to [kHbfpMinExponent, kHbfpMaxExponent]; ulp = 2^(e - (N-1)); M = round(x / ulp) with
// RNE or stochastic rounding; saturation to |M| <= 2^(N-1) - 1 (so a power-of-two max becomes
// 2^e - ulp, as in the authors' emulator).
//
// Exactness: x / ulp = x * 2^s with s = N-1-e in [-127, 149], which is not always a normal
// float, so it is applied as two factors 2^s1 * 2^s2 with s1 = floor(s/2) (both normal, same
// sign: no intermediate rounding can change a result >= 1/2). Back-scaling by 2^-s1 * 2^-s2 is
// exact because every value of the grid is a multiple of 2^-149 with at most 24 bits.
// (vscalefps would do it in one instruction but is slower than two multiplies on Zen 4.)
//
// In nearly every block s lies in [0, 126]; then one factor each way gives the same results
// (VScale). Layouts: blocks along the last axis (contiguous, one block at a time); blocks along
// a middle axis with an inner stride (e.g. C of NCHW, stride H*W): a tile of the inner dimension
// is processed for all rows of a block at once, vectorised across the inner index, so no
// element-wise gather is needed; gathered blocks (HbfpGatherLayout), which are contiguous too
// when the run length is a multiple of the block (N, H, W of ResNet activations).
#include "formats/detail/HbfpKernels.h"

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
#include <type_traits>
#include <vector>

#include "core/Error.h"
#include "core/Rng.h"
#include "formats/detail/Chunked.h"
#include "formats/detail/Grid.h"
#include "formats/detail/Philox512.h"

namespace mantissa::formats::detail {

namespace {

constexpr int64_t kTile = 128;  // inner elements per strided work item (x block rows)

HbfpPass combine(const HbfpPass& a, const HbfpPass& b) {
  return {a.nonFinite + b.nonFinite, a.saturated + b.saturated, a.flushed + b.flushed};
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
  } else {
    *o = static_cast<Out>(static_cast<int32_t>(r));
  }
}

template <class Out>
HbfpPass rowsScalar(const float* x, Out* out, int16_t* exps, const HbfpLayout& L,
                    const HbfpParams& p, const StochasticKey& key, int64_t b0, int64_t b1) {
  // Contiguous layout: item = one block of one row.
  HbfpPass cnt;
  const bool sr = p.rounding == Rounding::Stochastic;
  const float qmax = std::ldexp(1.0f, p.bits - 1) - 1.0f;
  const int64_t nb = L.numBlocks();
  std::vector<uint32_t> bits(sr ? static_cast<size_t>(L.block) : 0);
  for (int64_t item = b0; item < b1; ++item) {
    int64_t row = item / nb, b = item % nb;
    int64_t start = row * L.axis + b * L.block;
    int64_t len = std::min(L.block, L.axis - b * L.block);
    float amax = 0.0f;
    for (int64_t j = 0; j < len; ++j) {
      float v = x[start + j];
      if (isNonFinite(v)) {
        cnt.nonFinite += 1;
      } else {
        amax = std::max(amax, std::fabs(v));
      }
    }
    int e = blockExponent(amax);
    if (exps) exps[item] = static_cast<int16_t>(e);
    Scale sc = scaleFor(e, p.bits);
    if (sr) fillBitsScalar(key, static_cast<uint64_t>(start), len, bits.data());
    for (int64_t j = 0; j < len; ++j) {
      quantElem(x[start + j], out + start + j, sc, qmax, sr, sr ? bits[j] : 0u, cnt);
    }
  }
  return cnt;
}

template <class Out>
HbfpPass stridedScalar(const float* x, Out* out, int16_t* exps, const HbfpLayout& L,
                       const HbfpParams& p, const StochasticKey& key, int64_t b0, int64_t b1) {
  // Strided layout: item = (outer, block, inner tile).
  HbfpPass cnt;
  const bool sr = p.rounding == Rounding::Stochastic;
  const float qmax = std::ldexp(1.0f, p.bits - 1) - 1.0f;
  const int64_t nb = L.numBlocks(), nt = (L.inner + kTile - 1) / kTile;
  float amax[kTile];
  Scale sc[kTile];
  uint32_t bits[kTile];
  for (int64_t item = b0; item < b1; ++item) {
    int64_t o = item / (nb * nt), b = (item / nt) % nb, t = item % nt;
    int64_t a0 = b * L.block, a1 = std::min(L.axis, a0 + L.block);
    int64_t i0 = t * kTile, w = std::min(kTile, L.inner - i0);
    std::fill(amax, amax + w, 0.0f);
    for (int64_t a = a0; a < a1; ++a) {
      const float* row = x + (o * L.axis + a) * L.inner + i0;
      for (int64_t j = 0; j < w; ++j) {
        if (isNonFinite(row[j])) {
          cnt.nonFinite += 1;
        } else {
          amax[j] = std::max(amax[j], std::fabs(row[j]));
        }
      }
    }
    for (int64_t j = 0; j < w; ++j) {
      int e = blockExponent(amax[j]);
      if (exps) exps[(o * nb + b) * L.inner + i0 + j] = static_cast<int16_t>(e);
      sc[j] = scaleFor(e, p.bits);
    }
    for (int64_t a = a0; a < a1; ++a) {
      int64_t base = (o * L.axis + a) * L.inner + i0;
      if (sr) fillBitsScalar(key, static_cast<uint64_t>(base), w, bits);
      for (int64_t j = 0; j < w; ++j) {
        quantElem(x[base + j], out + base + j, sc[j], qmax, sr, sr ? bits[j] : 0u, cnt);
      }
    }
  }
  return cnt;
}

/// Calls f(offset, n, k) for the contiguous runs covering indices [k0, k1) of the line that
/// starts at `base`: n elements at x + offset are indices k .. k + n - 1.
template <class F>
inline void forRuns(const HbfpGatherLayout& L, int64_t base, int64_t k0, int64_t k1, const F& f) {
  for (int64_t k = k0; k < k1;) {
    const int64_t s = k / L.segment, t = k - s * L.segment;
    const int64_t n = std::min(L.segment - t, k1 - k);
    f(base + s * L.segmentStride + t, n, k);
    k += n;
  }
}

HbfpPass gatheredScalar(const float* x, float* out, const HbfpGatherLayout& L, const HbfpParams& p,
                        const StochasticKey& key, int64_t b0, int64_t b1) {
  // Item = one block of one line; the same steps as rowsScalar on the gathered line.
  HbfpPass cnt;
  const bool sr = p.rounding == Rounding::Stochastic;
  const float qmax = std::ldexp(1.0f, p.bits - 1) - 1.0f;
  const int64_t nb = L.numBlocks(), len = L.length();
  std::vector<uint32_t> bits(sr ? static_cast<size_t>(L.block) : 0);
  for (int64_t item = b0; item < b1; ++item) {
    const int64_t row = item / nb, k0 = (item % nb) * L.block, k1 = std::min(len, k0 + L.block);
    const int64_t base = row * L.rowStride;
    float amax = 0.0f;
    forRuns(L, base, k0, k1, [&](int64_t off, int64_t n, int64_t) {
      for (int64_t j = 0; j < n; ++j) {
        if (isNonFinite(x[off + j])) {
          cnt.nonFinite += 1;
        } else {
          amax = std::max(amax, std::fabs(x[off + j]));
        }
      }
    });
    Scale sc = scaleFor(blockExponent(amax), p.bits);
    if (sr) fillBitsScalar(key, static_cast<uint64_t>(row * len + k0), k1 - k0, bits.data());
    forRuns(L, base, k0, k1, [&](int64_t off, int64_t n, int64_t k) {
      for (int64_t j = 0; j < n; ++j) {
        quantElem(x[off + j], out + off + j, sc, qmax, sr, sr ? bits[k - k0 + j] : 0u, cnt);
      }
    });
  }
  return cnt;
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

/// Per-lane scale factors: x / ulp = (x * f1) * f2, ulp * M = (M * g1) * g2 (see the top). When
/// `one` (s = N-1-e in [0, 126] in every lane used, i.e. nearly every block) one factor each
/// way does: x / ulp = x * f, ulp * M = M * g with f = 2^s and g = 2^-s both normal. The results
/// are the same: scaling up by a power of two is exact, so is x * 2^s1 * 2^s2 for s1, s2 >= 0,
/// and M * 2^-s >= 2^-126 is a normal number of at most 24 bits.
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
  VCounters() : sat(_mm512_setzero_si512()), flushed(sat) {}
  __m512i sat, flushed;
  void addTo(HbfpPass& p) const {
    p.saturated += _mm512_reduce_add_epi32(sat);
    p.flushed += _mm512_reduce_add_epi32(flushed);
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

/// One vector of elements v: quantize with per-lane scales (one factor each way when kOne),
/// store values or mantissas.
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

/// What every block of a call shares.
struct BlockCtx {
  int bits;
  float qmaxS;
  __m512 qmax;
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

BlockCtx blockCtx(const HbfpParams& p, const StochasticKey& key, std::vector<uint32_t>& bits,
                  int64_t block) {
  const bool sr = p.rounding == Rounding::Stochastic;
  if (sr) bits.resize(static_cast<size_t>(block));
  const float qmax = std::ldexp(1.0f, p.bits - 1) - 1.0f;
  return {p.bits, qmax, _mm512_set1_ps(qmax), sr, key, bits.data()};
}

template <class Out>
HbfpPass rowsAvx512(const float* x, Out* out, int16_t* exps, const HbfpLayout& L,
                    const HbfpParams& p, const StochasticKey& key, int64_t b0, int64_t b1) {
  VCounters cnt;
  HbfpPass r;
  std::vector<uint32_t> bits;
  const BlockCtx c = blockCtx(p, key, bits, L.block);
  const int64_t nb = L.numBlocks();
  int64_t row = b0 / nb, b = b0 % nb;  // of item, advanced without dividing
  for (int64_t item = b0; item < b1; ++item) {
    const int64_t start = row * L.axis + b * L.block;
    const int64_t len = std::min(L.block, L.axis - b * L.block);
    int16_t* ex = exps ? exps + item : nullptr;
    const auto index = static_cast<uint64_t>(start);
    if (len == 64) {
      contigBlock<64>(x + start, out + start, len, ex, c, index, cnt, r);
    } else {
      contigBlock<0>(x + start, out + start, len, ex, c, index, cnt, r);
    }
    if (++b == nb) {
      b = 0;
      ++row;
    }
  }
  cnt.addTo(r);
  return r;
}

template <class Out>
HbfpPass stridedAvx512(const float* x, Out* out, int16_t* exps, const HbfpLayout& L,
                       const HbfpParams& p, const StochasticKey& key, int64_t b0, int64_t b1) {
  VCounters cnt;
  HbfpPass r;
  const bool sr = p.rounding == Rounding::Stochastic;
  const __m512 qmax = _mm512_set1_ps(std::ldexp(1.0f, p.bits - 1) - 1.0f);
  const int64_t nb = L.numBlocks(), nt = (L.inner + kTile - 1) / kTile;
  alignas(64) uint32_t amax[kTile];
  alignas(64) uint32_t bits[kTile];
  VScale sc[kTile / 16];
  for (int64_t item = b0; item < b1; ++item) {
    int64_t o = item / (nb * nt), b = (item / nt) % nb, t = item % nt;
    int64_t a0 = b * L.block, a1 = std::min(L.axis, a0 + L.block);
    int64_t i0 = t * kTile, w = std::min(kTile, L.inner - i0);
    if (w == kTile) {
      // Full tile: the running maxima stay in registers across the block's rows.
      __m512i acc[kTile / 16];
      for (auto& v : acc) v = _mm512_setzero_si512();
      for (int64_t a = a0; a < a1; ++a) {
        const float* row = x + (o * L.axis + a) * L.inner + i0;
#pragma GCC unroll 16
        for (int k = 0; k < kTile / 16; ++k) acc[k] = absMaxVec<true>(acc[k], row + 16 * k, 0xffff);
      }
      for (int k = 0; k < kTile / 16; ++k) _mm512_store_si512(amax + 16 * k, acc[k]);
    } else {
      for (int64_t j = 0; j < w; j += 16) _mm512_store_si512(amax + j, _mm512_setzero_si512());
      for (int64_t a = a0; a < a1; ++a) {
        const float* row = x + (o * L.axis + a) * L.inner + i0;
        vectorLoop(
            w, [&](int64_t j, auto full, __mmask16 m) __attribute__((always_inline)) {
              _mm512_store_si512(amax + j, absMaxVec<decltype(full)::value>(
                                               _mm512_load_si512(amax + j), row + j, m));
            });
      }
    }
    bool bad = false;
    for (int64_t j = 0; j < w; j += 16) bad = bad || anyNonFinite(_mm512_load_si512(amax + j));
    if (bad) {
      for (int64_t a = a0; a < a1; ++a)
        r.nonFinite += countNonFinite(x + (o * L.axis + a) * L.inner + i0, w);
      continue;  // the call fails; values are not used
    }
    int16_t* ex = exps ? exps + (o * nb + b) * L.inner + i0 : nullptr;
    bool one = true, sat = false;
    vectorLoop(
        w, [&](int64_t j, auto full, __mmask16 m) __attribute__((always_inline)) {
          const __m512i am = _mm512_load_si512(amax + j);
          sc[j / 16] = vscaleFor(am, p.bits, m);
          one = one && sc[j / 16].one;
          // satPossible per lane (lanes past the tail have am = 0).
          const __m512 y =
              _mm512_mul_ps(_mm512_mul_ps(_mm512_castsi512_ps(am), sc[j / 16].f1), sc[j / 16].f2);
          const __m512 ym =
              sr ? y : _mm512_roundscale_ps(y, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
          sat = sat || _mm512_cmp_ps_mask(ym, qmax, _CMP_GT_OQ) != 0;
          if (!ex) return;
          __m256i e16 = _mm512_cvtepi32_epi16(sc[j / 16].e);
          if constexpr (decltype(full)::value) {
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(ex + j), e16);
          } else {
            _mm256_mask_storeu_epi16(ex + j, m, e16);
          }
        });
    withModes(
        one, sat, [&](auto kOne, auto kSat) __attribute__((always_inline)) {
          for (int64_t a = a0; a < a1; ++a) {
            int64_t base = (o * L.axis + a) * L.inner + i0;
            if (sr) fillBitsAvx512(key, static_cast<uint64_t>(base), w, bits);
            if (w == kTile) {
#pragma GCC unroll 8
              for (int k = 0; k < kTile / 16; ++k) {
                quantVec<true, decltype(kOne)::value, decltype(kSat)::value>(
                    _mm512_loadu_ps(x + base + 16 * k), out + base + 16 * k, 0xffff, sc[k], qmax,
                    sr, sr ? bits + 16 * k : nullptr, cnt);
              }
              continue;
            }
            vectorLoop(
                w, [&](int64_t j, auto full, __mmask16 m) __attribute__((always_inline)) {
                  constexpr bool kFull = decltype(full)::value;
                  quantVec<kFull, decltype(kOne)::value, decltype(kSat)::value>(
                      loadVec<kFull>(x + base + j, m), out + base + j, m, sc[j / 16], qmax, sr,
                      sr ? bits + j : nullptr, cnt);
                });
          }
        });
  }
  cnt.addTo(r);
  return r;
}

/// Copies n floats (a piece of a gathered block) with whole and masked vectors.
inline void copyFloats(float* d, const float* s, int64_t n) {
  vectorLoop(
      n, [&](int64_t j, auto full, __mmask16 m) __attribute__((always_inline)) {
        if constexpr (decltype(full)::value) {
          _mm512_storeu_ps(d + j, _mm512_loadu_ps(s + j));
        } else {
          _mm512_mask_storeu_ps(d + j, m, _mm512_maskz_loadu_ps(m, s + j));
        }
      });
}

/// Where the 64 values of a gathered block spanning runs lie, relative to its line: lane i of
/// vector j comes from off1[j] + i where m1[j] has it, else from off2[j] + i (m2[j]); two
/// pieces at most per vector when runs are at least 16 long (`fits`). The same for every line,
/// so computed once per block column.
struct SpanPlan {
  int64_t off1[4], off2[4];
  __mmask16 m1[4], m2[4];
  bool fits;
};

SpanPlan spanPlan(const HbfpGatherLayout& L, int64_t s, int64_t t) {
  SpanPlan plan{};
  plan.fits = true;
  int used[4] = {0, 0, 0, 0};
  for (int64_t pos = 0; pos < 64;) {
    const int64_t m = std::min(L.segment - t, 64 - pos);
    // Lane i of vector j (block position 16j + i) reads element off + 16j + i - pos.
    const int64_t off = s * L.segmentStride + t - pos;
    for (int j = 0; j < 4; ++j) {
      const int64_t lo = std::clamp<int64_t>(pos - 16 * j, 0, 16);
      const int64_t hi = std::clamp<int64_t>(pos + m - 16 * j, 0, 16);
      if (lo >= hi) continue;
      const auto lanes = static_cast<__mmask16>(((1u << hi) - 1u) & ~((1u << lo) - 1u));
      if (used[j] == 0) {
        plan.off1[j] = off + 16 * j;
        plan.m1[j] = lanes;
      } else if (used[j] == 1) {
        plan.off2[j] = off + 16 * j;
        plan.m2[j] = lanes;
      } else {
        plan.fits = false;
      }
      ++used[j];
    }
    pos += m;
    t += m;
    if (t == L.segment) {
      t = 0;
      ++s;
    }
  }
  for (int j = 0; j < 4; ++j) {
    if (used[j] < 2) plan.off2[j] = plan.off1[j];  // m2[j] = 0: nothing loaded or stored
  }
  return plan;
}

/// contigBlock for a block of 64 values in several runs (`plan`, line at x + base): loaded
/// into registers with masked loads and stored back the same way.
[[gnu::always_inline]] inline bool spanBlock64(const float* x, float* out, int64_t base,
                                               const SpanPlan& plan, const BlockCtx& c,
                                               uint64_t index, VCounters& cnt, HbfpPass& r) {
  __m512 v[4];
  for (int j = 0; j < 4; ++j) {
    v[j] = _mm512_mask_loadu_ps(_mm512_maskz_loadu_ps(plan.m1[j], x + base + plan.off1[j]),
                                plan.m2[j], x + base + plan.off2[j]);
  }
  const __m512i absMask = _mm512_set1_epi32(0x7fffffff);
  __m512i a[4];
  for (int j = 0; j < 4; ++j) a[j] = _mm512_and_si512(_mm512_castps_si512(v[j]), absMask);
  const uint32_t amax = _mm512_reduce_max_epu32(
      _mm512_max_epu32(_mm512_max_epu32(a[0], a[1]), _mm512_max_epu32(a[2], a[3])));
  if (amax >= 0x7f800000u) {  // the call fails; values are not used
    for (int j = 0; j < 4; ++j) {
      r.nonFinite += std::popcount(
          static_cast<unsigned>(_mm512_cmpgt_epu32_mask(a[j], _mm512_set1_epi32(0x7f7fffff))));
    }
    return false;
  }
  const int e = blockExponent(std::bit_cast<float>(amax));
  const VScale vs = vscaleFor(e, c.bits);
  if (c.sr) fillBitsAvx512(c.key, index, 64, c.rbits);
  withModes(
      vs.one, blockSat(amax, e, c), [&](auto one, auto sat) __attribute__((always_inline)) {
        for (int j = 0; j < 4; ++j) {
          const __m512 o = valueVec<decltype(one)::value>(
              mantissaVec<true, decltype(one)::value, decltype(sat)::value>(
                  v[j], 0xffff, vs, c.qmax, c.sr, c.sr ? c.rbits + 16 * j : nullptr, cnt),
              vs);
          _mm512_mask_storeu_ps(out + base + plan.off1[j], plan.m1[j], o);
          _mm512_mask_storeu_ps(out + base + plan.off2[j], plan.m2[j], o);
        }
      });
  return true;
}

HbfpPass gatheredAvx512(const float* x, float* out, const HbfpGatherLayout& L, const HbfpParams& p,
                        const StochasticKey& key, int64_t b0, int64_t b1) {
  // A block inside one run is contiguous and quantized in place, like the blocks of the
  // last-axis layout (every block when the run length is a multiple of the block); a block
  // spanning runs is loaded from its pieces (spanBlock64; other block sizes through a buffer).
  // When runs are not a multiple of the block, items go through the lines fastest (block b of
  // every line, then block b + 1): the pieces of block b lie at the same place in every line,
  // so one SpanPlan serves them all, and memory is swept in order (the lines of a
  // convolution's x are its channels, next to each other in each image). Otherwise line by
  // line, which streams each run (measured faster for 32x32 images). The order changes
  // nothing computed.
  const bool byColumn = L.segment % L.block != 0;
  VCounters cnt;
  HbfpPass r;
  std::vector<uint32_t> bits;
  const BlockCtx c = blockCtx(p, key, bits, L.block);
  std::vector<float> buf;  // a short block spanning runs, then its values
  const int64_t len = L.length();
  SpanPlan plan{};
  int64_t planned = -1;  // the block column (k0) `plan` is for
  // Line and gathered index of item's first element, its run and offset in the run; advanced
  // without dividing.
  const int64_t nb = L.numBlocks();
  int64_t row = byColumn ? b0 % L.rows : b0 / nb;
  int64_t k0 = (byColumn ? b0 / L.rows : b0 % nb) * L.block;
  int64_t s = k0 / L.segment, t = k0 - s * L.segment;
  for (int64_t item = b0; item < b1; ++item) {
    const int64_t n = std::min(L.block, len - k0);
    const int64_t lineBase = row * L.rowStride;
    const auto index = static_cast<uint64_t>(row * len + k0);
    if (t + n <= L.segment) {
      const int64_t off = lineBase + s * L.segmentStride + t;
      if (n == 64) {
        contigBlock<64>(x + off, out + off, n, nullptr, c, index, cnt, r);
      } else {
        contigBlock<0>(x + off, out + off, n, nullptr, c, index, cnt, r);
      }
    } else {
      // Calls f(source offset, position in the block, count) for the block's pieces.
      auto pieces = [&](const auto& f) {
        int64_t rs = s, rt = t;
        for (int64_t pos = 0; pos < n;) {
          const int64_t m = std::min(L.segment - rt, n - pos);
          f(lineBase + rs * L.segmentStride + rt, pos, m);
          pos += m;
          rt += m;
          if (rt == L.segment) {
            rt = 0;
            ++rs;
          }
        }
      };
      if (n == 64 && (planned == k0 || (plan = spanPlan(L, s, t), planned = k0, true)) &&
          plan.fits) {
        spanBlock64(x, out, lineBase, plan, c, index, cnt, r);
      } else {
        if (buf.empty()) buf.resize(static_cast<size_t>(2 * L.block));
        float *in = buf.data(), *res = in + L.block;
        pieces([&](int64_t off, int64_t pos, int64_t m) { copyFloats(in + pos, x + off, m); });
        if (contigBlock<0>(in, res, n, nullptr, c, index, cnt, r)) {
          pieces([&](int64_t off, int64_t pos, int64_t m) { copyFloats(out + off, res + pos, m); });
        }
      }
    }
    if (byColumn && ++row < L.rows) continue;  // the same block of the next line
    row = byColumn ? 0 : row;
    k0 += n;
    t += n;
    if (t >= L.segment) {
      s += t / L.segment;
      t %= L.segment;
    }
    if (k0 == len) {  // line by line: the next line
      k0 = s = t = 0;
      ++row;
    }
  }
  cnt.addTo(r);
  return r;
}

#pragma GCC pop_options

}  // namespace

template <class Out>
HbfpPass hbfpQuantize(const float* x, Out* out, int16_t* exps, const HbfpLayout& L,
                      const HbfpParams& p, KernelIsa isa) {
  MANTISSA_CHECK(p.bits >= 2 && p.bits <= 24, "hbfpQuantize: width ", p.bits, " outside [2, 24]");
  MANTISSA_CHECK(L.block >= 1 && L.outer >= 0 && L.axis >= 0 && L.inner >= 1,
                 "hbfpQuantize: bad layout");
  const StochasticKey key = p.rounding == Rounding::Stochastic
                                ? stochasticKey(p.seed, p.stream, p.step)
                                : StochasticKey{};
  const int64_t nb = L.numBlocks();
  const bool avx = isa == KernelIsa::Avx512;
  if (L.inner == 1) {
    const int64_t items = L.outer * nb;
    const int64_t chunk = std::max<int64_t>(1, kKernelChunk / L.block);
    return reduceChunks(
        items, chunk, HbfpPass{},
        [&](int64_t b0, int64_t b1) {
          return avx ? rowsAvx512(x, out, exps, L, p, key, b0, b1)
                     : rowsScalar(x, out, exps, L, p, key, b0, b1);
        },
        combine);
  }
  const int64_t nt = (L.inner + kTile - 1) / kTile;
  const int64_t items = L.outer * nb * nt;
  const int64_t perItem = L.block * std::min(kTile, L.inner);
  const int64_t chunk = std::max<int64_t>(1, kKernelChunk / perItem);
  return reduceChunks(
      items, chunk, HbfpPass{},
      [&](int64_t b0, int64_t b1) {
        return avx ? stridedAvx512(x, out, exps, L, p, key, b0, b1)
                   : stridedScalar(x, out, exps, L, p, key, b0, b1);
      },
      combine);
}

HbfpPass hbfpQuantizeGathered(const float* x, float* out, const HbfpGatherLayout& L,
                              const HbfpParams& p, KernelIsa isa) {
  MANTISSA_CHECK(p.bits >= 2 && p.bits <= 24, "hbfpQuantizeGathered: width ", p.bits,
                 " outside [2, 24]");
  MANTISSA_CHECK(L.block >= 1 && L.rows >= 0 && L.segments >= 0 && L.segment >= 1,
                 "hbfpQuantizeGathered: bad layout");
  const StochasticKey key = p.rounding == Rounding::Stochastic
                                ? stochasticKey(p.seed, p.stream, p.step)
                                : StochasticKey{};
  const bool avx = isa == KernelIsa::Avx512;
  const int64_t items = L.rows * L.numBlocks();
  const int64_t chunk = std::max<int64_t>(1, kKernelChunk / L.block);
  return reduceChunks(
      items, chunk, HbfpPass{},
      [&](int64_t b0, int64_t b1) {
        return avx ? gatheredAvx512(x, out, L, p, key, b0, b1)
                   : gatheredScalar(x, out, L, p, key, b0, b1);
      },
      combine);
}

template HbfpPass hbfpQuantize<float>(const float*, float*, int16_t*, const HbfpLayout&,
                                      const HbfpParams&, KernelIsa);
template HbfpPass hbfpQuantize<int8_t>(const float*, int8_t*, int16_t*, const HbfpLayout&,
                                       const HbfpParams&, KernelIsa);
template HbfpPass hbfpQuantize<int16_t>(const float*, int16_t*, int16_t*, const HbfpLayout&,
                                        const HbfpParams&, KernelIsa);
template HbfpPass hbfpQuantize<int32_t>(const float*, int32_t*, int16_t*, const HbfpLayout&,
                                        const HbfpParams&, KernelIsa);

}  // namespace mantissa::formats::detail
