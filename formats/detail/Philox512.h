#pragma once

// Philox-4x32-10 (core/Rng.h) for 16 counters at once with AVX-512, shared by the vectorised
// stochastic-rounding kernels. Only for .cpp files that dispatch to AVX-512 at run time: the
// functions carry their own target attribute, the build baseline stays x86-64-v3.

#include <cstdint>

#include "core/Immintrin.h"

#include "formats/detail/Grid.h"

namespace mantissa::formats::detail {

#define MANTISSA_PHILOX_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl")))

/// High and low 32 bits of the 16 products a[i] * b (unsigned 32 x 32 -> 64).
MANTISSA_PHILOX_AVX512 inline void mulHiLo(__m512i a, __m512i b, __m512i& hi, __m512i& lo) {
  __m512i even = _mm512_mul_epu32(a, b);
  __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), b);
  hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd);
  lo = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
}

/// Philox-4x32-10 on the 16 counters {counter + lane, counter >> 32, 0, 0} (core/Rng.cpp rounds):
/// the words stochasticBits uses for the 64 elements of group counter / 16.
MANTISSA_PHILOX_AVX512 inline void philox16(uint64_t counter, const StochasticKey& key,
                                            __m512i out[4]) {
  const __m512i kM0 = _mm512_set1_epi32(static_cast<int>(0xD2511F53u));
  const __m512i kM1 = _mm512_set1_epi32(static_cast<int>(0xCD9E8D57u));
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  __m512i c0 = _mm512_or_si512(_mm512_set1_epi32(static_cast<int>(counter)), lane);
  __m512i c1 = _mm512_set1_epi32(static_cast<int>(counter >> 32));
  __m512i c2 = _mm512_setzero_si512(), c3 = _mm512_setzero_si512();
  uint32_t k0 = key.k0, k1 = key.k1;
  for (int round = 0; round < 10; ++round) {
    __m512i hi0, lo0, hi1, lo1;
    mulHiLo(c0, kM0, hi0, lo0);
    mulHiLo(c2, kM1, hi1, lo1);
    c0 = _mm512_xor_si512(_mm512_xor_si512(hi1, c1), _mm512_set1_epi32(static_cast<int>(k0)));
    c1 = lo1;
    c2 = _mm512_xor_si512(_mm512_xor_si512(hi0, c3), _mm512_set1_epi32(static_cast<int>(k1)));
    c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

#undef MANTISSA_PHILOX_AVX512

}  // namespace mantissa::formats::detail
