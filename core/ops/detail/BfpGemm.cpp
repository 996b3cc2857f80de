// int8 block-floating-point GEMM: see BfpGemm.h and docs/performance.md "int8 block-floating-
// point path".
#include "core/ops/detail/BfpGemm.h"

#include "core/Immintrin.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cfloat>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "core/CpuFeatures.h"
#include "core/Env.h"
#include "core/Error.h"
#include "core/ops/Linalg.h"
#include "core/parallel/ParallelFor.h"

namespace mantissa::ops::detail {

namespace {

constexpr int kMaxP = 1024;  // |Σ| <= 1024·127² < 2^24: a block sum converts to float exactly
constexpr int kRows = 6;     // rows of C per register tile
constexpr int kPanels = 2;   // 16-column panels per register tile

int64_t padTo4(int64_t v) { return (v + 3) / 4 * 4; }

int32_t load32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

/// Scale exponent as the float bit pattern of 2^e biased for adding: sa -> (sa + 127) << 23,
/// sb -> sb << 23, so that their int32 sum is the bit pattern of 2^(sa + sb) (valid for
/// sa + sb in [-126, 127], which bfpExact guarantees). Left shifts of negative values are
/// defined in C++20.
int32_t biasedA(int sa) { return static_cast<int32_t>(static_cast<uint32_t>(sa + 127) << 23); }
int32_t shiftedB(int sb) { return static_cast<int32_t>(static_cast<uint32_t>(sb) << 23); }

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

/// Blocks per segment and padded block length of a source.
struct Blocking {
  int64_t perSegment, P;
};

Blocking blockingOf(const BfpSource& s, int64_t block) {
  MANTISSA_CHECK(block >= 1 && s.segLen >= 1 && s.segments >= 1, "bfpPack: bad blocking (block ",
                 block, ", segment ", s.segLen, ")");
  MANTISSA_CHECK(s.bits >= 2 && s.bits <= 8, "bfpPack: mantissa width ", s.bits, " outside [2, 8]");
  const int64_t P = padTo4(std::min(block, s.segLen));
  MANTISSA_CHECK(P <= kMaxP, "bfpPack: blocks of ", P, " values (at most ", kMaxP, ")");
  return {(s.segLen + block - 1) / block, P};
}

}  // namespace

BfpIsa bestBfpIsa() { return cpuFeatures().avx512Vnni ? BfpIsa::Vnni : BfpIsa::Scalar; }

/// One block of values (len <= P, contiguous in `buf`) to int8 mantissas in dst[0, len) (see
/// BfpSource): returns the ulp exponent sa = e - (bits - 1), or INT32_MIN for a block without a
/// non-zero mantissa; `sum` gets Σ m; `onGrid` turns false if a value is not m · 2^sa with
/// |m| <= 2^(bits-1) - 1.
int32_t blockMantissas(const float* buf, int64_t len, int bits, int8_t* dst, int32_t& sum,
                       bool& onGrid) {
  float amax = 0.0f;
  for (int64_t k = 0; k < len; ++k) amax = std::max(amax, std::fabs(buf[k]));
  sum = 0;
  if (amax == 0.0f) {
    std::memset(dst, 0, static_cast<size_t>(len));
    return INT32_MIN;
  }
  if (!(amax <= FLT_MAX)) {
    onGrid = false;
    std::memset(dst, 0, static_cast<size_t>(len));
    return INT32_MIN;
  }
  const int ef = static_cast<int>(std::bit_cast<uint32_t>(amax) >> 23);
  const int e = ef - 126;  // floor(log2 amax) + 1 for a normal amax; -126 for a subnormal
  // q · 2^(bits-1-e) as two normal factors (the exponent can reach 133).
  const int sh = bits - 1 - e, sh1 = sh >> 1, sh2 = sh - sh1;
  const float f1 = std::bit_cast<float>(static_cast<uint32_t>(sh1 + 127) << 23);
  const float f2 = std::bit_cast<float>(static_cast<uint32_t>(sh2 + 127) << 23);
  const float qmax = static_cast<float>((1 << (bits - 1)) - 1);
  int32_t s = 0;
  bool ok = true;
  for (int64_t k = 0; k < len; ++k) {
    const float y = (buf[k] * f1) * f2;
    const float r = std::nearbyint(y);
    ok &= (r == y) & (std::fabs(y) <= qmax);
    const int32_t m = static_cast<int32_t>(std::clamp(r, -qmax, qmax));
    dst[k] = static_cast<int8_t>(m);
    s += m;
  }
  onGrid &= ok;
  sum = s;
  return e - (bits - 1);
}

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl")

/// blockMantissas with AVX-512 (the same bytes, sums and flags).
int32_t blockMantissasAvx512(const float* buf, int64_t len, int bits, int8_t* dst, int32_t& sum,
                             bool& onGrid) {
  const __m512i absMask = _mm512_set1_epi32(0x7fffffff);
  __m512i amaxBits = _mm512_setzero_si512();  // |x| bit patterns order like their values
  bool finite = true;
  for (int64_t k = 0; k < len; k += 16) {
    const __mmask16 m = static_cast<__mmask16>(len - k >= 16 ? 0xffff : (1u << (len - k)) - 1u);
    const __m512i v =
        _mm512_and_si512(_mm512_castps_si512(_mm512_maskz_loadu_ps(m, buf + k)), absMask);
    finite &= _mm512_cmpgt_epu32_mask(v, _mm512_set1_epi32(0x7f7fffff)) == 0;
    amaxBits = _mm512_max_epu32(amaxBits, v);
  }
  sum = 0;
  const uint32_t amax = _mm512_reduce_max_epu32(amaxBits);
  if (amax == 0 || !finite) {
    onGrid &= finite;
    std::memset(dst, 0, static_cast<size_t>(len));
    return INT32_MIN;
  }
  const int e = static_cast<int>(amax >> 23) - 126;
  const int sh = bits - 1 - e, sh1 = sh >> 1, sh2 = sh - sh1;
  const __m512 f1 = _mm512_castsi512_ps(_mm512_set1_epi32((sh1 + 127) << 23));
  const __m512 f2 = _mm512_castsi512_ps(_mm512_set1_epi32((sh2 + 127) << 23));
  const __m512 qmax = _mm512_set1_ps(static_cast<float>((1 << (bits - 1)) - 1));
  __m512i acc = _mm512_setzero_si512();
  __mmask16 bad = 0;
  for (int64_t k = 0; k < len; k += 16) {
    const __mmask16 m = static_cast<__mmask16>(len - k >= 16 ? 0xffff : (1u << (len - k)) - 1u);
    const __m512 y = _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, buf + k), f1), f2);
    const __m512 r = _mm512_roundscale_ps(y, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    bad |= _mm512_mask_cmp_ps_mask(m, r, y, _CMP_NEQ_UQ) |
           _mm512_mask_cmp_ps_mask(m, _mm512_abs_ps(y), qmax, _CMP_GT_OQ);
    const __m512i q = _mm512_cvtps_epi32(
        _mm512_min_ps(_mm512_max_ps(r, _mm512_sub_ps(_mm512_setzero_ps(), qmax)), qmax));
    acc = _mm512_mask_add_epi32(acc, m, acc, q);
    // Masked byte stores only for the tail (they cost several times a plain store on Zen 4).
    if (m == 0xffff) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + k), _mm512_cvtepi32_epi8(q));
    } else {
      _mm512_mask_cvtepi32_storeu_epi8(dst + k, m, q);
    }
  }
  onGrid &= bad == 0;
  sum = _mm512_reduce_add_epi32(acc);
  return e - (bits - 1);
}

/// blockMantissas for 16 rows at once whose values lie at unit stride across rows (a
/// transposed source: lane l, index k at base[l + k·sk]), lanes >= nLanes empty: mantissas to
/// tile[k·16 + lane] for k < P (zero beyond len), Σ m and sa (INT32_MIN: no non-zero) per lane.
void laneTileAvx512(const float* base, int64_t sk, int64_t len, int64_t P, int nLanes, int bits,
                    int8_t* tile, int32_t* sums, int32_t* sa, bool& onGrid) {
  // The activation packing of the int8 convolution spends most of its time here, so the loop
  // is lean: a non-finite value shows in the largest |x| bit pattern, the scaling is one
  // vscalefps (exact), the grid check converts back, and no clamp (values off the grid make
  // the caller decline, whatever their bytes).
  const __mmask16 lanes = static_cast<__mmask16>(nLanes >= 16 ? 0xffff : (1u << nLanes) - 1u);
  const __m512i absMask = _mm512_set1_epi32(0x7fffffff);
  __m512i amax = _mm512_setzero_si512();
  for (int64_t k = 0; k < len; ++k) {
    const __m512i v =
        _mm512_and_si512(_mm512_castps_si512(_mm512_maskz_loadu_ps(lanes, base + k * sk)), absMask);
    amax = _mm512_max_epu32(amax, v);
  }
  __mmask16 bad = _mm512_cmpgt_epu32_mask(amax, _mm512_set1_epi32(0x7f7fffff));
  const __m512i e = _mm512_sub_epi32(_mm512_srli_epi32(amax, 23), _mm512_set1_epi32(126));
  // x · 2^(bits-1-e): the mantissa as a float (exact: a power-of-two scaling of an on-grid value)
  const __m512 sh = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_set1_epi32(bits - 1), e));
  const __m512i qmax = _mm512_set1_epi32((1 << (bits - 1)) - 1);
  __m512i acc = _mm512_setzero_si512();
  for (int64_t k = 0; k < len; ++k) {
    const __m512 y = _mm512_scalef_ps(_mm512_maskz_loadu_ps(lanes, base + k * sk), sh);
    const __m512i q = _mm512_cvt_roundps_epi32(y, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    // Not an integer, or beyond ±(2^(bits-1) - 1) (unsigned |q|: |INT32_MIN| stays large).
    bad |= _mm512_mask_cmp_ps_mask(lanes, _mm512_cvtepi32_ps(q), y, _CMP_NEQ_UQ) |
           _mm512_mask_cmpgt_epu32_mask(lanes, _mm512_abs_epi32(q), qmax);
    acc = _mm512_add_epi32(acc, q);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(tile + k * 16), _mm512_cvtepi32_epi8(q));
  }
  std::memset(tile + len * 16, 0, static_cast<size_t>((P - len) * 16));
  onGrid &= bad == 0;
  _mm512_storeu_si512(sums, acc);
  const __mmask16 nonZero = _mm512_mask_cmpneq_epi32_mask(lanes, amax, _mm512_setzero_si512());
  _mm512_storeu_si512(sa,
                      _mm512_mask_blend_epi32(nonZero, _mm512_set1_epi32(INT32_MIN),
                                              _mm512_sub_epi32(e, _mm512_set1_epi32(bits - 1))));
}

/// Copies `len` contiguous mantissas to dst; `sum` gets their sum. Returns whether any is non-zero.
bool copyCodesAvx512(const int8_t* m, int64_t len, int8_t* dst, int32_t& sum) {
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512i acc = _mm512_setzero_si512();
  __mmask64 any = 0;
  for (int64_t k = 0; k < len; k += 64) {
    const __mmask64 mk = len - k >= 64 ? ~__mmask64{0} : (__mmask64{1} << (len - k)) - 1;
    const __m512i v = _mm512_maskz_loadu_epi8(mk, m + k);
    any |= _mm512_test_epi8_mask(v, v);
    // Σ (m + 128) over each 8 bytes (the masked-off bytes add 128 each, subtracted below).
    acc = _mm512_add_epi64(acc, _mm512_sad_epu8(_mm512_xor_si512(v, flip), _mm512_setzero_si512()));
    if (len - k >= 64) {
      _mm512_storeu_si512(dst + k, v);
    } else {
      _mm512_mask_storeu_epi8(dst + k, mk, v);
    }
  }
  const int64_t padded = (len + 63) / 64 * 64;
  sum = static_cast<int32_t>(_mm512_reduce_add_epi64(acc) - 128 * padded);
  return any != 0;
}

/// laneTileAvx512 from codes: lane l, index k of the mantissas at m[l + k·sk], the lanes'
/// shared exponents at e[l] (unit stride); the same tile, sums and ulp exponents.
void laneTileCodesAvx512(const int8_t* m, const int16_t* e, int64_t sk, int64_t len, int64_t P,
                         int nLanes, int bits, int8_t* tile, int32_t* sums, int32_t* sa) {
  const __mmask16 lanes = static_cast<__mmask16>(nLanes >= 16 ? 0xffff : (1u << nLanes) - 1u);
  __m128i any = _mm_setzero_si128();
  __m512i acc = _mm512_setzero_si512();
  for (int64_t k = 0; k < len; ++k) {
    const __m128i v = _mm_maskz_loadu_epi8(lanes, m + k * sk);
    any = _mm_or_si128(any, v);
    acc = _mm512_add_epi32(acc, _mm512_cvtepi8_epi32(v));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(tile + k * 16), v);
  }
  std::memset(tile + len * 16, 0, static_cast<size_t>((P - len) * 16));
  _mm512_storeu_si512(sums, acc);
  const __mmask16 live = _mm_test_epi8_mask(any, any);
  const __m512i ev = _mm512_cvtepi16_epi32(_mm256_maskz_loadu_epi16(lanes, e));
  _mm512_storeu_si512(sa, _mm512_mask_sub_epi32(_mm512_set1_epi32(INT32_MIN), live, ev,
                                                _mm512_set1_epi32(bits - 1)));
}

#pragma GCC pop_options

namespace {

/// Block b (values k0.., `len` of them) of segment `sg` of row i from the codes: mantissas to
/// dst[0, len), Σ m to `sum`; returns the ulp exponent, INT32_MIN when all mantissas are zero.
int32_t blockCodes(const BfpSource& s, int64_t i, int64_t sg, int64_t b, int64_t k0, int64_t len,
                   int8_t* dst, int32_t& sum, bool avx) {
  const int64_t i1 = i / s.rows2, i2 = i % s.rows2;
  const int8_t* m = s.mantissas + i1 * s.s1 + i2 * s.s2 + sg * s.sSeg + k0 * s.sk;
  bool any = false;
  if (avx && s.sk == 1) {
    any = copyCodesAvx512(m, len, dst, sum);
  } else {
    int32_t total = 0;
    for (int64_t k = 0; k < len; ++k) {
      dst[k] = m[k * s.sk];
      total += dst[k];
      any |= dst[k] != 0;
    }
    sum = total;
  }
  if (!any) return INT32_MIN;
  return s.exponents[i1 * s.e1 + i2 * s.e2 + sg * s.eSeg + b * s.eb] - (s.bits - 1);
}

/// Reads the `len` values of block k0.. of segment `sg` of row i into buf.
void readBlock(const BfpSource& s, int64_t i, int64_t sg, int64_t k0, int64_t len, float* buf) {
  const float* v = s.values + (i / s.rows2) * s.s1 + (i % s.rows2) * s.s2 + sg * s.sSeg + k0 * s.sk;
  if (s.sk == 1) {
    std::memcpy(buf, v, static_cast<size_t>(len) * sizeof(float));
  } else {
    for (int64_t k = 0; k < len; ++k) buf[k] = v[k * s.sk];
  }
}

}  // namespace

BfpPackedA bfpPackA(const BfpSource& s, int64_t block, BfpIsa isa) {
  const auto convert = isa == BfpIsa::Vnni ? blockMantissasAvx512 : blockMantissas;
  const Blocking bk = blockingOf(s, block);
  BfpPackedA a;
  a.rows = s.rows();
  a.blocks = s.segments * bk.perSegment;
  a.P = bk.P;
  a.rowBytes = a.blocks * (a.P + 8);
  a.bits = s.bits;
  a.buffer = Tensor::uninitialized({(a.rows + 1) * a.rowBytes}, DType::I8);
  std::memset(a.data() + a.rows * a.rowBytes, 0, static_cast<size_t>(a.rowBytes));  // zero row
  const int64_t corrOff = a.blocks * a.P, expOff = corrOff + a.blocks * 4;
  ExpRange range;
  bool onGrid = true;
  std::mutex mu;
  // A transposed source (rows at unit stride, k strided): 16 rows at a time with AVX-512.
  const bool lanePath = isa == BfpIsa::Vnni && s.sk != 1 && (s.rows2 > 1 ? s.s2 == 1 : s.s1 == 1) &&
                        (!s.mantissas || (s.rows2 > 1 ? s.e2 == 1 : s.e1 == 1));
  if (lanePath) {
    const int64_t n2 = s.rows2 > 1 ? s.rows2 : s.rows1, outer = s.rows2 > 1 ? s.rows1 : 1;
    const int64_t tilesPer = (n2 + 15) / 16;
    parallelFor(0, outer * tilesPer, 4, [&](int64_t t0, int64_t t1) {
      ExpRange local;
      bool ok = true;
      std::vector<int8_t> tile(static_cast<size_t>(a.P * 16));
      int32_t sums[16], sa[16];
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t o = t / tilesPer, j0 = (t % tilesPer) * 16;
        const int nl = static_cast<int>(std::min<int64_t>(16, n2 - j0));
        const int64_t i0 = o * (s.rows2 > 1 ? s.rows2 : 0) + j0;  // first row of the tile
        const float* rowBase = s.values ? s.values + (s.rows2 > 1 ? o * s.s1 + j0 : j0) : nullptr;
        for (int64_t sg = 0; sg < s.segments; ++sg) {
          for (int64_t b = 0; b < bk.perSegment; ++b) {
            const int64_t kb = sg * bk.perSegment + b;
            const int64_t k0 = b * block, len = std::min(block, s.segLen - k0);
            if (s.mantissas) {
              const int64_t at = s.rows2 > 1 ? o * s.s1 + j0 : j0;
              const int64_t eAt = s.rows2 > 1 ? o * s.e1 + j0 : j0;
              laneTileCodesAvx512(s.mantissas + at + sg * s.sSeg + k0 * s.sk,
                                  s.exponents + eAt + sg * s.eSeg + b * s.eb, s.sk, len, a.P, nl,
                                  s.bits, tile.data(), sums, sa);
            } else {
              laneTileAvx512(rowBase + sg * s.sSeg + k0 * s.sk, s.sk, len, a.P, nl, s.bits,
                             tile.data(), sums, sa, ok);
            }
            for (int l = 0; l < nl; ++l) {
              int8_t* row = a.data() + (i0 + l) * a.rowBytes;
              int8_t* dst = row + kb * a.P;
              for (int64_t k = 0; k < a.P; ++k) dst[k] = tile[static_cast<size_t>(k * 16 + l)];
              const int32_t corr = -128 * sums[l];
              std::memcpy(row + corrOff + kb * 4, &corr, 4);
              std::memcpy(row + expOff + kb * 4, &sa[l], 4);
              if (sa[l] != INT32_MIN) local.add(sa[l]);
            }
          }
        }
      }
      std::lock_guard<std::mutex> lock(mu);
      range.merge(local);
      onGrid &= ok;
    });
  }
  if (!lanePath)
    parallelFor(0, a.rows, 64, [&](int64_t r0, int64_t r1) {
      ExpRange local;
      bool ok = true;
      std::vector<float> buf(static_cast<size_t>(a.P));
      for (int64_t i = r0; i < r1; ++i) {
        int8_t* row = a.data() + i * a.rowBytes;
        for (int64_t sg = 0; sg < s.segments; ++sg) {
          for (int64_t b = 0; b < bk.perSegment; ++b) {
            const int64_t kb = sg * bk.perSegment + b;
            const int64_t k0 = b * block, len = std::min(block, s.segLen - k0);
            int32_t sum = 0, sa;
            if (s.mantissas) {
              sa = blockCodes(s, i, sg, b, k0, len, row + kb * a.P, sum, isa == BfpIsa::Vnni);
            } else {
              readBlock(s, i, sg, k0, len, buf.data());
              sa = convert(buf.data(), len, s.bits, row + kb * a.P, sum, ok);
            }
            if (len < a.P) std::memset(row + kb * a.P + len, 0, static_cast<size_t>(a.P - len));
            const int32_t corr = -128 * sum;
            std::memcpy(row + corrOff + kb * 4, &corr, 4);
            if (sa != INT32_MIN) local.add(sa);
            std::memcpy(row + expOff + kb * 4, &sa, 4);
          }
        }
      }
      std::lock_guard<std::mutex> lock(mu);
      range.merge(local);
      onGrid &= ok;
    });
  a.onGrid = onGrid;
  a.anyNonZero = range.any();
  a.minExp = a.anyNonZero ? range.lo : 0;
  a.maxExp = a.anyNonZero ? range.hi : 0;
  // Zero blocks (and the zero row) take the smallest exponent: their sums are 0, and the scale
  // of every pair stays a normal power of two when the non-zero ones do (bfpExact).
  const int32_t fill = biasedA(a.minExp);
  parallelFor(0, a.rows + 1, 256, [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0; i < r1; ++i) {
      int8_t* p = a.data() + i * a.rowBytes + expOff;
      for (int64_t kb = 0; kb < a.blocks; ++kb) {
        const int32_t sa = i == a.rows ? INT32_MIN : load32(p + kb * 4);
        const int32_t v = sa == INT32_MIN ? fill : biasedA(sa);
        std::memcpy(p + kb * 4, &v, 4);
      }
    }
  });
  return a;
}

BfpPackedB bfpPackB(const BfpSource& s, int64_t block, BfpIsa isa) {
  const auto convert = isa == BfpIsa::Vnni ? blockMantissasAvx512 : blockMantissas;
  const Blocking bk = blockingOf(s, block);
  BfpPackedB b;
  b.cols = s.rows();
  b.panels = (b.cols + 15) / 16;
  b.blocksPerSegment = bk.perSegment;
  b.blocks = s.segments * bk.perSegment;
  b.P = bk.P;
  b.bits = s.bits;
  const int64_t Q = b.P / 4, panelBytes = b.blocks * Q * 64;
  b.buffer = Tensor::uninitialized({b.panels * panelBytes}, DType::U8);
  b.expBuffer = Tensor::uninitialized({b.panels * b.blocks * 16}, DType::I32);
  std::memset(b.data(), 128, static_cast<size_t>(b.panels * panelBytes));
  std::fill(b.exps(), b.exps() + b.panels * b.blocks * 16, INT32_MIN);
  ExpRange range;
  bool onGrid = true;
  std::mutex mu;
  // A transposed source (columns n at unit stride): one panel of 16 columns at a time.
  const bool lanePath =
      isa == BfpIsa::Vnni && s.sk != 1 && s.rows2 == 1 && s.s1 == 1 && (!s.mantissas || s.e1 == 1);
  if (lanePath) {
    parallelFor(0, b.panels, 1, [&](int64_t p0, int64_t p1) {
      ExpRange local;
      bool ok = true;
      std::vector<int8_t> tile(static_cast<size_t>(b.P * 16));
      int32_t sums[16], sb[16];
      for (int64_t p = p0; p < p1; ++p) {
        const int nl = static_cast<int>(std::min<int64_t>(16, b.cols - p * 16));
        uint8_t* panel = b.data() + p * panelBytes;
        int32_t* pe = b.exps() + p * b.blocks * 16;
        for (int64_t sg = 0; sg < s.segments; ++sg) {
          for (int64_t bb = 0; bb < bk.perSegment; ++bb) {
            const int64_t kb = sg * bk.perSegment + bb;
            const int64_t k0 = bb * block, len = std::min(block, s.segLen - k0);
            if (s.mantissas) {
              laneTileCodesAvx512(s.mantissas + p * 16 + sg * s.sSeg + k0 * s.sk,
                                  s.exponents + p * 16 + sg * s.eSeg + bb * s.eb, s.sk, len, b.P,
                                  nl, s.bits, tile.data(), sums, sb);
            } else {
              laneTileAvx512(s.values + p * 16 + sg * s.sSeg + k0 * s.sk, s.sk, len, b.P, nl,
                             s.bits, tile.data(), sums, sb, ok);
            }
            uint8_t* dst = panel + kb * Q * 64;
            for (int64_t q = 0; q < Q; ++q) {
              for (int j = 0; j < 16; ++j) {
                for (int t = 0; t < 4; ++t) {
                  dst[q * 64 + j * 4 + t] =
                      static_cast<uint8_t>(tile[static_cast<size_t>((4 * q + t) * 16 + j)] ^ 0x80);
                }
              }
            }
            for (int j = 0; j < nl; ++j) {
              pe[kb * 16 + j] = sb[j];
              if (sb[j] != INT32_MIN) local.add(sb[j]);
            }
          }
        }
      }
      std::lock_guard<std::mutex> lock(mu);
      range.merge(local);
      onGrid &= ok;
    });
  }
  if (!lanePath)
    parallelFor(0, b.panels, 1, [&](int64_t p0, int64_t p1) {
      ExpRange local;
      bool ok = true;
      std::vector<float> buf(static_cast<size_t>(b.P));
      std::vector<int8_t> m(static_cast<size_t>(b.P), 0);
      for (int64_t p = p0; p < p1; ++p) {
        uint8_t* panel = b.data() + p * panelBytes;
        int32_t* pe = b.exps() + p * b.blocks * 16;
        for (int64_t j = 0; j < 16 && p * 16 + j < b.cols; ++j) {
          for (int64_t sg = 0; sg < s.segments; ++sg) {
            for (int64_t bb = 0; bb < bk.perSegment; ++bb) {
              const int64_t kb = sg * bk.perSegment + bb;
              const int64_t k0 = bb * block, len = std::min(block, s.segLen - k0);
              int32_t sum = 0, sb;
              if (s.mantissas) {
                sb = blockCodes(s, p * 16 + j, sg, bb, k0, len, m.data(), sum, isa == BfpIsa::Vnni);
              } else {
                readBlock(s, p * 16 + j, sg, k0, len, buf.data());
                sb = convert(buf.data(), len, s.bits, m.data(), sum, ok);
              }
              std::fill(m.begin() + len, m.end(), int8_t{0});
              uint8_t* dst = panel + kb * Q * 64 + j * 4;
              for (int64_t q = 0; q < Q; ++q) {
                // m + 128 as u8 is m with the top bit flipped.
                const uint32_t word = static_cast<uint32_t>(load32(m.data() + 4 * q)) ^ 0x80808080u;
                std::memcpy(dst + q * 64, &word, 4);
              }
              pe[kb * 16 + j] = sb;
              if (sb != INT32_MIN) local.add(sb);
            }
          }
        }
      }
      std::lock_guard<std::mutex> lock(mu);
      range.merge(local);
      onGrid &= ok;
    });
  b.onGrid = onGrid;
  b.anyNonZero = range.any();
  b.minExp = b.anyNonZero ? range.lo : 0;
  b.maxExp = b.anyNonZero ? range.hi : 0;
  int32_t* e = b.exps();
  for (int64_t i = 0; i < b.panels * b.blocks * 16; ++i) {
    e[i] = shiftedB(e[i] == INT32_MIN ? b.minExp : e[i]);
  }
  return b;
}

bool bfpExactRange(const BfpExponents& a, const BfpExponents& b, int64_t P) {
  if (!a.onGrid || !b.onGrid) return false;
  if (!a.anyNonZero || !b.anyNonZero) return true;  // the product is exactly zero
  // |Σ| < P · 2^(Na-1) · 2^(Nb-1): the largest block value has exponent below this bound.
  const int logP = static_cast<int>(std::ceil(std::log2(static_cast<double>(P))));
  const int top = a.maxExp + b.maxExp + (a.bits - 1) + (b.bits - 1) + logP;
  return a.minExp + b.minExp >= -126 && top <= 128;
}

bool bfpExact(const BfpPackedA& a, const BfpPackedB& b) {
  return bfpExactRange({a.minExp, a.maxExp, a.anyNonZero, a.onGrid, a.bits},
                       {b.minExp, b.maxExp, b.anyNonZero, b.onGrid, b.bits}, a.P);
}

namespace {

std::atomic<int64_t> gInt8Gemms{0}, gInt8Inexact{0};

struct TileArgs {
  const BfpPackedA* a;
  const BfpRowMap* map;
  const BfpPackedB* b;
  float* c;
  int64_t ldc;
  const int8_t* aData;  // the packed buffers' raw pointers
  const uint8_t* bData;
  const int32_t* bExps;
};

/// Where row m of C starts and how far apart its columns are.
inline float* rowOut(const TileArgs& t, int64_t m, int64_t& colStride) {
  const int64_t P = t.map->planeRows;
  if (P == 0) {
    colStride = 1;
    return t.c + m * t.ldc;
  }
  colStride = P;
  return t.c + (m / P) * t.ldc * P + m % P;
}

/// Row pointers of packed A for the rows m0.. of C and segment s.
inline const int8_t* rowOf(const TileArgs& t, int64_t m, int64_t s) {
  const BfpPackedA& A = *t.a;
  const int64_t idx = t.map->index ? t.map->index[m * t.map->segments + s] : m;
  return t.aData + (idx < 0 ? A.rows : idx) * A.rowBytes;
}

/// The plain-loop kernel: the same arithmetic as the VNNI one, lane by lane.
void tileScalar(const TileArgs& t, int64_t m0, int64_t rows, int64_t p0, int64_t panels) {
  const BfpPackedA& A = *t.a;
  const BfpPackedB& B = *t.b;
  const int64_t P = A.P, Q = P / 4, bpS = B.blocksPerSegment;
  const int64_t corrOff = A.blocks * P, expOff = corrOff + A.blocks * 4;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t p = p0; p < p0 + panels; ++p) {
      float acc[16] = {};
      const uint8_t* bp = t.bData + p * B.blocks * Q * 64;
      const int32_t* be = t.bExps + p * B.blocks * 16;
      for (int64_t s = 0; s < t.map->segments; ++s) {
        const int8_t* ap = rowOf(t, m0 + r, s);
        for (int64_t bb = 0; bb < bpS; ++bb) {
          const int64_t kb = s * bpS + bb, ab = t.map->blockOffset + bb;
          const int8_t* ad = ap + ab * P;
          const uint8_t* bd = bp + kb * Q * 64;
          const int32_t start = load32(ap + corrOff + ab * 4), sa = load32(ap + expOff + ab * 4);
          for (int j = 0; j < 16; ++j) {
            int32_t sum = start;
            for (int64_t k = 0; k < P; ++k)
              sum += int32_t{bd[(k / 4) * 64 + j * 4 + k % 4]} * ad[k];
            const float scale = std::bit_cast<float>(static_cast<int32_t>(
                static_cast<uint32_t>(sa) + static_cast<uint32_t>(be[kb * 16 + j])));
            acc[j] = std::fma(static_cast<float>(sum), scale, acc[j]);
          }
        }
      }
      const int64_t n = std::min<int64_t>(16, B.cols - p * 16);
      int64_t cs;
      float* out = rowOut(t, m0 + r, cs) + p * 16 * cs;
      for (int64_t j = 0; j < n; ++j) out[j * cs] = acc[j];
    }
  }
}

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")

/// acc += Σ of 4 u8 x s8 products per lane (vpdpbusd). Inline assembly: GCC 12 copies the
/// accumulator to a fresh register and back around every _mm512_dpbusd_epi32 in this loop
/// nest (two extra moves per instruction, measured at about half the kernel's rate).
inline __m512i dpbusd(__m512i acc, __m512i u8, __m512i s8) {
  asm("vpdpbusd %[s8], %[u8], %[acc]" : [acc] "+v"(acc) : [u8] "v"(u8), [s8] "v"(s8));
  return acc;
}

/// dpbusd with the s8 operand broadcast from memory (4 bytes at p, embedded {1to16}).
inline __m512i dpbusdBroadcast(__m512i acc, __m512i u8, const int8_t* p) {
  asm("vpdpbusd %[s8]%{1to16%}, %[u8], %[acc]"
      : [acc] "+v"(acc)
      : [u8] "v"(u8), [s8] "m"(*reinterpret_cast<const int32_t*>(p)));
  return acc;
}

template <int R, int V>
void tileVnni(const TileArgs& t, int64_t m0, int64_t p0) {
  const BfpPackedA& A = *t.a;
  const BfpPackedB& B = *t.b;
  const int64_t P = A.P, Q = P / 4, bpS = B.blocksPerSegment;
  const int64_t corrOff = A.blocks * P, expOff = corrOff + A.blocks * 4;
  __m512 acc[R][V];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) acc[r][v] = _mm512_setzero_ps();
  const uint8_t* bp[V];
  const int32_t* be[V];
  for (int v = 0; v < V; ++v) {
    bp[v] = t.bData + (p0 + v) * B.blocks * Q * 64;
    be[v] = t.bExps + (p0 + v) * B.blocks * 16;
  }
  for (int64_t s = 0; s < t.map->segments; ++s) {
    const int8_t* ap[R];
    for (int r = 0; r < R; ++r) ap[r] = rowOf(t, m0 + r, s);
    for (int64_t bb = 0; bb < bpS; ++bb) {
      const int64_t kb = s * bpS + bb, ab = t.map->blockOffset + bb;
      __m512i sum[R][V];
      for (int r = 0; r < R; ++r) {
        const __m512i start = _mm512_set1_epi32(load32(ap[r] + corrOff + ab * 4));
        for (int v = 0; v < V; ++v) sum[r][v] = start;
      }
      const int8_t* ad[R];
      for (int r = 0; r < R; ++r) ad[r] = ap[r] + ab * P;
      const uint8_t* bd[V];
      for (int v = 0; v < V; ++v) bd[v] = bp[v] + kb * Q * 64;
      for (int64_t q = 0; q < Q; ++q) {
        __m512i bv[V];
        for (int v = 0; v < V; ++v) bv[v] = _mm512_loadu_si512(bd[v] + q * 64);
        if constexpr (V == 1) {  // one use per broadcast: take it from memory
          for (int r = 0; r < R; ++r) sum[r][0] = dpbusdBroadcast(sum[r][0], bv[0], ad[r] + q * 4);
        } else {
          for (int r = 0; r < R; ++r) {
            const __m512i av = _mm512_set1_epi32(load32(ad[r] + q * 4));
            for (int v = 0; v < V; ++v) sum[r][v] = dpbusd(sum[r][v], bv[v], av);
          }
        }
      }
      __m512i sb[V];
      for (int v = 0; v < V; ++v) sb[v] = _mm512_loadu_si512(be[v] + kb * 16);
      for (int r = 0; r < R; ++r) {
        const __m512i sa = _mm512_set1_epi32(load32(ap[r] + expOff + ab * 4));
        for (int v = 0; v < V; ++v) {
          const __m512 scale = _mm512_castsi512_ps(_mm512_add_epi32(sa, sb[v]));
          acc[r][v] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum[r][v]), scale, acc[r][v]);
        }
      }
    }
  }
  for (int v = 0; v < V; ++v) {
    const int64_t col = (p0 + v) * 16, n = std::min<int64_t>(16, B.cols - col);
    const __mmask16 mask = static_cast<__mmask16>(n == 16 ? 0xffffu : (1u << n) - 1u);
    if (t.map->planeRows > 0) {  // planar C: column j of the panel is plane col + j
      const __m512i lanes =
          _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                             _mm512_set1_epi32(static_cast<int32_t>(t.map->planeRows)));
      for (int r = 0; r < R; ++r) {
        int64_t cs;
        float* dst = rowOut(t, m0 + r, cs) + col * cs;
        _mm512_mask_i32scatter_ps(dst, mask, lanes, acc[r][v], 4);
      }
      continue;
    }
    for (int r = 0; r < R; ++r) {
      float* dst = t.c + (m0 + r) * t.ldc + col;
      if (n == 16) {
        _mm512_storeu_ps(dst, acc[r][v]);
      } else {
        _mm512_mask_storeu_ps(dst, mask, acc[r][v]);
      }
    }
  }
}

/// 1..6 rows x 2 panels, or 1..12 rows x 1 panel (enough independent accumulators to cover
/// the latency of vpdpbusd either way).
template <int V>
void tileVnniRows(const TileArgs& t, int64_t m0, int64_t rows, int64_t p0) {
  switch (rows) {
    case 1:
      tileVnni<1, V>(t, m0, p0);
      break;
    case 2:
      tileVnni<2, V>(t, m0, p0);
      break;
    case 3:
      tileVnni<3, V>(t, m0, p0);
      break;
    case 4:
      tileVnni<4, V>(t, m0, p0);
      break;
    case 5:
      tileVnni<5, V>(t, m0, p0);
      break;
    case 6:
      tileVnni<6, V>(t, m0, p0);
      break;
    default:
      if constexpr (V == 1) {
        switch (rows) {
          case 7:
            tileVnni<7, 1>(t, m0, p0);
            break;
          case 8:
            tileVnni<8, 1>(t, m0, p0);
            break;
          case 9:
            tileVnni<9, 1>(t, m0, p0);
            break;
          case 10:
            tileVnni<10, 1>(t, m0, p0);
            break;
          case 11:
            tileVnni<11, 1>(t, m0, p0);
            break;
          default:
            tileVnni<12, 1>(t, m0, p0);
            break;
        }
      }
      break;
  }
}

#pragma GCC pop_options

static_assert(kRows == 6 && kPanels == 2, "tileVnniRows dispatches 1..6 rows x 2 panels");

}  // namespace

bool bfpGemmPacked(const BfpPackedA& a, const BfpRowMap& map, const BfpPackedB& b, float* c,
                   int64_t ldc, BfpIsa isa) {
  MANTISSA_CHECK(a.P == b.P, "bfpGemm: block lengths differ (", a.P, " vs ", b.P, ")");
  MANTISSA_CHECK(map.segments >= 1 && b.blocks == map.segments * b.blocksPerSegment &&
                     map.blockOffset >= 0 && map.blockOffset + b.blocksPerSegment <= a.blocks,
                 "bfpGemm: A has ", a.blocks, " blocks per row, B ", b.blocks, " (", map.segments,
                 " segments from block ", map.blockOffset, ")");
  MANTISSA_CHECK(map.index || (map.segments == 1 && map.rows <= a.rows),
                 "bfpGemm: rows without an index");
  MANTISSA_CHECK(ldc >= b.cols, "bfpGemm: ldc ", ldc, " < ", b.cols, " columns");
  if (!bfpExact(a, b)) return false;
  const int64_t M = map.rows, N = b.cols;
  if (M == 0 || N == 0) return true;
  if (!a.anyNonZero || !b.anyNonZero) {
    parallelFor(0, M, 256, [&](int64_t r0, int64_t r1) {
      for (int64_t m = r0; m < r1; ++m) {
        int64_t cs;
        float* out = rowOut(TileArgs{&a, &map, &b, c, ldc, nullptr, nullptr, nullptr}, m, cs);
        for (int64_t n = 0; n < N; ++n) out[n * cs] = 0.0f;
      }
    });
    return true;
  }
  const TileArgs t{&a, &map, &b, c, ldc, a.data(), b.data(), b.exps()};
  const int64_t pairs = (b.panels + kPanels - 1) / kPanels;
  // One panel (N <= 16): twice the rows per register tile.
  const int64_t tileRows = b.panels == 1 ? 2 * kRows : kRows, rowChunk = 8 * tileRows;
  const int64_t chunks = (M + rowChunk - 1) / rowChunk;
  const bool vnni = isa == BfpIsa::Vnni;
  MANTISSA_CHECK(!vnni || cpuFeatures().avx512Vnni, "bfpGemm: this CPU has no AVX-512 VNNI");
  parallelFor(0, chunks * pairs, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t item = i0; item < i1; ++item) {
      const int64_t rc = item / pairs, pp = item % pairs;
      const int64_t p0 = pp * kPanels, np = std::min<int64_t>(kPanels, b.panels - p0);
      const int64_t mEnd = std::min(M, (rc + 1) * rowChunk);
      for (int64_t m0 = rc * rowChunk; m0 < mEnd; m0 += tileRows) {
        const int64_t rows = std::min<int64_t>(np == 2 ? kRows : tileRows, mEnd - m0);
        if (!vnni) {
          tileScalar(t, m0, rows, p0, np);
        } else if (np == 2) {
          tileVnniRows<2>(t, m0, rows, p0);
        } else {
          tileVnniRows<1>(t, m0, rows, p0);
        }
      }
    }
  });
  return true;
}

bool bfpGemm(const BfpSource& a, const BfpSource& b, int64_t block, float* c, int64_t ldc,
             BfpIsa isa) {
  MANTISSA_CHECK(a.segments * a.segLen == b.segments * b.segLen && a.segments == b.segments,
                 "bfpGemm: K differs (", a.segments, " x ", a.segLen, " vs ", b.segments, " x ",
                 b.segLen, ")");
  BfpPackedA pa = bfpPackA(a, block, isa);
  BfpPackedB pb = bfpPackB(b, block, isa);
  BfpRowMap map{.rows = pa.rows, .segments = 1};
  // A plain GEMM: A's segments are consecutive blocks of one row, as are B's.
  if (a.segments > 1) {
    // Fold B's segments into one: the blocks line up one to one.
    pb.blocksPerSegment = pb.blocks;
  }
  return bfpGemmPacked(pa, map, pb, c, ldc, isa);
}

void countInt8BfpGemm() { gInt8Gemms.fetch_add(1, std::memory_order_relaxed); }
void countInt8BfpInexact() { gInt8Inexact.fetch_add(1, std::memory_order_relaxed); }

}  // namespace mantissa::ops::detail

namespace mantissa {

namespace {

/// On by default on CPUs with AVX-512 VNNI, where it trains hbfp8 ResNet-20 1.26x and
/// AlexNet-small 1.48x faster than fp32, against 1.04x and 1.42x on the bf16 path
/// (docs/performance.md "int8 block-floating-point path"); off without VNNI, whose plain loops
/// are only for tests. MANTISSA_INT8_BFP=0 or 1 (also "off"/"on", "false"/"true") sets it at
/// start-up on any CPU; setInt8BfpEnabled overrides it at any time.
bool initialInt8Switch() { return envSwitch("MANTISSA_INT8_BFP", cpuFeatures().avx512Vnni); }

std::atomic<bool>& gInt8Switch() {
  static std::atomic<bool> on{initialInt8Switch()};
  return on;
}

}  // namespace

Int8BfpStats int8BfpStats() {
  return {.int8 = ops::detail::gInt8Gemms.load(), .inexact = ops::detail::gInt8Inexact.load()};
}

void resetInt8BfpStats() {
  ops::detail::gInt8Gemms = 0;
  ops::detail::gInt8Inexact = 0;
}

void setInt8BfpEnabled(bool on) { gInt8Switch() = on; }

bool int8BfpEnabled() { return gInt8Switch().load(std::memory_order_relaxed); }

}  // namespace mantissa
