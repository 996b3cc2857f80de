// int8 block-floating-point weight gradient of a convolution: see BfpConvWeights.h and
// docs/performance.md "int8 convolution kernel: weight gradient".
#include "core/ops/detail/BfpConvWeights.h"

#include "core/Immintrin.h"

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
constexpr int64_t kPrefetchBlocks = 12;    // how far ahead the packing prefetches its source

/// One sub-block of a tap: positions [qa, qb), gy block b, x block kb.
struct Sub {
  int32_t qa, qb, b, kb;
};

struct Grid {
  int64_t N, C, O, H, W, k, pad, T, L, B, nb;
  int64_t M, S, G;  // margin before and after each plane, plane stride, groups of 4 positions
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

/// Channel c of an NCHW tensor of HBFP codes with `channels` channels to a plane: its I8
/// mantissas of positions 0..L-1 at dst[M + p] (xor `flip`: 0x80 gives u8 m + 128), and its
/// block exponents e (`e`, one per block) as ulp exponents e - (bits - 1), INT32_MIN for a block
/// without a non-zero mantissa.
void packPlaneCodes(const Grid& g, const int8_t* codes, const int16_t* e, int64_t channels,
                    int64_t c, int bits, uint8_t flip, uint8_t* dst, int32_t* exps,
                    ExpRange& range) {
  // The plane is channel c's H·W codes of each image one after the other: copied image by image
  // (the source planes are C·H·W apart and, on the 7x7 layer, 49 bytes long: without prefetching
  // a few images ahead the copy stalls on memory), then each block scanned for a non-zero
  // mantissa.
  const int64_t HW = g.H * g.W, ahead = std::max<int64_t>(1, kPrefetchBlocks * g.B / HW);
  uint8_t* plane = dst + g.M;
  for (int64_t n = 0; n < g.N; ++n) {
    if (n + ahead < g.N) {
      const auto* f = reinterpret_cast<const char*>(codes + ((n + ahead) * channels + c) * HW);
      for (int64_t off = 0; off < HW; off += 64) _mm_prefetch(f + off, _MM_HINT_T0);
      _mm_prefetch(f + HW - 1, _MM_HINT_T0);
    }
    const auto* src = reinterpret_cast<const uint8_t*>(codes + (n * channels + c) * HW);
    uint8_t* d = plane + n * HW;
    for (int64_t j = 0; j < HW; ++j) d[j] = src[j] ^ flip;
  }
  for (int64_t b = 0; b < g.nb; ++b) {
    const int64_t len = std::min(g.B, g.L - b * g.B);
    const uint8_t* d = plane + b * g.B;
    uint8_t any = 0;
    for (int64_t i = 0; i < len; ++i) any |= d[i] ^ flip;
    const int32_t sa = any != 0 ? e[b] - (bits - 1) : INT32_MIN;
    exps[b] = sa;
    if (sa != INT32_MIN) range.add(sa);
  }
}

/// A 4-bit pattern of the positions of a group repeated in all 16 lanes (vpdpbusd's layout).
constexpr uint64_t kNibbles = 0x1111111111111111ull;

/// Mask of the bytes of positions [lo, hi) of a 4-position group, in all 16 lanes.
inline uint64_t groupMask(int64_t lo, int64_t hi) {
  return (((uint64_t{1} << hi) - 1) & ~((uint64_t{1} << lo) - 1)) * kNibbles;
}

struct Packed {
  const Grid* g;
  const uint8_t* x;      // [Cpad][S] u8 planes (mantissa + 128)
  const int8_t* gyP;     // [Opad][S] s8 planes (plain-loop kernel)
  const int8_t* gyL;     // [OT][G][16][4] s8 (VNNI kernel)
  const int32_t* gE;     // [OT][nb][16] (sg + 127) << 23
  const int32_t* xE;     // [nb][Cpad] sx << 23
  const Sub* subs;       // [T][2 nb] sub-blocks per tap
  const int32_t* first;  // [T][nb + 1] per tap: first sub-block of gy block b
  const uint8_t* valid;  // [T][G] bit j: position 4g + j of the tap reads the image
  float* partial;        // [parts][T][OT][Cpad][16]
};

/// The plain-loop kernel: the same integer sums and FMAs in the same order as the VNNI one.
void chunkScalar(const Packed& pk, int64_t part, int64_t b0, int64_t b1) {
  const Grid& g = *pk.g;
  for (int64_t ot = 0; ot < g.OT; ++ot) {
    for (int64_t ct = 0; ct < g.Cpad; ct += kCT) {
      for (int64_t t = 0; t < g.T; ++t) {
        const int64_t ky = t / g.k, kx = t % g.k;
        const int64_t d = (ky - g.pad) * g.W + (kx - g.pad);
        const Sub* subs = pk.subs + t * 2 * g.nb;
        const uint8_t* vm = pk.valid + t * g.G;
        const int32_t s0 = pk.first[t * (g.nb + 1) + b0], s1 = pk.first[t * (g.nb + 1) + b1];
        float* out = pk.partial + (((part * g.T + t) * g.OT + ot) * g.Cpad + ct) * 16;
        for (int c = 0; c < kCT; ++c) {
          const uint8_t* xp = pk.x + (ct + c) * g.S + g.M + d;
          for (int l = 0; l < 16; ++l) {
            const int8_t* gp = pk.gyP + (ot * 16 + l) * g.S + g.M;
            float acc = 0.0f;
            for (int32_t s = s0; s < s1; ++s) {
              const Sub& sb = subs[s];
              int32_t sum = 0;
              for (int32_t q = sb.qa; q < sb.qb; ++q) {
                if ((vm[q >> 2] >> (q & 3)) & 1)
                  sum += int32_t{gp[q]} * static_cast<int8_t>(xp[q] ^ 0x80);
              }
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
/// `corr`: room for 16 int32 per sub-block of the chunk and tap.
void chunkVnni(const Packed& pk, int64_t part, int64_t b0, int64_t b1, int32_t* corr) {
  const Grid& g = *pk.g;
  const __m512i ones = _mm512_set1_epi8(1);
  for (int64_t ot = 0; ot < g.OT; ++ot) {
    const int8_t* gl = pk.gyL + ot * g.G * 64;
    const int32_t* ge = pk.gE + ot * g.nb * 16;
#pragma GCC unroll 1
    for (int64_t t = 0; t < g.T; ++t) {
      const int64_t ky = t / g.k, kx = t % g.k;
      const int64_t d = (ky - g.pad) * g.W + (kx - g.pad);
      const Sub* subs = pk.subs + t * 2 * g.nb;
      const uint8_t* vm = pk.valid + t * g.G;
      const int32_t s0 = pk.first[t * (g.nb + 1) + b0], s1 = pk.first[t * (g.nb + 1) + b1];
      // The mask of group gi of sub-block sb: the positions whose tap reads inside the image
      // and that lie in the sub-block; gy is zero elsewhere (x there is another pixel's or the
      // margin's).
      auto mask = [&](const Sub& sb, int64_t gi) -> __mmask64 {
        uint64_t m = vm[gi] * kNibbles;
        if (gi == sb.qa >> 2) m &= groupMask(sb.qa & 3, 4);
        if (gi == (sb.qb - 1) >> 2) m &= groupMask(0, sb.qb - 4 * gi);
        return m;
      };
      // S[c] += Σ (x + 128)·gy over group gi for the 8 planes of the tile. Broadcast and
      // vpdpbusd in inline assembly: with the intrinsic GCC gave the accumulators two registers
      // each and copied them every group (+16 moves per 8 vpdpbusd); "+v" keeps each in one.
      auto dots = [&](__m512i S[kCT], const uint8_t* const xc[kCT], int64_t gi, __m512i gv) {
#pragma GCC unroll 8
        for (int c = 0; c < kCT; ++c) {
          __m512i xb;
          asm("vpbroadcastd %[x], %[b]\n\tvpdpbusd %[g], %[b], %[s]"
              : [s] "+v"(S[c]), [b] "=&v"(xb)
              : [x] "m"(*reinterpret_cast<const int32_t*>(xc[c] + 4 * gi)), [g] "v"(gv));
        }
      };
#pragma GCC unroll 1
      for (int64_t ct = 0; ct < g.Cpad; ct += kCT) {
        const uint8_t* xc[kCT];
        for (int c = 0; c < kCT; ++c) xc[c] = pk.x + (ct + c) * g.S + g.M + d;
        __m512 acc[kCT];
#pragma GCC unroll 8
        for (int c = 0; c < kCT; ++c) acc[c] = _mm512_setzero_ps();
#pragma GCC unroll 1
        for (int32_t s = s0; s < s1; ++s) {
          const Sub sb = subs[s];
          const int64_t g0 = sb.qa >> 2, g1 = (sb.qb + 3) >> 2;
          __m512i S[kCT];
          // The first tile runs one loop per sub-block with the edges in the mask (peeling them
          // there made GCC spill: 1.4x slower); the others peel the edge groups, whose masks
          // cover the sub-block's ends, from the middle ones (the tap's image mask only; 2-3%
          // faster). x is stored as u8 m + 128, which adds
          // 128·Σgy to every sum: the first tile also sums gy (one vpdpbusd with ones) and keeps
          // -128·Σgy per sub-block, the start of the other tiles' accumulators.
          if (ct == 0) {
            __m512i sg = _mm512_setzero_si512();
#pragma GCC unroll 8
            for (int c = 0; c < kCT; ++c) S[c] = _mm512_setzero_si512();
#pragma GCC unroll 1
            for (int64_t gi = g0; gi < g1; ++gi) {
              const __m512i gv = _mm512_maskz_loadu_epi8(mask(sb, gi), gl + gi * 64);
              asm("vpdpbusd %[g], %[o], %[s]" : [s] "+v"(sg) : [g] "v"(gv), [o] "v"(ones));
              dots(S, xc, gi, gv);
            }
            const __m512i start =
                _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(sg, 7));
            _mm512_storeu_si512(corr + (s - s0) * 16, start);
#pragma GCC unroll 8
            for (int c = 0; c < kCT; ++c) S[c] = _mm512_add_epi32(S[c], start);
          } else {
            const __m512i start = _mm512_loadu_si512(corr + (s - s0) * 16);
#pragma GCC unroll 8
            for (int c = 0; c < kCT; ++c) S[c] = start;
            dots(S, xc, g0, _mm512_maskz_loadu_epi8(mask(sb, g0), gl + g0 * 64));
#pragma GCC unroll 1
            for (int64_t gi = g0 + 1; gi < g1 - 1; ++gi) {
              dots(S, xc, gi, _mm512_maskz_loadu_epi8(vm[gi] * kNibbles, gl + gi * 64));
            }
            if (g1 - 1 > g0) {
              dots(S, xc, g1 - 1, _mm512_maskz_loadu_epi8(mask(sb, g1 - 1), gl + (g1 - 1) * 64));
            }
          }
          // The scale 2^(sg + sx) built from the exponent fields (checked to give a normal
          // power of two).
          const __m512i gev = _mm512_loadu_si512(ge + sb.b * 16);
          const int32_t* xe = pk.xE + sb.kb * g.Cpad + ct;
#pragma GCC unroll 8
          for (int c = 0; c < kCT; ++c) {
            const __m512 scale =
                _mm512_castsi512_ps(_mm512_add_epi32(gev, _mm512_set1_epi32(xe[c])));
            acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(S[c]), scale, acc[c]);
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
  g.M = (g.pad * g.W + g.pad + 4 + 63) / 64 * 64;  // every tap's reads, groups rounded to 4
  // Planes 4 KiB + 9 lines apart modulo 4 KiB: the 8 planes of a tile and the gy lanes the
  // kernel streams through at once fall in different L1 sets.
  g.S = (g.L + 2 * g.M + 4095) / 4096 * 4096 + 576;
  g.G = (g.L + 3) / 4;
  g.Cpad = (g.C + kCT - 1) / kCT * kCT, g.Opad = (g.O + 15) / 16 * 16, g.OT = g.Opad / 16;
  if (g.S * std::max(g.Cpad, g.Opad) >= (int64_t{1} << 31)) return false;

  // ---- planes: x as u8 (mantissa + 128), gy as s8; margins and padded channels hold 0 -------
  Tensor xBuf = Tensor::uninitialized({g.Cpad * g.S}, DType::U8);
  Tensor gBuf = Tensor::uninitialized({g.Opad * g.S}, DType::I8);
  // Buffers as Tensors (Storage recycles them): fresh std::vectors page-faulted about 1 MiB a
  // call on the 16-channel layer (a tenth of the time).
  Tensor xExpBuf = Tensor::uninitialized({g.Cpad * g.nb}, DType::I32);
  Tensor gExpBuf = Tensor::uninitialized({g.Opad * g.nb}, DType::I32);
  int32_t* xExp = xExpBuf.data<int32_t>();
  int32_t* gExp = gExpBuf.data<int32_t>();
  std::fill(xExp + g.C * g.nb, xExp + g.Cpad * g.nb, INT32_MIN);
  std::fill(gExp + g.O * g.nb, gExp + g.Opad * g.nb, INT32_MIN);
  uint8_t* xp = xBuf.data<uint8_t>();
  int8_t* gp = gBuf.data<int8_t>();
  ExpRange rx, rg;
  std::mutex mu;
  parallelFor(0, g.Cpad + g.Opad, 1, [&](int64_t i0, int64_t i1) {
    ExpRange lx, lg;
    for (int64_t i = i0; i < i1; ++i) {
      const bool isX = i < g.Cpad;
      const int64_t ch = isX ? i : i - g.Cpad;
      uint8_t* plane = isX ? xp + ch * g.S : reinterpret_cast<uint8_t*>(gp) + ch * g.S;
      const uint8_t zero = isX ? 0x80 : 0;
      if (ch >= (isX ? g.C : g.O)) {
        std::memset(plane, zero, static_cast<size_t>(g.S));
        continue;
      }
      std::memset(plane, zero, static_cast<size_t>(g.M));
      std::memset(plane + g.M + g.L, zero, static_cast<size_t>(g.S - g.M - g.L));
      if (isX) {
        packPlaneCodes(g, a.x, a.xExps + ch * g.nb, g.C, ch, a.bitsX, 0x80, plane, xExp + ch * g.nb,
                       lx);
      } else {
        packPlaneCodes(g, a.gy, a.gyExps + ch * g.nb, g.O, ch, a.bitsGy, 0, plane, gExp + ch * g.nb,
                       lg);
      }
    }
    std::lock_guard<std::mutex> lock(mu);
    rx.merge(lx);
    rg.merge(lg);
  });

  const BfpExponents ex{rx.any() ? rx.lo : 0, rx.any() ? rx.hi : 0, rx.any(), true, a.bitsX};
  const BfpExponents eg{rg.any() ? rg.lo : 0, rg.any() ? rg.hi : 0, rg.any(), true, a.bitsGy};
  if (!bfpExactRange(ex, eg, std::min(block, g.L))) return false;
  if (!ex.anyNonZero || !eg.anyNonZero) {  // the product is exactly zero
    std::fill(dw, dw + g.O * g.C * T, 0.0f);
    return true;
  }

  // ---- scale fields, sub-blocks per tap, gy lanes ----------------------------------------
  // Zero blocks (and padded channels) take the smallest exponent: their sums are 0 and the
  // scale stays a normal power of two (bfpExactRange).
  Tensor gEBuf = Tensor::uninitialized({g.OT * g.nb * 16}, DType::I32);
  Tensor xEBuf = Tensor::uninitialized({g.nb * g.Cpad}, DType::I32);
  int32_t* gE = gEBuf.data<int32_t>();
  int32_t* xE = xEBuf.data<int32_t>();
  Tensor subBuf = Tensor::uninitialized({T * 2 * g.nb * 4}, DType::I32);
  Tensor firstBuf = Tensor::uninitialized({T * (g.nb + 1)}, DType::I32);
  Sub* subs = reinterpret_cast<Sub*>(subBuf.data<int32_t>());
  int32_t* first = firstBuf.data<int32_t>();
  // Which positions read inside the image, per tap: all but the rows and columns the tap's
  // offset takes out of it (and the positions past L in the last group).
  Tensor validBuf = Tensor::uninitialized({T * g.G}, DType::U8);
  uint8_t* valid = validBuf.data<uint8_t>();
  // One parallel region: per tap its sub-blocks and image mask, and the two exponent tables.
  parallelFor(0, T + 2, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      if (i == T) {
        for (int64_t o = 0; o < g.Opad; ++o) {
          for (int64_t b = 0; b < g.nb; ++b) {
            const int32_t e = gExp[o * g.nb + b], sg = e == INT32_MIN ? eg.minExp : e;
            gE[((o / 16) * g.nb + b) * 16 + o % 16] = (sg + 127) << 23;
          }
        }
        continue;
      }
      if (i == T + 1) {
        for (int64_t c = 0; c < g.Cpad; ++c) {
          for (int64_t b = 0; b < g.nb; ++b) {
            const int32_t e = xExp[c * g.nb + b];
            xE[b * g.Cpad + c] =
                static_cast<int32_t>(static_cast<uint32_t>(e == INT32_MIN ? ex.minExp : e) << 23);
          }
        }
        continue;
      }
      const int64_t t = i;
      const int64_t d = (t / g.k - g.pad) * g.W + (t % g.k - g.pad);
      const int64_t r = ((-d) % block + block) % block;  // where the shifted x blocks start
      Sub* sv = subs + t * 2 * g.nb;
      int32_t* fv = first + t * (g.nb + 1);
      int32_t ns = 0;
      auto add = [&](int64_t p1, int64_t p2, int64_t b) {
        // x block of the reads inside the image (floor division); the others read zeros.
        const int64_t xs = p1 + d;
        const int64_t kb = std::clamp<int64_t>(xs >= 0 ? xs / block : -1, 0, g.nb - 1);
        sv[ns++] = {static_cast<int32_t>(p1), static_cast<int32_t>(p2), static_cast<int32_t>(b),
                    static_cast<int32_t>(kb)};
      };
      for (int64_t b = 0; b < g.nb; ++b) {
        fv[b] = ns;
        const int64_t p1 = b * block, pe = std::min(g.L, p1 + block);
        if (r > 0 && p1 + r < pe) {
          add(p1, p1 + r, b);
          add(p1 + r, pe, b);
        } else {
          add(p1, pe, b);
        }
      }
      fv[g.nb] = ns;
      const int64_t dy = t / g.k - g.pad, dx = t % g.k - g.pad;
      uint8_t* vm = valid + t * g.G;
      std::memset(vm, 0xf, static_cast<size_t>(g.G));
      auto clear = [&](int64_t p) { vm[p >> 2] &= static_cast<uint8_t>(~(1u << (p & 3))); };
      for (int64_t p = g.L; p < 4 * g.G; ++p) clear(p);
      if (dy == 0 && dx == 0) continue;
      for (int64_t n = 0; n < g.N; ++n) {
        for (int64_t h = 0; h < g.H; ++h) {
          const int64_t row = (n * g.H + h) * g.W;
          if (h + dy < 0 || h + dy >= g.H) {
            for (int64_t w = 0; w < g.W; ++w) clear(row + w);
            continue;
          }
          for (int64_t w = 0; w < std::min(-dx, g.W); ++w) clear(row + w);
          for (int64_t w = std::max<int64_t>(0, g.W - dx); w < g.W; ++w) clear(row + w);
        }
      }
    }
  });
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
  Packed pk{&g,    xp,
            gp,    vnni ? lanes.data<int8_t>() : nullptr,
            gE,    xE,
            subs,  first,
            valid, partBuf.data<float>()};
  parallelFor(0, parts, 1, [&](int64_t i0, int64_t i1) {
    // Sub-blocks per chunk and tap: at most two per gy block.
    std::vector<int32_t> corr(static_cast<size_t>(vnni ? 2 * chunk * 16 : 0));
    for (int64_t part = i0; part < i1; ++part) {
      const int64_t pb0 = part * g.nb / parts, pb1 = (part + 1) * g.nb / parts;
      for (int64_t b0 = pb0; b0 < pb1; b0 += chunk) {
        const int64_t b1 = std::min(pb1, b0 + chunk);
        if (vnni) {
          chunkVnni(pk, part, b0, b1, corr.data());
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
