// int8 block-floating-point weight gradient of a convolution: see BfpConvWeights.h and
// docs/performance.md "int8 convolution kernel: weight gradient".
#include "core/ops/detail/BfpConvWeights.h"

// GCC 12 reports -Wuninitialized inside the AVX-512 intrinsic headers (GCC PR 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <algorithm>
#include <bit>
#include <climits>
#include <cmath>
#include <cstring>
#include <mutex>
#include <vector>

#include "core/CpuFeatures.h"
#include "core/Error.h"
#include "core/parallel/ParallelFor.h"

namespace mantissa::ops::detail {

namespace {

constexpr int kCT = 8;         // input channels per register tile
constexpr int64_t kParts = 8;  // fixed split of the positions (thread-count independent)
constexpr int64_t kChunkPositions = 1024;  // positions per chunk (gy and x chunks stay in L1/L2)
constexpr int64_t kPrefetchBlocks = 4;     // how far ahead the packing prefetches its source

/// One sub-block of a tap: padded positions [qa, qb), gy block b, x block kb.
struct Sub {
  int32_t qa, qb, b, kb;
};

struct Grid {
  int64_t N, C, O, H, W, k, pad, T, L, B, nb;
  int64_t Wp, Hs, Lp, M, S, G;  // padded row, rows per image, positions, margin, plane, groups
  int64_t Cpad, Opad, OT;
};

struct ExpRange {
  int lo = INT_MAX, hi = INT_MIN;
  void add(int e) {
    lo = std::min(lo, e);
    hi = std::max(hi, e);
  }
  void merge(const ExpRange& o) {
    lo = std::min(lo, o.lo);
    hi = std::max(hi, o.hi);
  }
  bool any() const { return lo <= hi; }
};

/// Where position p of the flattened (n, h, w) index lies: image n, offset hw in its plane,
/// column w, row h, padded position q. Advanced incrementally (no divisions per segment).
struct Cursor {
  int64_t n = 0, hw = 0, h = 0, w = 0, q = 0;
};

/// Writes `len` mantissas m (xor `flip`) to the padded plane dst (dst[q], q from `at`) row
/// segment by row segment, advancing `at` past them.
template <bool kAvx>
void scatterRows(const Grid& g, const int8_t* m, int64_t len, uint8_t flip, uint8_t* dst,
                 Cursor& at);

template <>
void scatterRows<false>(const Grid& g, const int8_t* m, int64_t len, uint8_t flip, uint8_t* dst,
                        Cursor& at) {
  for (int64_t i = 0; i < len;) {
    const int64_t seg = std::min(len - i, g.W - at.w);
    for (int64_t j = 0; j < seg; ++j) dst[at.q + j] = static_cast<uint8_t>(m[i + j]) ^ flip;
    i += seg, at.w += seg, at.q += seg, at.hw += seg;
    if (at.w == g.W) {
      at.w = 0, at.q += g.pad;
      if (++at.h == g.H) at.h = 0, at.hw = 0, ++at.n, at.q += g.pad * g.Wp;
    }
  }
}

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl")

template <>
void scatterRows<true>(const Grid& g, const int8_t* m, int64_t len, uint8_t flip, uint8_t* dst,
                       Cursor& at) {
  const __m512i f = _mm512_set1_epi8(static_cast<char>(flip));
  for (int64_t i = 0; i < len;) {
    const int64_t seg = std::min(len - i, g.W - at.w);
    for (int64_t j = 0; j < seg; j += 64) {  // m has 64 bytes of slack
      const int64_t n = std::min<int64_t>(64, seg - j);
      const __mmask64 k = n == 64 ? ~__mmask64{0} : (__mmask64{1} << n) - 1;
      // A whole store, the bytes past the segment the padding value: they land in this row's
      // padding or in positions written after this (masked byte stores were slower on Zen 4).
      const __m512i v = _mm512_xor_si512(_mm512_loadu_si512(m + i + j), f);
      _mm512_storeu_si512(dst + at.q + j, _mm512_mask_mov_epi8(f, k, v));
    }
    i += seg, at.w += seg, at.q += seg, at.hw += seg;
    if (at.w == g.W) {
      at.w = 0, at.q += g.pad;
      if (++at.h == g.H) at.h = 0, at.hw = 0, ++at.n, at.q += g.pad * g.Wp;
    }
  }
}

#pragma GCC pop_options

/// Channel c of an NCHW tensor with `channels` channels to a plane of the padded grid: byte
/// mantissas (xor `flip`: 0x80 gives u8 m + 128) at dst[M + q], exponents per block (INT32_MIN:
/// no non-zero mantissa). The plane's padding must already hold the value 0. `buf` holds
/// `block` floats, `m` block + 64 bytes.
template <bool kAvx>
void packPlane(const Grid& g, const float* v, int64_t channels, int64_t c, int bits, uint8_t flip,
               uint8_t* dst, int32_t* exps, ExpRange& range, bool& onGrid, float* buf, int8_t* m) {
  const int64_t HW = g.H * g.W;
  const auto convert = kAvx ? blockMantissasAvx512 : blockMantissas;
  Cursor at, pf;  // the block's position, and the one the prefetches read
  at.q = g.pad * g.Wp;
  pf.n = kPrefetchBlocks * g.B / HW, pf.hw = kPrefetchBlocks * g.B % HW;
  for (int64_t b = 0; b < g.nb; ++b) {
    const int64_t len = std::min(g.B, g.L - b * g.B);
    const float* src = v + (at.n * channels + c) * HW + at.hw;
    if (at.hw + len > HW) {  // the block crosses images: gather it
      int64_t n = at.n, hw = at.hw;
      for (int64_t i = 0; i < len;) {
        const int64_t seg = std::min(len - i, HW - hw);
        std::memcpy(buf + i, v + (n * channels + c) * HW + hw,
                    static_cast<size_t>(seg) * sizeof(float));
        i += seg, hw = 0, ++n;
      }
      src = buf;
    }
    // The planes of one channel are H·W floats long and C·H·W apart (on ResNet-20's 7x7 and
    // 14x14 layers shorter than a few blocks): without prefetching the source of the block
    // kPrefetchBlocks ahead, wherever it lies, the conversion stalled on memory at every block.
    for (int64_t i = 0, n = pf.n, hw = pf.hw; i < g.B && n < g.N;) {
      const int64_t seg = std::min(g.B - i, HW - hw);
      const char* base = reinterpret_cast<const char*>(v + (n * channels + c) * HW + hw);
      for (int64_t off = 0; off < seg * 4; off += 64) _mm_prefetch(base + off, _MM_HINT_T0);
      _mm_prefetch(base + seg * 4 - 1, _MM_HINT_T0);
      i += seg, hw += seg;
      if (hw == HW) hw = 0, ++n;
    }
    for (pf.hw += g.B; pf.hw >= HW;) pf.hw -= HW, ++pf.n;
    int32_t sum = 0;
    const int32_t sa = convert(src, len, bits, m, sum, onGrid);
    exps[b] = sa;
    if (sa != INT32_MIN) range.add(sa);
    // All zero: the padding value is already there, but the cursor must move.
    scatterRows<kAvx>(g, m, len, flip, dst + g.M, at);
  }
}

/// Mask of the bytes of lanes' positions [lo, hi) of a 4-position group, in all 16 lanes.
inline uint64_t groupMask(int64_t lo, int64_t hi) {
  const uint64_t bits4 = ((uint64_t{1} << hi) - 1) & ~((uint64_t{1} << lo) - 1);
  return bits4 * 0x1111111111111111ull;
}

struct Packed {
  const Grid* g;
  const uint8_t* x;                   // [Cpad][S] u8 planes
  const int8_t* gyP;                  // [Opad][S] s8 planes (scalar kernel)
  const int8_t* gyL;                  // [OT][G][16][4] s8 (VNNI kernel)
  const int32_t* gE;                  // [OT][nb][16] (sg + 127) << 23
  const int32_t* xE;                  // [nb][Cpad] sx << 23
  const std::vector<Sub>* subs;       // per tap
  const std::vector<int32_t>* first;  // per tap: first sub-block of gy block b (nb + 1)
  float* partial;                     // [parts][T][OT][Cpad][16]
};

/// The plain-loop kernel: the same integer sums and FMAs in the same order as the VNNI one.
void chunkScalar(const Packed& pk, int64_t part, int64_t b0, int64_t b1) {
  const Grid& g = *pk.g;
  for (int64_t ot = 0; ot < g.OT; ++ot) {
    for (int64_t ct = 0; ct < g.Cpad; ct += kCT) {
      for (int64_t t = 0; t < g.T; ++t) {
        const int64_t ky = t / g.k, kx = t % g.k;
        const int64_t dq = (ky - g.pad) * g.Wp + (kx - g.pad);
        const Sub* subs = pk.subs[t].data();
        const int32_t s0 = pk.first[t][b0], s1 = pk.first[t][b1];
        float* out = pk.partial + (((part * g.T + t) * g.OT + ot) * g.Cpad + ct) * 16;
        for (int c = 0; c < kCT; ++c) {
          const uint8_t* xp = pk.x + (ct + c) * g.S + g.M + dq;
          for (int l = 0; l < 16; ++l) {
            const int8_t* gp = pk.gyP + (ot * 16 + l) * g.S + g.M;
            float acc = 0.0f;
            for (int32_t s = s0; s < s1; ++s) {
              const Sub& sb = subs[s];
              int32_t sum = 0;
              for (int32_t q = sb.qa; q < sb.qb; ++q)
                sum += int32_t{gp[q]} * static_cast<int8_t>(xp[q] ^ 0x80);
              const int32_t bits =
                  pk.gE[(ot * g.nb + sb.b) * 16 + l] + pk.xE[sb.kb * g.Cpad + ct + c];
              acc = std::fma(static_cast<float>(sum), std::bit_cast<float>(bits), acc);
            }
            out[c * 16 + l] += acc;
          }
        }
      }
    }
  }
}

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")

/// One chunk of gy blocks [b0, b1) of part `part`: 16 output channels x 8 input channels per
/// register tile, one tap at a time (x and gy chunks stay in cache across taps and tiles).
void chunkVnni(const Packed& pk, int64_t part, int64_t b0, int64_t b1) {
  const Grid& g = *pk.g;
  const __m512i ones = _mm512_set1_epi8(1);
  for (int64_t ot = 0; ot < g.OT; ++ot) {
    const int8_t* gl = pk.gyL + ot * g.G * 64;
    const int32_t* ge = pk.gE + ot * g.nb * 16;
    for (int64_t ct = 0; ct < g.Cpad; ct += kCT) {
#pragma GCC unroll 1
      for (int64_t t = 0; t < g.T; ++t) {
        const int64_t ky = t / g.k, kx = t % g.k;
        const int64_t dq = (ky - g.pad) * g.Wp + (kx - g.pad);
        const uint8_t* xc[kCT];
        for (int c = 0; c < kCT; ++c) xc[c] = pk.x + (ct + c) * g.S + g.M + dq;
        const Sub* subs = pk.subs[t].data();
        const int32_t s0 = pk.first[t][b0], s1 = pk.first[t][b1];
        __m512 acc[kCT];
#pragma GCC unroll 8
        for (int c = 0; c < kCT; ++c) acc[c] = _mm512_setzero_ps();
#pragma GCC unroll 1
        for (int32_t s = s0; s < s1; ++s) {
          const Sub sb = subs[s];
          __m512i S[kCT], Sg = _mm512_setzero_si512();
#pragma GCC unroll 8
          for (int c = 0; c < kCT; ++c) S[c] = _mm512_setzero_si512();
          auto step = [&](int64_t q4, __m512i gv) {
            Sg = _mm512_dpbusd_epi32(Sg, ones, gv);
#pragma GCC unroll 8
            for (int c = 0; c < kCT; ++c) {
              __m512i xb;
              // Inline assembly so that GCC neither hoists nor spills the broadcast
              // (docs/spikes/int8_conv_forward.cpp).
              asm("vpbroadcastd %[x], %[b]"
                  : [b] "=v"(xb)
                  : [x] "m"(*reinterpret_cast<const int32_t*>(xc[c] + q4)));
              S[c] = _mm512_dpbusd_epi32(S[c], xb, gv);
            }
          };
          const int64_t g0 = sb.qa >> 2, g1 = (sb.qb + 3) >> 2;
          const uint64_t m0 = groupMask(sb.qa - 4 * g0, 4), m1 = groupMask(0, sb.qb - 4 * (g1 - 1));
          if (g1 - g0 == 1) {
            step(4 * g0, _mm512_maskz_loadu_epi8(m0 & m1, gl + g0 * 64));
          } else {
            step(4 * g0, _mm512_maskz_loadu_epi8(m0, gl + g0 * 64));
#pragma GCC unroll 1
            for (int64_t gi = g0 + 1; gi < g1 - 1; ++gi)
              step(4 * gi, _mm512_loadu_si512(gl + gi * 64));
            step(4 * (g1 - 1), _mm512_maskz_loadu_epi8(m1, gl + (g1 - 1) * 64));
          }
          // S[c] = Σ (x + 128)·gy: subtract 128·Σ gy. The scale 2^(sg + sx) is built from the
          // exponent fields (both were checked to give a normal power of two).
          const __m512i corr = _mm512_slli_epi32(Sg, 7);
          const __m512i gev = _mm512_loadu_si512(ge + sb.b * 16);
          const int32_t* xe = pk.xE + sb.kb * g.Cpad + ct;
#pragma GCC unroll 8
          for (int c = 0; c < kCT; ++c) {
            const __m512 scale =
                _mm512_castsi512_ps(_mm512_add_epi32(gev, _mm512_set1_epi32(xe[c])));
            acc[c] =
                _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(S[c], corr)), scale, acc[c]);
          }
        }
        float* out = pk.partial + (((part * g.T + t) * g.OT + ot) * g.Cpad + ct) * 16;
#pragma GCC unroll 8
        for (int c = 0; c < kCT; ++c) {
          _mm512_storeu_ps(out + c * 16, _mm512_add_ps(_mm512_loadu_ps(out + c * 16), acc[c]));
        }
      }
    }
  }
}

/// gy planes to the lane layout: group gi of output-channel tile ot = dword gi of 16 planes.
void lanesAvx512(const Grid& g, const int8_t* planes, int8_t* lanes, int64_t i0, int64_t i1) {
  const __m512i idx =
      _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                         _mm512_set1_epi32(static_cast<int32_t>(g.S)));
  for (int64_t i = i0; i < i1; ++i) {
    const int64_t ot = i / g.G, gi = i % g.G;
    const int8_t* base = planes + ot * 16 * g.S + g.M + 4 * gi;
    _mm512_storeu_si512(lanes + i * 64, _mm512_i32gather_epi32(idx, base, 1));
  }
}

#pragma GCC pop_options

}  // namespace

bool bfpConv2dBackwardWeights(const BfpWeightGradArgs& a, int64_t block, float* dw, BfpIsa isa) {
  MANTISSA_CHECK(a.k % 2 == 1 && a.k >= 1 && block >= 1 && a.C >= 1 && a.O >= 1,
                 "bfpConv2dBackwardWeights: kernel ", a.k, " (odd), block ", block, ", channels ",
                 a.C, " -> ", a.O);
  MANTISSA_CHECK(a.bitsX >= 2 && a.bitsX <= 8 && a.bitsGy >= 2 && a.bitsGy <= 8,
                 "bfpConv2dBackwardWeights: mantissa widths ", a.bitsX, ", ", a.bitsGy,
                 " outside [2, 8]");
  const bool vnni = isa == BfpIsa::Vnni;
  MANTISSA_CHECK(!vnni || cpuFeatures().avx512Vnni,
                 "bfpConv2dBackwardWeights: this CPU has no AVX-512 VNNI");
  const int64_t T = a.k * a.k;
  if (a.N == 0 || a.H == 0 || a.W == 0) {
    std::fill(dw, dw + a.O * a.C * T, 0.0f);
    return true;
  }
  if (block > 1024) return false;  // |Σ| of a sub-block must stay below 2^24
  Grid g{};
  g.N = a.N, g.C = a.C, g.O = a.O, g.H = a.H, g.W = a.W, g.k = a.k;
  g.pad = (a.k - 1) / 2, g.T = T, g.L = a.N * a.H * a.W, g.B = block;
  g.nb = (g.L + block - 1) / block;
  g.Wp = g.W + g.pad, g.Hs = g.H + g.pad;
  g.Lp = (g.N * g.Hs + g.pad) * g.Wp;
  g.M = (g.pad * g.Wp + g.pad + 8 + 63) / 64 * 64;  // every tap's reads, groups rounded to 4
  g.S = g.Lp + 2 * g.M;
  g.G = (g.Lp + 3) / 4;
  g.Cpad = (g.C + kCT - 1) / kCT * kCT, g.Opad = (g.O + 15) / 16 * 16, g.OT = g.Opad / 16;
  if (g.S * std::max(g.Cpad, g.Opad) >= (int64_t{1} << 31)) return false;

  // ---- planes: x as u8 (padding 128, the value 0), gy as s8 (padding 0), one region --------
  Tensor xBuf = Tensor::uninitialized({g.Cpad * g.S}, DType::U8);
  Tensor gBuf = Tensor::uninitialized({g.Opad * g.S}, DType::I8);
  std::vector<int32_t> xExp(static_cast<size_t>(g.Cpad * g.nb), INT32_MIN);
  std::vector<int32_t> gExp(static_cast<size_t>(g.Opad * g.nb), INT32_MIN);
  uint8_t* xp = xBuf.data<uint8_t>();
  int8_t* gp = gBuf.data<int8_t>();
  const bool avx = vnni;  // VNNI implies the AVX-512 of the packing
  ExpRange rx, rg;
  bool gridX = true, gridG = true;
  std::mutex mu;
  parallelFor(0, g.Cpad + g.Opad, 1, [&](int64_t i0, int64_t i1) {
    ExpRange lx, lg;
    bool okX = true, okG = true;
    std::vector<float> buf(static_cast<size_t>(block));
    std::vector<int8_t> m(static_cast<size_t>(block + 64));
    const auto pack = avx ? packPlane<true> : packPlane<false>;
    for (int64_t i = i0; i < i1; ++i) {
      if (i < g.Cpad) {
        std::memset(xp + i * g.S, 0x80, static_cast<size_t>(g.S));
        if (i < g.C) {
          pack(g, a.x, g.C, i, a.bitsX, 0x80, xp + i * g.S, xExp.data() + i * g.nb, lx, okX,
               buf.data(), m.data());
        }
      } else {
        const int64_t o = i - g.Cpad;
        std::memset(gp + o * g.S, 0, static_cast<size_t>(g.S));
        if (o < g.O) {
          pack(g, a.gy, g.O, o, a.bitsGy, 0, reinterpret_cast<uint8_t*>(gp + o * g.S),
               gExp.data() + o * g.nb, lg, okG, buf.data(), m.data());
        }
      }
    }
    std::lock_guard<std::mutex> lock(mu);
    rx.merge(lx);
    rg.merge(lg);
    gridX &= okX;
    gridG &= okG;
  });

  const BfpExponents ex{rx.any() ? rx.lo : 0, rx.any() ? rx.hi : 0, rx.any(), gridX, a.bitsX};
  const BfpExponents eg{rg.any() ? rg.lo : 0, rg.any() ? rg.hi : 0, rg.any(), gridG, a.bitsGy};
  if (!bfpExactRange(ex, eg, std::min(block, g.L))) return false;
  if (!ex.anyNonZero || !eg.anyNonZero) {  // the product is exactly zero
    std::fill(dw, dw + g.O * g.C * T, 0.0f);
    return true;
  }

  // ---- scale fields, sub-blocks per tap, gy lanes ----------------------------------------
  // Zero blocks (and padded channels) take the smallest exponent: their sums are 0 and the
  // scale stays a normal power of two (bfpExactRange).
  std::vector<int32_t> gE(static_cast<size_t>(g.OT * g.nb * 16));
  std::vector<int32_t> xE(static_cast<size_t>(g.nb * g.Cpad));
  for (int64_t o = 0; o < g.Opad; ++o) {
    for (int64_t b = 0; b < g.nb; ++b) {
      const int32_t e = gExp[o * g.nb + b];
      gE[((o / 16) * g.nb + b) * 16 + o % 16] = ((e == INT32_MIN ? eg.minExp : e) + 127) << 23;
    }
  }
  for (int64_t c = 0; c < g.Cpad; ++c) {
    for (int64_t b = 0; b < g.nb; ++b) {
      const int32_t e = xExp[c * g.nb + b];
      xE[b * g.Cpad + c] =
          static_cast<int32_t>(static_cast<uint32_t>(e == INT32_MIN ? ex.minExp : e) << 23);
    }
  }
  // Padded position of every position (the sub-block bounds of all taps look them up).
  std::vector<int32_t> qOf(static_cast<size_t>(g.L));
  for (int64_t p = 0, q = g.pad * g.Wp, w = 0, h = 0; p < g.L; ++p) {
    qOf[p] = static_cast<int32_t>(q);
    ++q;
    if (++w == g.W) {
      w = 0, q += g.pad;
      if (++h == g.H) h = 0, q += g.pad * g.Wp;
    }
  }
  std::vector<std::vector<Sub>> subs(static_cast<size_t>(T));
  std::vector<std::vector<int32_t>> first(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) {
    const int64_t d = (t / g.k - g.pad) * g.W + (t % g.k - g.pad);
    const int64_t r = ((-d) % block + block) % block;  // where the shifted x blocks start
    auto& sv = subs[t];
    auto& fv = first[t];
    sv.reserve(static_cast<size_t>(2 * g.nb));
    fv.resize(static_cast<size_t>(g.nb + 1));
    auto add = [&](int64_t p1, int64_t p2, int64_t b) {
      // x block of the reads inside the image (floor division); the others read zeros.
      const int64_t xs = p1 + d;
      const int64_t kb = std::clamp<int64_t>(xs >= 0 ? xs / block : -1, 0, g.nb - 1);
      sv.push_back({qOf[p1], qOf[p2 - 1] + 1, static_cast<int32_t>(b), static_cast<int32_t>(kb)});
    };
    for (int64_t b = 0; b < g.nb; ++b) {
      fv[b] = static_cast<int32_t>(sv.size());
      const int64_t p1 = b * block, pe = std::min(g.L, p1 + block);
      if (r > 0 && p1 + r < pe) {
        add(p1, p1 + r, b);
        add(p1 + r, pe, b);
      } else {
        add(p1, pe, b);
      }
    }
    fv[g.nb] = static_cast<int32_t>(sv.size());
  }
  Tensor lanes;
  if (vnni) {
    lanes = Tensor::uninitialized({g.OT * g.G * 64}, DType::I8);
    parallelFor(0, g.OT * g.G, 256,
                [&](int64_t i0, int64_t i1) { lanesAvx512(g, gp, lanes.data<int8_t>(), i0, i1); });
  }

  // ---- the kernel: fixed parts of the gy blocks, chunks within each, partials summed in order
  const int64_t parts = std::min(kParts, g.nb);
  const int64_t chunk = std::max<int64_t>(1, kChunkPositions / block);
  const int64_t tileFloats = T * g.OT * g.Cpad * 16;
  Tensor partBuf = Tensor::zeros({parts * tileFloats});
  Packed pk{&g,
            xp,
            gp,
            vnni ? lanes.data<int8_t>() : nullptr,
            gE.data(),
            xE.data(),
            subs.data(),
            first.data(),
            partBuf.data<float>()};
  parallelFor(0, parts, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t part = i0; part < i1; ++part) {
      const int64_t pb0 = part * g.nb / parts, pb1 = (part + 1) * g.nb / parts;
      for (int64_t b0 = pb0; b0 < pb1; b0 += chunk) {
        const int64_t b1 = std::min(pb1, b0 + chunk);
        if (vnni) {
          chunkVnni(pk, part, b0, b1);
        } else {
          chunkScalar(pk, part, b0, b1);
        }
      }
    }
  });
  // Partials summed in part order (vectorizable streams), then transposed to [O, C, k, k].
  float* pr = partBuf.data<float>();
  parallelFor(0, tileFloats, 4096, [&](int64_t i0, int64_t i1) {
    for (int64_t part = 1; part < parts; ++part) {
      const float* src = pr + part * tileFloats;
      for (int64_t i = i0; i < i1; ++i) pr[i] += src[i];
    }
  });
  parallelFor(0, g.O, 4, [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o) {
      for (int64_t c = 0; c < g.C; ++c) {
        for (int64_t t = 0; t < T; ++t) {
          dw[(o * g.C + c) * T + t] = pr[((t * g.OT + o / 16) * g.Cpad + c) * 16 + o % 16];
        }
      }
    }
  });
  return true;
}

}  // namespace mantissa::ops::detail
