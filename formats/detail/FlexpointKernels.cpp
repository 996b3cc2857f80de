// Flexpoint kernels (Köster et al. 2017; docs/formats.md "Flexpoint"): x * 2^dec, round to
// nearest even, saturate to the N-bit two's-complement range, optionally scale back. The
// AVX-512 path and the scalar path perform the same IEEE operations and agree bit for bit.
#include "formats/detail/FlexpointKernels.h"

#include "core/Immintrin.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <type_traits>

#include "core/Error.h"
#include "formats/detail/Chunked.h"

namespace mantissa::formats::detail {

namespace {

FlexPass combine(const FlexPass& a, const FlexPass& b) {
  return {std::min(a.minValue, b.minValue), std::max(a.maxValue, b.maxValue),
          a.nonFinite + b.nonFinite, a.saturated + b.saturated, a.flushed + b.flushed};
}

bool isNonFinite(float v) { return !(std::fabs(v) <= FLT_MAX); }

FlexPass scanScalar(const float* x, int64_t n) {
  FlexPass r;
  for (int64_t i = 0; i < n; ++i) {
    float v = x[i];
    if (isNonFinite(v)) {
      r.nonFinite += 1;
      continue;
    }
    r.minValue = std::min(r.minValue, v);
    r.maxValue = std::max(r.maxValue, v);
  }
  return r;
}

template <class Out>
FlexPass quantizeScalar(const float* x, Out* out, int64_t n, float up, float down, float lo,
                        float hi, float* values) {
  FlexPass r;
  for (int64_t i = 0; i < n; ++i) {
    float v = x[i];
    if (isNonFinite(v)) {
      r.nonFinite += 1;
    } else {
      r.minValue = std::min(r.minValue, v);
      r.maxValue = std::max(r.maxValue, v);
    }
    float q = std::nearbyint(v * up);
    // NaN makes the call fail; meanwhile it gets the integer the AVX-512 path gives it (max_ps
    // returns its second operand for NaN), which also keeps the int conversion defined.
    if (q != q) q = lo;
    if (q > hi || q < lo) r.saturated += 1;
    q = std::min(std::max(q, lo), hi);
    if (q == 0.0f && v != 0.0f) r.flushed += 1;
    if constexpr (std::is_same_v<Out, float>) {
      out[i] = (q + 0.0f) * down;  // + 0 turns -0 into +0: integers have no negative zero
    } else {
      out[i] = static_cast<Out>(static_cast<int32_t>(q));
      if (values) values[i] = (q + 0.0f) * down;
    }
  }
  return r;
}

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl")

// The main loop runs on full vectors without masks; only the tail uses a mask. (Masks built in
// general registers inside the loop cost several cycles per vector on some AVX-512 cores, and
// counters are kept in vector lanes for the same reason.) Non-finite lanes may spoil min/max,
// which is harmless: the caller fails when nonFinite > 0.
template <class Body>
inline void vectorLoop(int64_t n, const Body& body) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) body(i, std::true_type{}, __mmask16(0xffff));
  if (i < n) body(i, std::false_type{}, static_cast<__mmask16>((1u << (n - i)) - 1u));
}

inline int64_t laneSum(__m512i v) { return _mm512_reduce_add_epi32(v); }

/// Counts the lanes of `k` into the per-lane counters `c`.
inline __m512i countLanes(__m512i c, __mmask16 k) {
  return _mm512_mask_sub_epi32(c, k, c, _mm512_set1_epi32(-1));
}

FlexPass scanAvx512(const float* x, int64_t n) {
  const __m512 absMask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  const __m512 fmax = _mm512_set1_ps(FLT_MAX);
  const __m512 pinf = _mm512_set1_ps(INFINITY), ninf = _mm512_set1_ps(-INFINITY);
  __m512 vmin = pinf, vmax = ninf;
  __m512i bad = _mm512_setzero_si512();
  vectorLoop(n, [&](int64_t i, auto full, __mmask16 m) {
    __m512 v = full ? _mm512_loadu_ps(x + i) : _mm512_maskz_loadu_ps(m, x + i);
    bad = countLanes(bad, _mm512_cmp_ps_mask(_mm512_and_ps(v, absMask), fmax, _CMP_NLE_UQ));
    if constexpr (decltype(full)::value) {
      vmin = _mm512_min_ps(vmin, v);
      vmax = _mm512_max_ps(vmax, v);
    } else {
      vmin = _mm512_min_ps(vmin, _mm512_mask_blend_ps(m, pinf, v));
      vmax = _mm512_max_ps(vmax, _mm512_mask_blend_ps(m, ninf, v));
    }
  });
  FlexPass r;
  r.minValue = _mm512_reduce_min_ps(vmin);
  r.maxValue = _mm512_reduce_max_ps(vmax);
  r.nonFinite = laneSum(bad);
  return r;
}

template <class Out>
FlexPass quantizeAvx512(const float* x, Out* out, int64_t n, float up, float down, float lo,
                        float hi, float* values) {
  const __m512 absMask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  const __m512 fmax = _mm512_set1_ps(FLT_MAX);
  const __m512 pinf = _mm512_set1_ps(INFINITY), ninf = _mm512_set1_ps(-INFINITY);
  const __m512 vup = _mm512_set1_ps(up), vdown = _mm512_set1_ps(down);
  const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
  const __m512 zero = _mm512_setzero_ps();
  __m512 vmin = pinf, vmax = ninf;
  __m512i bad = _mm512_setzero_si512(), sat = bad, flushed = bad;
  vectorLoop(n, [&](int64_t i, auto full, __mmask16 m) {
    constexpr bool kFull = decltype(full)::value;
    __m512 v = kFull ? _mm512_loadu_ps(x + i) : _mm512_maskz_loadu_ps(m, x + i);
    bad = countLanes(bad, _mm512_cmp_ps_mask(_mm512_and_ps(v, absMask), fmax, _CMP_NLE_UQ));
    if constexpr (kFull) {
      vmin = _mm512_min_ps(vmin, v);
      vmax = _mm512_max_ps(vmax, v);
    } else {
      vmin = _mm512_min_ps(vmin, _mm512_mask_blend_ps(m, pinf, v));
      vmax = _mm512_max_ps(vmax, _mm512_mask_blend_ps(m, ninf, v));
    }
    // Lanes past the tail hold 0: never saturated, never flushed.
    __m512 q = _mm512_roundscale_ps(_mm512_mul_ps(v, vup), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    sat = countLanes(sat, _mm512_cmp_ps_mask(q, vhi, _CMP_GT_OQ));
    sat = countLanes(sat, _mm512_cmp_ps_mask(q, vlo, _CMP_LT_OQ));
    q = _mm512_min_ps(_mm512_max_ps(q, vlo), vhi);
    __mmask16 qz = _mm512_cmp_ps_mask(q, zero, _CMP_EQ_OQ);
    flushed = countLanes(flushed, _mm512_mask_cmp_ps_mask(qz, v, zero, _CMP_NEQ_UQ));
    if constexpr (std::is_same_v<Out, float>) {
      __m512 o = _mm512_mul_ps(_mm512_add_ps(q, zero), vdown);
      if constexpr (kFull) {
        _mm512_storeu_ps(out + i, o);
      } else {
        _mm512_mask_storeu_ps(out + i, m, o);
      }
    } else {
      if (values) {
        __m512 o = _mm512_mul_ps(_mm512_add_ps(q, zero), vdown);
        if constexpr (kFull) {
          _mm512_storeu_ps(values + i, o);
        } else {
          _mm512_mask_storeu_ps(values + i, m, o);
        }
      }
      __m512i qi = _mm512_cvtps_epi32(q);
      // Narrow in registers and store whole vectors: memory-destination vpmov is slow.
      if constexpr (sizeof(Out) == 1) {
        __m128i c = _mm512_cvtepi32_epi8(qi);
        if constexpr (kFull) {
          _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), c);
        } else {
          _mm_mask_storeu_epi8(out + i, m, c);
        }
      } else if constexpr (sizeof(Out) == 2) {
        __m256i c = _mm512_cvtepi32_epi16(qi);
        if constexpr (kFull) {
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), c);
        } else {
          _mm256_mask_storeu_epi16(out + i, m, c);
        }
      } else {
        if constexpr (kFull) {
          _mm512_storeu_si512(out + i, qi);
        } else {
          _mm512_mask_storeu_epi32(out + i, m, qi);
        }
      }
    }
  });
  FlexPass r;
  r.minValue = _mm512_reduce_min_ps(vmin);
  r.maxValue = _mm512_reduce_max_ps(vmax);
  r.nonFinite = laneSum(bad);
  r.saturated = laneSum(sat);
  r.flushed = laneSum(flushed);
  return r;
}

#pragma GCC pop_options

}  // namespace

FlexPass flexScan(const float* x, int64_t n, KernelIsa isa) {
  return reduceChunks(
      n, kKernelChunk, FlexPass{},
      [&](int64_t b, int64_t e) {
        return isa == KernelIsa::Avx512 ? scanAvx512(x + b, e - b) : scanScalar(x + b, e - b);
      },
      combine);
}

template <class Out>
FlexPass flexQuantize(const float* x, Out* out, int64_t n, int dec, int bits, KernelIsa isa,
                      float* values) {
  MANTISSA_CHECK(dec >= -100 && dec <= 100, "flexQuantize: dec ", dec, " out of [-100, 100]");
  MANTISSA_CHECK(bits >= 2 && bits <= 24, "flexQuantize: bits ", bits, " out of [2, 24]");
  const float up = std::ldexp(1.0f, dec), down = std::ldexp(1.0f, -dec);
  const float hi = std::ldexp(1.0f, bits - 1) - 1.0f, lo = -std::ldexp(1.0f, bits - 1);
  auto vals = [&](int64_t b) { return values ? values + b : nullptr; };
  return reduceChunks(
      n, kKernelChunk, FlexPass{},
      [&](int64_t b, int64_t e) {
        return isa == KernelIsa::Avx512
                   ? quantizeAvx512<Out>(x + b, out + b, e - b, up, down, lo, hi, vals(b))
                   : quantizeScalar<Out>(x + b, out + b, e - b, up, down, lo, hi, vals(b));
      },
      combine);
}

template FlexPass flexQuantize<float>(const float*, float*, int64_t, int, int, KernelIsa, float*);
template FlexPass flexQuantize<int8_t>(const float*, int8_t*, int64_t, int, int, KernelIsa,
                                       float*);
template FlexPass flexQuantize<int16_t>(const float*, int16_t*, int64_t, int, int, KernelIsa,
                                        float*);
template FlexPass flexQuantize<int32_t>(const float*, int32_t*, int64_t, int, int, KernelIsa,
                                        float*);

int64_t flexMaxabs(float minValue, float maxValue, int dec, int bits) {
  // Same float operations as the kernels, applied to the extreme values.
  const float up = std::ldexp(1.0f, dec);
  const float hi = std::ldexp(1.0f, bits - 1) - 1.0f;
  float pos = maxValue > 0.0f ? std::min(std::nearbyint(maxValue * up), hi) : 0.0f;
  float neg = minValue < 0.0f ? std::min(std::nearbyint(-minValue * up), hi + 1.0f) : 0.0f;
  return static_cast<int64_t>(std::max(pos, neg));
}

}  // namespace mantissa::formats::detail
