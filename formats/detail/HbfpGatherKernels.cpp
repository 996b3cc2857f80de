// HBFP block quantizer for gathered blocks (HbfpGatherLayout: blocks along several axes read in
// place, e.g. N, H, W of x[N, C, H, W] for each channel in the weight-gradient GEMM of a
// convolution). Drumond et al., NeurIPS 2018; FORMATS.md A.3 and §3.2; docs/formats.md "HBFP".
// The per-block steps are those of HbfpKernels.cpp (HbfpKernelsCommon.h): RNE or stochastic
// rounding keyed by the gathered index, saturation to |M| <= 2^(N-1) - 1. Blocks are contiguous
// when the run length is a multiple of the block (N, H, W of ResNet activations); others span
// runs and are assembled from their pieces.
#include "formats/detail/HbfpKernels.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "core/Error.h"
#include "formats/detail/Chunked.h"
#include "formats/detail/HbfpKernelsCommon.h"

namespace mantissa::formats::detail {

using namespace hbfp_internal;

namespace {

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

template <class Out>
HbfpPass gatheredScalar(const float* x, Out* out, int16_t* exps, const HbfpGatherLayout& L,
                        const HbfpParams& p, const StochasticKey& key, int64_t b0, int64_t b1) {
  // Item = one block of one line: the steps of rowsScalar (HbfpKernels.cpp) on the gathered line.
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
    const int e = blockExponent(amax);
    if (exps) exps[item] = static_cast<int16_t>(e);
    Scale sc = scaleFor(e, p.bits);
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

/// Copies n outputs (a piece of a gathered block's result).
inline void copyOut(float* d, const float* s, int64_t n) { copyFloats(d, s, n); }
template <class Out>
inline void copyOut(Out* d, const Out* s, int64_t n) {
  std::memcpy(d, s, static_cast<size_t>(n) * sizeof(Out));
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
template <class Out>
[[gnu::always_inline]] inline bool spanBlock64(const float* x, Out* out, int64_t base,
                                               const SpanPlan& plan, int16_t* ex, const BlockCtx& c,
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
  if constexpr (std::is_same_v<Out, int8_t>) {
    // Int8 codes, nearest (the caller checks): packed as in contigBlock<64>, each 16 to its
    // pieces with masked 128-bit stores.
    if (ex) *ex = static_cast<int16_t>(e);
    withModes(
        vs.one, blockSat(amax, e, c), [&](auto one, auto sat) __attribute__((always_inline)) {
          const VScale* const sc[4] = {&vs, &vs, &vs, &vs};
          const __m512i codes =
              codes64Rne<decltype(one)::value, decltype(sat)::value>(v, sc, c.qmaxI, cnt);
          const __m128i q[4] = {_mm512_castsi512_si128(codes), _mm512_extracti32x4_epi32(codes, 1),
                                _mm512_extracti32x4_epi32(codes, 2),
                                _mm512_extracti32x4_epi32(codes, 3)};
          for (int j = 0; j < 4; ++j) {
            _mm_mask_storeu_epi8(out + base + plan.off1[j], plan.m1[j], q[j]);
            _mm_mask_storeu_epi8(out + base + plan.off2[j], plan.m2[j], q[j]);
          }
        });
    return true;
  }
  if (c.sr) fillBitsAvx512(c.key, index, 64, c.rbits);
  withModes(
      vs.one, blockSat(amax, e, c), [&](auto one, auto sat) __attribute__((always_inline)) {
        for (int j = 0; j < 4; ++j) {
          const __m512 o = valueVec<decltype(one)::value>(
              mantissaVec<true, decltype(one)::value, decltype(sat)::value>(
                  v[j], 0xffff, vs, c.qmax, c.sr, c.sr ? c.rbits + 16 * j : nullptr, cnt),
              vs);
          if constexpr (std::is_same_v<Out, float>) {
            _mm512_mask_storeu_ps(out + base + plan.off1[j], plan.m1[j], o);
            _mm512_mask_storeu_ps(out + base + plan.off2[j], plan.m2[j], o);
          } else {
            const __m256i h = bf16Halves(o, cnt);
            _mm256_mask_storeu_epi16(out + base + plan.off1[j], plan.m1[j], h);
            _mm256_mask_storeu_epi16(out + base + plan.off2[j], plan.m2[j], h);
          }
        }
      });
  return true;
}

/// gatheredAvx512 for int8 codes with nearest rounding when every block of 64 lies inside one
/// run (runs a multiple of 64 values: the N, H, W blocks of 32x32, 16x16 and 8x8 images): line
/// by line, a pointer stepped block by block, the per-block work of contigBlock<64> (so the
/// same results) without the general walk's bookkeeping.
HbfpPass gatheredCodes64(const float* x, int8_t* out, int16_t* exps, const HbfpGatherLayout& L,
                         const BlockCtx& c, int64_t b0, int64_t b1) {
  VCounters cnt;
  HbfpPass r;
  const int64_t nb = L.numBlocks();
  int64_t row = b0 / nb;
  int64_t k0 = (b0 % nb) * 64;
  int64_t s = k0 / L.segment, t = k0 - s * L.segment;
  int64_t off = row * L.rowStride + s * L.segmentStride + t;
  for (int64_t item = b0; item < b1; ++item) {
    contigBlock<64>(x + off, out + off, 64, exps ? exps + item : nullptr, c, 0, cnt, r);
    off += 64;
    t += 64;
    if (t == L.segment) {
      t = 0;
      if (++s == L.segments) {
        s = 0;
        ++row;
        off = row * L.rowStride;
      } else {
        off += L.segmentStride - L.segment;
      }
    }
  }
  cnt.addTo(r);
  return r;
}

template <class Out>
HbfpPass gatheredAvx512(const float* x, Out* out, int16_t* exps, const HbfpGatherLayout& L,
                        const HbfpParams& p, const StochasticKey& key, int64_t b0, int64_t b1) {
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
  std::vector<uint32_t> bits;
  const BlockCtx c = blockCtx(p, key, bits, L.block);
  if constexpr (std::is_same_v<Out, int8_t>) {
    if (L.block == 64 && !byColumn && !c.sr && c.bits <= 8) {
      return gatheredCodes64(x, out, exps, L, c, b0, b1);
    }
  }
  VCounters cnt;
  HbfpPass r;
  std::vector<float> buf;  // a short block spanning runs
  std::vector<Out> res;    // its values
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
    int16_t* ex = exps ? exps + row * nb + k0 / L.block : nullptr;
    if (t + n <= L.segment) {
      const int64_t off = lineBase + s * L.segmentStride + t;
      if (n == 64) {
        contigBlock<64>(x + off, out + off, n, ex, c, index, cnt, r);
      } else {
        contigBlock<0>(x + off, out + off, n, ex, c, index, cnt, r);
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
      // spanBlock64 writes values (float, Bf16Bits) and int8 codes with nearest rounding (and
      // their exponents); other codes take the buffer.
      constexpr bool kSpan = std::is_same_v<Out, float> || std::is_same_v<Out, Bf16Bits> ||
                             std::is_same_v<Out, int8_t>;
      const bool span = kSpan && (!std::is_same_v<Out, int8_t> || (!c.sr && c.bits <= 8));
      if (span && n == 64 && (planned == k0 || (plan = spanPlan(L, s, t), planned = k0, true)) &&
          plan.fits) {
        if constexpr (kSpan) spanBlock64(x, out, lineBase, plan, ex, c, index, cnt, r);
      } else {
        if (buf.empty()) {
          buf.resize(static_cast<size_t>(L.block));
          res.resize(static_cast<size_t>(L.block));
        }
        pieces(
            [&](int64_t off, int64_t pos, int64_t m) { copyFloats(buf.data() + pos, x + off, m); });
        if (contigBlock<0>(buf.data(), res.data(), n, ex, c, index, cnt, r)) {
          pieces([&](int64_t off, int64_t pos, int64_t m) {
            copyOut(out + off, res.data() + pos, m);
          });
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
HbfpPass hbfpQuantizeGathered(const float* x, Out* out, int16_t* exps, const HbfpGatherLayout& L,
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
        return avx ? gatheredAvx512(x, out, exps, L, p, key, b0, b1)
                   : gatheredScalar(x, out, exps, L, p, key, b0, b1);
      },
      combine);
}

template HbfpPass hbfpQuantizeGathered<float>(const float*, float*, int16_t*,
                                              const HbfpGatherLayout&, const HbfpParams&,
                                              KernelIsa);
template HbfpPass hbfpQuantizeGathered<Bf16Bits>(const float*, Bf16Bits*, int16_t*,
                                                 const HbfpGatherLayout&, const HbfpParams&,
                                                 KernelIsa);
template HbfpPass hbfpQuantizeGathered<int8_t>(const float*, int8_t*, int16_t*,
                                               const HbfpGatherLayout&, const HbfpParams&,
                                               KernelIsa);
template HbfpPass hbfpQuantizeGathered<int16_t>(const float*, int16_t*, int16_t*,
                                                const HbfpGatherLayout&, const HbfpParams&,
                                                KernelIsa);
template HbfpPass hbfpQuantizeGathered<int32_t>(const float*, int32_t*, int16_t*,
                                                const HbfpGatherLayout&, const HbfpParams&,
                                                KernelIsa);

}  // namespace mantissa::formats::detail
