// HBFP block quantizer (Drumond et al., NeurIPS 2018; FORMATS.md A.3 and §3.2; docs/formats.md
// "HBFP"). Per block: e = ceil(log2 max|x|) computed exactly from the float bits (no eps),
// clamped to [kHbfpMinExponent, kHbfpMaxExponent]; ulp = 2^(e - (N-1)); M = round(x / ulp) with
// RNE or stochastic rounding; saturation to |M| <= 2^(N-1) - 1 (so a power-of-two max becomes
// 2^e - ulp, as in the authors' emulator).
//
// Layouts here: blocks along the last axis (contiguous, one block at a time); blocks along a
// middle axis with an inner stride (e.g. C of NCHW, stride H*W): a tile of the inner dimension is
// processed for all rows of a block at once, vectorised across the inner index, so no
// element-wise gather is needed. Gathered blocks (HbfpGatherLayout) are in
// HbfpGatherKernels.cpp; the exact two-factor scaling and the per-block primitives both files
// use are in HbfpKernelsCommon.h.
#include "formats/detail/HbfpKernels.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/Error.h"
#include "formats/detail/Chunked.h"
#include "formats/detail/HbfpKernelsCommon.h"

namespace mantissa::formats::detail {

using namespace hbfp_internal;

namespace {

constexpr int64_t kTile = 128;  // inner elements per strided work item (x block rows)

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

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl")

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

template HbfpPass hbfpQuantize<float>(const float*, float*, int16_t*, const HbfpLayout&,
                                      const HbfpParams&, KernelIsa);
template HbfpPass hbfpQuantize<Bf16Bits>(const float*, Bf16Bits*, int16_t*, const HbfpLayout&,
                                         const HbfpParams&, KernelIsa);
template HbfpPass hbfpQuantize<int8_t>(const float*, int8_t*, int16_t*, const HbfpLayout&,
                                       const HbfpParams&, KernelIsa);
template HbfpPass hbfpQuantize<int16_t>(const float*, int16_t*, int16_t*, const HbfpLayout&,
                                        const HbfpParams&, KernelIsa);
template HbfpPass hbfpQuantize<int32_t>(const float*, int32_t*, int16_t*, const HbfpLayout&,
                                        const HbfpParams&, KernelIsa);

}  // namespace mantissa::formats::detail
