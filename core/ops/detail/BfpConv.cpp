// int8 block-floating-point direct convolution: see BfpConv.h and docs/performance.md "int8
// convolution kernel". Started from docs/spikes/int8_conv_forward.cpp.
#include "core/ops/detail/BfpConv.h"

#include "core/Immintrin.h"

#include <algorithm>
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

/// Values ahead of the current 16 pixels that the activation packing prefetches.
constexpr int64_t kPrefetch = 64;

/// Cache lines ahead of the current 16 pixels that the packing of codes prefetches.
constexpr int64_t kPrefetchLines = 2;

/// Largest scale table (floats): 16 MiB.
constexpr int64_t kMaxTableFloats = int64_t{1} << 22;

/// Smallest and largest exponent over blocks with a non-zero mantissa, merged across threads.
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

/// The geometry and the packed operands the kernels read.
struct Conv {
  int64_t N, C, O, H, W, k, pad, T;
  int64_t CB, P, Q, Cp;     // blocks per pixel, padded block length, its dwords, bytes per pixel
  int64_t Opad, OV;         // output channels rounded up to 16, their vectors
  int64_t PX, Hp, Wp;       // output pixels per register tile, padded input rows and columns
  int64_t E = 1;            // rows of the scale table: activation exponents saLo.. saLo + E - 1
  int saLo = 0;
  int64_t img0 = 0;         // the image whose packing x and xe hold
  uint8_t* x = nullptr;     // [Hp][Wp][Cp] mantissa + 128 (padding: 128, the value 0)
  int32_t* xe = nullptr;    // [Hp][Wp][CB] offset (sa - saLo)·Opad of the table row of sa
  int8_t* w = nullptr;      // [T][CB][Q][Opad][4] mantissas
  int32_t* corr = nullptr;  // [T][CB][Opad] -128 · Σ w (the accumulator's start)
  int32_t* wsb = nullptr;   // [T][CB][Opad] sb
  float* tab = nullptr;     // [T][CB][E][Opad] 2^(sa + sb)
  float* y = nullptr;
};

/// The table offset of activation exponent sa (INT32_MIN: a block without a non-zero
/// mantissa, any row). Exponents outside the table make the call decline (bfpExactRange fails
/// for them); they read row 0 until then.
inline int32_t tableOffset(const Conv& c, int32_t sa) {
  const int64_t e = sa == INT32_MIN ? 0 : sa - int64_t{c.saLo};
  return static_cast<int32_t>((e >= 0 && e < c.E ? e : 0) * c.Opad);
}

// ---- packing -------------------------------------------------------------------------------

/// Marks the padding of packed row r (padded row of image img0): value 0, table row 0.
void padRow(const Conv& c, int64_t r, bool whole) {
  uint8_t* row = c.x + r * c.Wp * c.Cp;
  int32_t* erow = c.xe + r * c.Wp * c.CB;
  if (whole) {
    std::memset(row, 128, static_cast<size_t>(c.Wp * c.Cp));
    std::fill(erow, erow + c.Wp * c.CB, 0);
    return;
  }
  const int64_t right = c.pad + c.W;
  std::memset(row, 128, static_cast<size_t>(c.pad * c.Cp));
  std::memset(row + right * c.Cp, 128, static_cast<size_t>((c.Wp - right) * c.Cp));
  std::fill(erow, erow + c.pad * c.CB, 0);
  std::fill(erow + right * c.CB, erow + c.Wp * c.CB, 0);
}

/// Packs input row h of image n with plain loops (from the codes, or blockMantissas per pixel
/// and block). A block's ulp exponent is e - (N-1) of its shared exponent e, or none (INT32_MIN)
/// when all its mantissas are zero: what the recovery from the values gives (BfpSource).
void packRowScalar(const Conv& c, const BfpConvInput& in, int64_t block, int64_t n, int64_t h,
                   ExpRange& range, bool& onGrid) {
  const int64_t HW = c.H * c.W, r = (n - c.img0) * c.Hp + h + c.pad;
  std::vector<float> buf(static_cast<size_t>(c.P));
  std::vector<int8_t> m(static_cast<size_t>(c.P));
  for (int64_t w = 0; w < c.W; ++w) {
    uint8_t* px = c.x + (r * c.Wp + c.pad + w) * c.Cp;
    int32_t* pe = c.xe + (r * c.Wp + c.pad + w) * c.CB;
    for (int64_t cb = 0; cb < c.CB; ++cb) {
      const int64_t len = std::min(block, c.C - cb * block);
      const int64_t at = (n * c.C + cb * block) * HW + h * c.W + w;
      int32_t sa;
      if (in.mantissas) {
        bool any = false;
        for (int64_t k = 0; k < len; ++k) {
          m[k] = in.mantissas[at + k * HW];
          any |= m[k] != 0;
        }
        sa = any ? in.exponents[((n * c.CB + cb) * c.H + h) * c.W + w] - (in.bits - 1) : INT32_MIN;
      } else {
        for (int64_t k = 0; k < len; ++k) buf[k] = in.values[at + k * HW];
        int32_t sum = 0;
        sa = blockMantissas(buf.data(), len, in.bits, m.data(), sum, onGrid);
      }
      for (int64_t k = 0; k < c.P; ++k) {
        px[cb * c.P + k] = k < len ? static_cast<uint8_t>(m[k] ^ 0x80) : uint8_t{128};
      }
      pe[cb] = tableOffset(c, sa);
      if (sa != INT32_MIN) range.add(sa);
    }
  }
}

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl")

/// laneTileAvx512 from codes: the mantissas of 16 pixels (lane l, channel k at m[l + k·HW]),
/// lanes >= nLanes empty, to tile[k·16 + lane] (zero for len <= k < P), and their ulp exponents
/// (shared exponents e[l] - (bits-1); INT32_MIN where all mantissas are zero) to sa.
void codeTileAvx512(const int8_t* m, const int16_t* e, int64_t HW, int64_t len, int64_t P,
                    int nLanes, int bits, int8_t* tile, int32_t* sa) {
  const __mmask16 lanes = static_cast<__mmask16>(nLanes >= 16 ? 0xffff : (1u << nLanes) - 1u);
  __m128i any = _mm_setzero_si128();
  for (int64_t k = 0; k < len; ++k) {
    const __m128i v = nLanes >= 16 ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(m + k * HW))
                                   : _mm_maskz_loadu_epi8(lanes, m + k * HW);
    any = _mm_or_si128(any, v);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(tile + k * 16), v);
  }
  for (int64_t k = len; k < P; ++k) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(tile + k * 16), _mm_setzero_si128());
  }
  const __mmask16 live = _mm_test_epi8_mask(any, any);
  const __m512i ev = _mm512_cvtepi16_epi32(_mm256_maskz_loadu_epi16(lanes, e));
  _mm512_storeu_si512(sa, _mm512_mask_sub_epi32(_mm512_set1_epi32(INT32_MIN), live, ev,
                                                _mm512_set1_epi32(bits - 1)));
}

/// Packs image n with AVX-512: 16 pixels of the H·W plane at a time (laneTileAvx512 reads them
/// at unit stride, all lanes used whatever W is), the mantissas of 4 channels combined into one
/// dword per pixel, 4x4 dword transposes within 128-bit lanes, and one 16-byte store per pixel
/// and 4 dwords (a scatter was 3x slower on AMD Zen 4). `at[p]`: padded pixel index of plane
/// pixel p.
void packImageAvx512(const Conv& c, const BfpConvInput& in, int64_t block, int64_t n,
                     const int32_t* at, ExpRange& range, bool& onGrid, int8_t* tile) {
  const int64_t HW = c.H * c.W, base = (n - c.img0) * c.Hp * c.Wp;
  const __m512i flip = _mm512_set1_epi32(static_cast<int32_t>(0x80808080u));
  __m512i lo = _mm512_set1_epi32(INT32_MAX), hi = _mm512_set1_epi32(INT32_MIN);
  int32_t sums[16], sa[16];
  for (int64_t p0 = 0; p0 < HW; p0 += 16) {
    const int nl = static_cast<int>(std::min<int64_t>(16, HW - p0));
    for (int64_t cb = 0; cb < c.CB; ++cb) {
      const int64_t len = std::min(block, c.C - cb * block);
      const int64_t at0 = (n * c.C + cb * block) * HW + p0;
      if (in.mantissas) {
        // One byte a value (a 64-byte line holds 64 pixels of a plane, against 16 floats): one
        // prefetch per line, kPrefetch lines ahead (as for the values, the first loads of each
        // plane would otherwise stall).
        if (p0 % 64 == 0 && p0 + 64 * kPrefetchLines < HW) {
          const int8_t* ahead = in.mantissas + at0 + 64 * kPrefetchLines;
          for (int64_t k = 0; k < len; ++k)
            _mm_prefetch(reinterpret_cast<const char*>(ahead + k * HW), _MM_HINT_T0);
        }
        if (p0 % 32 == 0 && p0 + 32 * kPrefetchLines < HW) {
          _mm_prefetch(reinterpret_cast<const char*>(in.exponents + (n * c.CB + cb) * HW + p0 +
                                                     32 * kPrefetchLines),
                       _MM_HINT_T0);
        }
        codeTileAvx512(in.mantissas + at0, in.exponents + (n * c.CB + cb) * HW + p0, HW, len, c.P,
                       nl, in.bits, tile, sa);
      } else {
        const float* src = in.values + at0;
        // Each call reads one cache line of `len` planes; without prefetching 4 calls ahead the
        // first loads stalled on L3 (75% of the packing time of the 16-channel layer).
        if (p0 + kPrefetch < HW) {
          for (int64_t k = 0; k < len; ++k)
            _mm_prefetch(reinterpret_cast<const char*>(src + kPrefetch + k * HW), _MM_HINT_T0);
        }
        laneTileAvx512(src, HW, len, c.P, nl, in.bits, tile, sums, sa, onGrid);
      }
      for (int64_t q0 = 0; q0 < c.Q; q0 += 4) {
        __m512i v[4];
        for (int j = 0; j < 4; ++j) {
          if (q0 + j >= c.Q) {
            v[j] = _mm512_setzero_si512();
            continue;
          }
          const int8_t* t4 = tile + (q0 + j) * 64;
          auto lane = [&](int i) {
            return _mm512_cvtepu8_epi32(
                _mm_loadu_si128(reinterpret_cast<const __m128i*>(t4 + 16 * i)));
          };
          const __m512i d = _mm512_or_si512(
              _mm512_or_si512(lane(0), _mm512_slli_epi32(lane(1), 8)),
              _mm512_or_si512(_mm512_slli_epi32(lane(2), 16), _mm512_slli_epi32(lane(3), 24)));
          v[j] = _mm512_xor_si512(d, flip);  // m + 128 as u8 is m with the top bit flipped
        }
        // 128-bit lane L of w[j]: the 4 dwords q0.. of pixel 4L + j.
        const __m512i a = _mm512_unpacklo_epi32(v[0], v[1]), b = _mm512_unpackhi_epi32(v[0], v[1]);
        const __m512i e = _mm512_unpacklo_epi32(v[2], v[3]), f = _mm512_unpackhi_epi32(v[2], v[3]);
        const __m512i w[4] = {_mm512_unpacklo_epi64(a, e), _mm512_unpackhi_epi64(a, e),
                              _mm512_unpacklo_epi64(b, f), _mm512_unpackhi_epi64(b, f)};
        const int64_t bytes = std::min<int64_t>(4, c.Q - q0) * 4;
        const __mmask16 keep = static_cast<__mmask16>((1u << bytes) - 1u);
        uint8_t* dst0 = c.x + base * c.Cp + cb * c.P + q0 * 4;
        auto store = [&](int l, __m128i val) {
          if (l >= nl) return;
          uint8_t* dst = dst0 + int64_t{at[p0 + l]} * c.Cp;
          if (bytes == 16) {
            _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), val);
          } else {
            _mm_mask_storeu_epi8(dst, keep, val);
          }
        };
        for (int j = 0; j < 4; ++j) {
          store(j, _mm512_castsi512_si128(w[j]));
          store(4 + j, _mm512_extracti32x4_epi32(w[j], 1));
          store(8 + j, _mm512_extracti32x4_epi32(w[j], 2));
          store(12 + j, _mm512_extracti32x4_epi32(w[j], 3));
        }
      }
      // The exponent range in registers (through `range` in memory it was a store-to-load
      // chain: a quarter of the packing time).
      const __m512i e = _mm512_loadu_si512(sa);
      const __mmask16 live = _mm512_mask_cmpneq_epi32_mask(
          static_cast<__mmask16>(nl == 16 ? 0xffffu : (1u << nl) - 1u), e,
          _mm512_set1_epi32(INT32_MIN));
      // tableOffset of the 16 lanes at once (row 0 for no exponent or one outside the table).
      const __m512i rel = _mm512_sub_epi32(e, _mm512_set1_epi32(c.saLo));
      const __mmask16 inTable =
          live & _mm512_cmplt_epu32_mask(rel, _mm512_set1_epi32(static_cast<int32_t>(c.E)));
      alignas(64) int32_t offs[16];
      _mm512_store_si512(offs, _mm512_maskz_mullo_epi32(
                                   inTable, rel, _mm512_set1_epi32(static_cast<int32_t>(c.Opad))));
      for (int l = 0; l < nl; ++l) c.xe[(base + at[p0 + l]) * c.CB + cb] = offs[l];
      lo = _mm512_mask_min_epi32(lo, live, lo, e);
      hi = _mm512_mask_max_epi32(hi, live, hi, e);
    }
  }
  const int l = _mm512_reduce_min_epi32(lo), h = _mm512_reduce_max_epi32(hi);
  if (l <= h) {
    range.add(l);
    range.add(h);
  }
}

#pragma GCC pop_options

/// Packs the weight (all of it: it is small; from its codes or its values) and records the range
/// of its exponents.
void packWeight(const Conv& c, const BfpConvWeight& wt, int64_t block, bool avx, ExpRange& range,
                bool& onGrid) {
  const auto convert = avx ? blockMantissasAvx512 : blockMantissas;
  std::mutex mu;
  parallelFor(0, c.Opad, 4, [&](int64_t o0, int64_t o1) {
    ExpRange local;
    bool ok = true;
    std::vector<float> buf(static_cast<size_t>(c.P));
    std::vector<int8_t> m(static_cast<size_t>(c.P));
    for (int64_t o = o0; o < o1; ++o) {
      for (int64_t t = 0; t < c.T; ++t) {
        for (int64_t cb = 0; cb < c.CB; ++cb) {
          const int64_t len = std::min(block, c.C - cb * block), tb = t * c.CB + cb;
          int32_t sum = 0, sb = INT32_MIN;
          std::fill(m.begin(), m.end(), int8_t{0});
          if (o < c.O && wt.mantissas) {
            const int8_t* src = wt.mantissas + o * wt.sO + cb * block * wt.sC + t * wt.sT;
            bool any = false;
            for (int64_t k = 0; k < len; ++k) {
              m[k] = src[k * wt.sC];
              sum += m[k];
              any |= m[k] != 0;
            }
            if (any) sb = wt.exponents[o * wt.eO + cb * wt.eCB + t * wt.eT] - (wt.bits - 1);
          } else if (o < c.O) {
            const float* src = wt.values + o * wt.sO + cb * block * wt.sC + t * wt.sT;
            for (int64_t k = 0; k < len; ++k) buf[k] = src[k * wt.sC];
            sb = convert(buf.data(), len, wt.bits, m.data(), sum, ok);
            std::fill(m.begin() + len, m.end(), int8_t{0});
          }
          for (int64_t k = 0; k < c.P; ++k)
            c.w[((tb * c.Q + k / 4) * c.Opad + o) * 4 + k % 4] = m[k];
          c.corr[tb * c.Opad + o] = -128 * sum;
          c.wsb[tb * c.Opad + o] = sb;
          if (sb != INT32_MIN) local.add(sb);
        }
      }
    }
    std::lock_guard<std::mutex> lock(mu);
    range.merge(local);
    onGrid &= ok;
  });
}

// ---- kernels ------------------------------------------------------------------------------

/// Kernel rows [khBeg, khEnd) read input rows inside the image (the others add exact zeros, which
/// the padded buffer would give too; both kernels skip them alike).
inline void tapRows(const Conv& c, int64_t h, int64_t& khBeg, int64_t& khEnd) {
  khBeg = std::max<int64_t>(0, c.pad - h);
  khEnd = std::min<int64_t>(c.k, c.H + c.pad - h);
}

/// Work item i: image n, output-channel group g (of `ovb` vectors), output row h.
inline void itemOf(const Conv& c, int64_t ovb, int64_t i, int64_t& n, int64_t& g, int64_t& h) {
  const int64_t groups = c.OV / ovb;
  h = i % c.H;
  g = (i / c.H) % groups;
  n = i / (c.H * groups);
}

/// The plain-loop kernel: the same integer sums and the same FMAs in the same order as the VNNI
/// one, output channel by output channel.
void convScalar(const Conv& c, int64_t i0, int64_t i1) {
  for (int64_t i = i0; i < i1; ++i) {
    int64_t n, g, h, khBeg, khEnd;
    itemOf(c, 1, i, n, g, h);
    tapRows(c, h, khBeg, khEnd);
    for (int64_t o = g * 16; o < std::min(c.O, g * 16 + 16); ++o) {
      for (int64_t w = 0; w < c.W; ++w) {
        float acc = 0.0f;
        for (int64_t kh = khBeg; kh < khEnd; ++kh) {
          for (int64_t kw = 0; kw < c.k; ++kw) {
            const int64_t t = kh * c.k + kw, pix = ((n - c.img0) * c.Hp + h + kh) * c.Wp + w + kw;
            for (int64_t cb = 0; cb < c.CB; ++cb) {
              const int64_t tb = t * c.CB + cb;
              int32_t s = c.corr[tb * c.Opad + o];
              const uint8_t* xv = c.x + pix * c.Cp + cb * c.P;
              for (int64_t k = 0; k < c.P; ++k)
                s += int32_t{xv[k]} * c.w[((tb * c.Q + k / 4) * c.Opad + o) * 4 + k % 4];
              const float scale = c.tab[tb * c.E * c.Opad + c.xe[pix * c.CB + cb] + o];
              acc = std::fma(static_cast<float>(s), scale, acc);
            }
          }
        }
        c.y[((n * c.O + o) * c.H + h) * c.W + w] = acc;
      }
    }
  }
}

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")

/// r[i] becomes column i of the 16 x 16 matrix whose rows were r[0..15].
inline void transpose16(__m512 r[16]) {
  __m512 t[16], u[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  // u[4i + m]: in 128-bit lane L, column 4L + m of rows 4i..4i+3.
  for (int i = 0; i < 4; ++i) {
    u[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    u[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xee);
    u[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    u[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xee);
  }
  for (int m = 0; m < 4; ++m) {
    const __m512 v0 = _mm512_shuffle_f32x4(u[m], u[4 + m], 0x88);
    const __m512 v1 = _mm512_shuffle_f32x4(u[m], u[4 + m], 0xdd);
    const __m512 v2 = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0x88);
    const __m512 v3 = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0xdd);
    r[m] = _mm512_shuffle_f32x4(v0, v2, 0x88);
    r[8 + m] = _mm512_shuffle_f32x4(v0, v2, 0xdd);
    r[4 + m] = _mm512_shuffle_f32x4(v1, v3, 0x88);
    r[12 + m] = _mm512_shuffle_f32x4(v1, v3, 0xdd);
  }
}

/// Output rows of PX pixels x OVB·16 channels per register tile; Q dwords per block (0: c.Q at
/// run time). The activation broadcast is inline assembly so that GCC neither hoists nor
/// spills it (docs/spikes/int8_conv_forward.cpp).
template <int Q, int PX, int OVB>
void convVnni(const Conv& c, int64_t i0, int64_t i1) {
  // Q > 0: one block per pixel, so that the pixel stride is a constant and each broadcast and
  // table read is an immediate offset from one register (with run-time strides GCC kept a
  // pointer per pixel on the stack and spilled the accumulators: 2.5x slower).
  constexpr bool kFixed = Q > 0;
  const int64_t nq = kFixed ? Q : c.Q, CB = kFixed ? 1 : c.CB, Cp = kFixed ? 4 * Q : c.Cp;
  const int64_t Opad = c.Opad;
  for (int64_t item = i0; item < i1; ++item) {
    int64_t n, g, h, khBeg, khEnd;
    itemOf(c, OVB, item, n, g, h);
    tapRows(c, h, khBeg, khEnd);
    const int64_t ov0 = g * OVB;
    for (int64_t w0 = 0; w0 < c.W; w0 += PX) {
      __m512 acc[PX][OVB];
#pragma GCC unroll 16
      for (int i = 0; i < PX; ++i)
#pragma GCC unroll 8
        for (int j = 0; j < OVB; ++j) acc[i][j] = _mm512_setzero_ps();
#pragma GCC unroll 1
      for (int64_t kh = khBeg; kh < khEnd; ++kh) {
#pragma GCC unroll 1
        for (int64_t kw = 0; kw < c.k; ++kw) {
          const int64_t t = kh * c.k + kw, pix = ((n - c.img0) * c.Hp + h + kh) * c.Wp + w0 + kw;
          const uint8_t* xr = c.x + pix * Cp;
          const int32_t* er = c.xe + pix * CB;
#pragma GCC unroll 1
          for (int64_t cb = 0; cb < CB; ++cb) {
            const int64_t tb = t * CB + cb;
            const int8_t* wt = c.w + (tb * nq * Opad + ov0 * 16) * 4;
            __m512i S[PX][OVB];
#pragma GCC unroll 8
            for (int j = 0; j < OVB; ++j) {
              const __m512i c0 = _mm512_loadu_si512(c.corr + tb * Opad + (ov0 + j) * 16);
#pragma GCC unroll 16
              for (int i = 0; i < PX; ++i) S[i][j] = c0;
            }
            const uint8_t* xb0 = xr + cb * nq * 4;
#pragma GCC unroll 16
            for (int64_t q = 0; q < nq; ++q) {
              __m512i wv[OVB];
              for (int j = 0; j < OVB; ++j)
                wv[j] = _mm512_loadu_si512(wt + (q * Opad + j * 16) * 4);
              for (int i = 0; i < PX; ++i) {
                __m512i xb;
                asm("vpbroadcastd %[x], %[b]"
                    : [b] "=v"(xb)
                    : [x] "m"(*reinterpret_cast<const int32_t*>(xb0 + i * Cp + q * 4)));
#pragma GCC unroll 8
                for (int j = 0; j < OVB; ++j) S[i][j] = _mm512_dpbusd_epi32(S[i][j], xb, wv[j]);
              }
            }
            const float* tb0 = c.tab + tb * c.E * Opad + ov0 * 16;
#pragma GCC unroll 16
            for (int i = 0; i < PX; ++i) {
              const float* ti = tb0 + er[i * CB + cb];
#pragma GCC unroll 8
              for (int j = 0; j < OVB; ++j)
                acc[i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(S[i][j]),
                                            _mm512_loadu_ps(ti + j * 16), acc[i][j]);
            }
          }
        }
      }
      // Transpose each 16-channel tile to 16 rows of PX pixels and store them. Through
      // memory: transposing straight from the accumulators made GCC keep them on the stack
      // through the whole tap loop (32-channel layer 2.5x slower).
      alignas(64) float tileOut[OVB][PX][16];
#pragma GCC unroll 16
      for (int i = 0; i < PX; ++i)
#pragma GCC unroll 8
        for (int j = 0; j < OVB; ++j) _mm512_store_ps(tileOut[j][i], acc[i][j]);
      // Whole 16-float stores where the spill beyond the tile lands in pixels that this thread
      // writes later (the rest of the row, the next rows of the same plane within this chunk
      // of items); masked stores only where it would not (masked 512-bit stores to the strided
      // planes took a third of the kernel's time on AMD Zen 4).
      const int64_t npx = std::min<int64_t>(PX, c.W - w0);
      const int64_t spill = std::max<int64_t>(0, 16 - (c.W - w0));  // floats past the row
      const int64_t rows = (spill + c.W - 1) / c.W;                 // rows they reach
      const bool whole = h + rows < c.H && item + rows < i1;
      const __mmask16 mask = static_cast<__mmask16>(whole ? 0xffffu : (1u << npx) - 1u);
      for (int j = 0; j < OVB; ++j) {
        const int64_t o0 = (ov0 + j) * 16, no = std::min<int64_t>(16, c.O - o0);
        if (no <= 0) break;
        __m512 r[16];
        for (int i = 0; i < 16; ++i) {
          r[i] = i < PX ? _mm512_load_ps(tileOut[j][i]) : _mm512_setzero_ps();
        }
        transpose16(r);
        float* dst = c.y + ((n * c.O + o0) * c.H + h) * c.W + w0;
        if (whole) {
          for (int64_t o = 0; o < no; ++o) _mm512_storeu_ps(dst + o * c.H * c.W, r[o]);
        } else {
          for (int64_t o = 0; o < no; ++o) _mm512_mask_storeu_ps(dst + o * c.H * c.W, mask, r[o]);
        }
      }
    }
  }
}

#pragma GCC pop_options

using Kernel = void (*)(const Conv&, int64_t, int64_t);

template <int PX, int OVB>
Kernel vnniFor(int64_t Q, int64_t CB) {
  if (CB > 1) return convVnni<0, PX, OVB>;
  switch (Q) {
    case 4:
      return convVnni<4, PX, OVB>;
    case 8:
      return convVnni<8, PX, OVB>;
    case 16:
      return convVnni<16, PX, OVB>;
    default:
      return convVnni<0, PX, OVB>;
  }
}

}  // namespace

bool bfpConv2d(const BfpConvInput& x, const BfpConvWeight& wt, int64_t block, float* y,
               BfpIsa isa) {
  MANTISSA_CHECK(x.C == wt.C && wt.k % 2 == 1 && block >= 1 && x.C >= 1 && wt.O >= 1,
                 "bfpConv2d: input channels ", x.C, " vs ", wt.C, ", kernel ", wt.k,
                 " (odd), block ", block);
  MANTISSA_CHECK((x.values != nullptr) != (x.mantissas != nullptr && x.exponents != nullptr) &&
                     (wt.values != nullptr) != (wt.mantissas != nullptr && wt.exponents != nullptr),
                 "bfpConv2d: each operand needs either values or mantissas and exponents");
  MANTISSA_CHECK(x.bits >= 2 && x.bits <= 8 && wt.bits >= 2 && wt.bits <= 8,
                 "bfpConv2d: mantissa widths ", x.bits, ", ", wt.bits, " outside [2, 8]");
  const bool vnni = isa == BfpIsa::Vnni;
  MANTISSA_CHECK(!vnni || cpuFeatures().avx512Vnni, "bfpConv2d: this CPU has no AVX-512 VNNI");
  if (x.N == 0 || x.H == 0 || x.W == 0) return true;
  Conv c{};
  c.N = x.N, c.C = x.C, c.O = wt.O, c.H = x.H, c.W = x.W, c.k = wt.k;
  c.pad = (c.k - 1) / 2, c.T = c.k * c.k;
  c.CB = (c.C + block - 1) / block;
  c.P = (std::min(block, c.C) + 3) / 4 * 4;
  MANTISSA_CHECK(c.P <= 1024, "bfpConv2d: blocks of ", c.P, " values (at most 1024)");
  c.Q = c.P / 4, c.Cp = c.CB * c.P;
  c.Opad = (c.O + 15) / 16 * 16, c.OV = c.Opad / 16;
  // Register tiles: rows of at most 7 pixels take 7 pixels x 32 channels when the channel
  // vectors pair up (else 7 x 16), wider rows 14 x 16 (measured 1.1x 7 x 32 at W = 14).
  int64_t ovb = 1;
  if (vnni) {
    ovb = c.OV % 2 == 0 && c.W <= 7 ? 2 : 1;
    c.PX = ovb == 2 || c.W <= 7 ? 7 : 14;
  } else {
    c.PX = 1;
  }
  const int64_t Wt = (c.W + c.PX - 1) / c.PX * c.PX;
  c.Hp = c.H + 2 * c.pad, c.Wp = Wt + 2 * c.pad;

  Tensor wBuf = Tensor::uninitialized({c.T * c.CB * c.P * c.Opad}, DType::I8);
  Tensor corrBuf = Tensor::uninitialized({c.T * c.CB * c.Opad}, DType::I32);
  Tensor sbBuf = Tensor::uninitialized({c.T * c.CB * c.Opad}, DType::I32);
  c.w = wBuf.data<int8_t>(), c.corr = corrBuf.data<int32_t>(), c.wsb = sbBuf.data<int32_t>();
  c.y = y;
  const bool avx = vnni;  // VNNI implies the AVX-512 of the packing loops
  ExpRange ra, rb;
  bool gridA = true, gridB = true;
  packWeight(c, wt, block, avx, rb, gridB);

  // The scale table covers every activation exponent sa whose products with the weight's
  // blocks pass bfpExactRange, so that each image can be packed and convolved at once, before
  // the range of all of x is known: sa + min sb >= -126 and sa + max sb + (Na-1) + (Nb-1) +
  // log2 P <= 128. Its entries 2^(sa + sb) are then FP32 normals (zero weight blocks take the
  // smallest sb); an activation exponent outside makes the call decline at the end.
  const int logP = static_cast<int>(std::ceil(std::log2(static_cast<double>(c.P))));
  const int sbLo = rb.any() ? rb.lo : 0, sbHi = rb.any() ? rb.hi : 0;
  c.saLo = -126 - sbLo;
  const int saHi = 128 - (x.bits - 1) - (wt.bits - 1) - logP - sbHi;
  c.E = std::max(1, saHi - c.saLo + 1);
  if (c.T * c.CB * c.E * c.Opad > kMaxTableFloats) return false;
  Tensor tabBuf = Tensor::uninitialized({c.T * c.CB * c.E * c.Opad}, DType::F32);
  c.tab = tabBuf.data<float>();
  for (int64_t tb = 0; tb < c.T * c.CB; ++tb) {
    for (int64_t e = 0; e < c.E; ++e) {
      uint32_t* row = reinterpret_cast<uint32_t*>(c.tab + (tb * c.E + e) * c.Opad);
      for (int64_t o = 0; o < c.Opad; ++o) {
        const int32_t sb = c.wsb[tb * c.Opad + o];
        const int s = c.saLo + static_cast<int>(e) + (sb == INT32_MIN ? sbLo : sb);
        // The bits of 2^s; 0 outside the normals (an empty window: x must be all zero).
        row[o] = s >= -126 && s <= 127 ? static_cast<uint32_t>(s + 127) << 23 : 0u;
      }
    }
  }

  Kernel kernel = convScalar;
  if (vnni) {
    if (ovb == 2) {
      kernel = vnniFor<7, 2>(c.Q, c.CB);
    } else {
      kernel = c.PX == 7 ? vnniFor<7, 1>(c.Q, c.CB) : vnniFor<14, 1>(c.Q, c.CB);
    }
  }
  // Each thread packs one image into its own buffer (L2-resident) and convolves it at once:
  // one parallel region, and the packing's memory stalls of one thread overlap the other
  // thread's arithmetic.
  std::vector<int32_t> at(static_cast<size_t>(c.H * c.W));  // plane pixel -> padded pixel
  for (int64_t p = 0; p < c.H * c.W; ++p) {
    at[p] = static_cast<int32_t>((p / c.W + c.pad) * c.Wp + p % c.W + c.pad);
  }
  const int64_t perImage = (c.OV / ovb) * c.H;
  std::mutex mu;
  parallelFor(0, c.N, 1, [&](int64_t n0, int64_t n1) {
    ExpRange local;
    bool ok = true;
    std::vector<int8_t> tile(static_cast<size_t>(c.P * 16));
    std::vector<uint8_t> xImage(static_cast<size_t>(c.Hp * c.Wp * c.Cp));
    std::vector<int32_t> xeImage(static_cast<size_t>(c.Hp * c.Wp * c.CB));
    Conv ci = c;
    ci.x = xImage.data(), ci.xe = xeImage.data();
    for (int64_t n = n0; n < n1; ++n) {
      ci.img0 = n;
      for (int64_t hp = 0; hp < c.Hp; ++hp) {
        const int64_t h = hp - c.pad;
        padRow(ci, hp, h < 0 || h >= c.H);
        if (!avx && h >= 0 && h < c.H) packRowScalar(ci, x, block, n, h, local, ok);
      }
      if (avx) packImageAvx512(ci, x, block, n, at.data(), local, ok, tile.data());
      kernel(ci, n * perImage, (n + 1) * perImage);
    }
    std::lock_guard<std::mutex> lock(mu);
    ra.merge(local);
    gridA &= ok;
  });
  const BfpExponents ea{ra.any() ? ra.lo : 0, ra.any() ? ra.hi : 0, ra.any(), gridA, x.bits};
  const BfpExponents eb{sbLo, sbHi, rb.any(), gridB, wt.bits};
  return bfpExactRange(ea, eb, c.P);
}

}  // namespace mantissa::ops::detail
