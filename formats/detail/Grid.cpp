// The shared grid quantizer (FORMATS.md Part B §0; docs/formats.md "Rounding"): for x != 0,
// e = max(floor(log2|x|), emin), ulp = 2^(e - m), q = round(x / ulp) * ulp, then the overflow
// policy (saturate to ±max, or ±Inf, or NaN). Rounding is RNE or stochastic
// (floor(x/ulp) + Bernoulli(frac)); NaN stays a canonical quiet NaN with the input's sign.
//
// Two implementations with bit-identical results:
//  * the scalar reference, written from the definition in double precision (ilogb, ldexp,
//    nearbyint), and
//  * an AVX-512 kernel working on the float bit patterns. In the normal range of the target
//    (|x| >= 2^emin) the fp32 bit pattern is a fixed-point number whose low d = 23 - m bits are
//    the ones to drop, and adding 2^(d-1) - 1 + lsb before truncating is exactly RNE (a carry
//    into the exponent field is the step to the next binade, and past the largest binade it
//    lands on the Inf pattern). Below 2^emin the target ulp is fixed, so the kernel scales by
//    2^(m - emin), rounds to an integer with vrndscaleps and scales back; both scalings are
//    exact. When emin = -126 (bf16) the bit trick is exact everywhere, fp32 subnormals included.
#include "formats/detail/Grid.h"
#include "formats/detail/Philox512.h"

#include <immintrin.h>

#include <atomic>
#include <bit>
#include <cmath>
#include <limits>

#include "core/CpuFeatures.h"
#include "core/Error.h"
#include "core/Rng.h"
#include "core/parallel/ParallelFor.h"

// GCC 12 reports the _mm512_undefined_* placeholders inside AVX-512 intrinsics as
// "maybe uninitialized"; the warning is about the compiler's own headers.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace mantissa::formats::detail {
namespace {

constexpr uint32_t kSignBit = 0x80000000u;
constexpr uint32_t kAbsMask = 0x7FFFFFFFu;
constexpr uint32_t kInfBits = 0x7F800000u;
constexpr uint32_t kQuietNan = 0x7FC00000u;
// Elements per stochastic-rounding group: 16 lanes x 4 Philox output words.
constexpr int64_t kGroup = 64;

/// Everything the kernels need, derived once per call from the FloatGrid.
struct Consts {
  int m = 0, d = 0, emin = 0;
  uint32_t mask = 0;          // low d bits
  uint32_t halfMinusOne = 0;  // 2^(d-1) - 1 (0 when d = 0)
  uint32_t lsbAdjust = 0;     // m = 0: makes bit d (the fp32 exponent lsb) the code's lsb
  uint32_t minNormalBits = 0; // bit pattern of 2^emin
  bool linear = false;        // emin == -126: the bit trick covers the whole range
  float s1 = 1.f, s2 = 1.f;   // s1 * s2 = 2^(m - emin), each a normal float
  float c = 1.f;              // 2^(emin - m), the subnormal ulp (may be an fp32 subnormal)
  uint32_t maxBits = 0;       // bit pattern of maxFinite
  uint32_t overflowBits = 0;  // magnitude bits of an overflowed result
  bool isSigned = true;
};

struct Counters {
  int64_t saturated = 0, flushed = 0, nonFinite = 0;
};

float bitsToFloat(uint32_t u) { return std::bit_cast<float>(u); }
uint32_t floatToBits(float f) { return std::bit_cast<uint32_t>(f); }

Consts makeConsts(const FloatGrid& g) {
  MANTISSA_CHECK(g.mantissaBits >= 0 && g.mantissaBits <= 21, "grid quantizer: mantissa bits ",
                 g.mantissaBits, " outside [0, 21]");
  MANTISSA_CHECK(g.minExponent >= -126 && g.minExponent <= 127, "grid quantizer: min exponent ",
                 g.minExponent, " outside [-126, 127] (fp32 emulation range)");
  MANTISSA_CHECK(g.minExponent - g.mantissaBits >= -149, "grid quantizer: subnormal ulp 2^",
                 g.minExponent - g.mantissaBits, " below the fp32 minimum 2^-149");
  MANTISSA_CHECK(std::isfinite(g.maxFinite) && g.maxFinite > 0.f,
                 "grid quantizer: max finite value ", g.maxFinite, " must be finite and > 0");
  Consts k;
  k.m = g.mantissaBits;
  k.d = 23 - k.m;
  k.emin = g.minExponent;
  k.mask = (1u << k.d) - 1u;
  k.halfMinusOne = k.d > 0 ? (1u << (k.d - 1)) - 1u : 0u;
  // With no mantissa bits both neighbours of a tie have significand 1; "even" then means the
  // even exponent code (code = fp32 exponent field - 126 - emin), as RNE on the encoding does.
  k.lsbAdjust = k.m == 0 ? static_cast<uint32_t>(k.emin) & 1u : 0u;
  k.minNormalBits = floatToBits(std::ldexp(1.f, k.emin));
  k.linear = k.emin == -126;
  int up = k.m - k.emin;
  k.s1 = std::ldexp(1.f, up / 2);
  k.s2 = std::ldexp(1.f, up - up / 2);
  k.c = std::ldexp(1.f, k.emin - k.m);
  k.maxBits = floatToBits(g.maxFinite);
  k.overflowBits = g.saturate ? k.maxBits : (g.infOnOverflow ? kInfBits : kQuietNan);
  k.isSigned = g.isSigned;
  return k;
}

// ---- scalar reference ---------------------------------------------------------------------

float scalarOne(float x, const Consts& k, bool sr, uint32_t rbits, Counters& cnt) {
  uint32_t sign = floatToBits(x) & kSignBit;
  if (std::isnan(x)) {
    ++cnt.nonFinite;
    return bitsToFloat(sign | kQuietNan);
  }
  if (!k.isSigned) {
    // Unsigned grid: the smallest value is +0, so negative inputs clamp to it.
    if (sign && x != 0.f && !std::isinf(x)) ++cnt.saturated;
    if (sign) {
      if (std::isinf(x)) ++cnt.nonFinite;
      return 0.f;
    }
  }
  if (std::isinf(x)) {
    ++cnt.nonFinite;
    return bitsToFloat(sign | k.overflowBits);
  }
  double a = std::fabs(static_cast<double>(x));
  if (a == 0.0) return x;
  int e = std::max(std::ilogb(a), k.emin);
  double y = std::ldexp(a, k.m - e);  // exact: a power-of-two scaling in double
  double r;
  if (!sr) {
    r = std::nearbyint(y);  // default rounding mode: ties to even
    if (k.m == 0 && y >= 1.0 && y - std::floor(y) == 0.5) {
      int lowerCode = e - k.emin + 1;  // exponent code of 2^e, the lower neighbour
      r = std::floor(y) + ((lowerCode & 1) ? 1.0 : 0.0);
    }
  } else {
    double fl = std::floor(y), frac = y - fl;
    bool roundUp;
    if (a >= std::ldexp(1.0, k.emin) || k.linear) {
      // frac has exactly d bits: round up when frac * 2^d + (d random bits) carries.
      auto fracInt = static_cast<uint64_t>(std::ldexp(frac, k.d));
      roundUp = fracInt + (rbits & k.mask) >= (uint64_t{1} << k.d);
    } else {
      // Subnormal range: compare with a uniform on the odd multiples of 2^-24 in (0, 1).
      double u = static_cast<double>(((rbits >> 9) << 1) | 1u) * 0x1p-24;
      roundUp = frac > u;
    }
    r = fl + (roundUp ? 1.0 : 0.0);
  }
  double q = std::ldexp(r, e - k.m);
  if (q > static_cast<double>(bitsToFloat(k.maxBits))) {
    ++cnt.saturated;
    return bitsToFloat(sign | k.overflowBits);
  }
  if (q == 0.0) ++cnt.flushed;
  return bitsToFloat(sign | floatToBits(static_cast<float>(q)));
}

void scalarRange(const float* in, float* out, int64_t begin, int64_t end, const Consts& k,
                 bool sr, StochasticKey key, Counters& cnt) {
  for (int64_t i = begin; i < end; ++i) {
    uint32_t rbits = sr ? stochasticBits(key, static_cast<uint64_t>(i)) : 0u;
    out[i] = scalarOne(in[i], k, sr, rbits, cnt);
  }
}

// ---- AVX-512 kernel -------------------------------------------------------------------------

#define MANTISSA_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl")))


MANTISSA_AVX512 void avx512Range(const float* in, float* out, int64_t begin, int64_t end,
                                 const Consts& k, bool sr, StochasticKey key, Counters& cnt) {
  const __m512i vAbs = _mm512_set1_epi32(static_cast<int>(kAbsMask));
  const __m512i vSign = _mm512_set1_epi32(static_cast<int>(kSignBit));
  const __m512i vInf = _mm512_set1_epi32(static_cast<int>(kInfBits));
  const __m512i vNan = _mm512_set1_epi32(static_cast<int>(kQuietNan));
  const __m512i vMask = _mm512_set1_epi32(static_cast<int>(k.mask));
  const __m512i vKeep = _mm512_set1_epi32(static_cast<int>(~k.mask));
  const __m512i vHalf = _mm512_set1_epi32(static_cast<int>(k.halfMinusOne));
  const __m512i vOne = _mm512_set1_epi32(1);
  const __m512i vLsbAdjust = _mm512_set1_epi32(static_cast<int>(k.lsbAdjust));
  const __m512i vMinNormal = _mm512_set1_epi32(static_cast<int>(k.minNormalBits));
  const __m512i vMax = _mm512_set1_epi32(static_cast<int>(k.maxBits));
  const __m512i vOverflow = _mm512_set1_epi32(static_cast<int>(k.overflowBits));
  const __m512 vS1 = _mm512_set1_ps(k.s1), vS2 = _mm512_set1_ps(k.s2), vC = _mm512_set1_ps(k.c);
  const __m512 vTwoM24 = _mm512_set1_ps(0x1p-24f), vOneF = _mm512_set1_ps(1.f);
  const __m128i vD = _mm_cvtsi32_si128(k.d);
  int64_t saturated = 0, flushed = 0, nonFinite = 0;

  for (int64_t g = begin; g < end; g += kGroup) {
    __m512i rnd[4];
    if (sr) philox16(static_cast<uint64_t>(g) >> 2, key, rnd);
    for (int w = 0; w < 4; ++w) {
      int64_t off = g + 16 * w;
      if (off >= end) break;
      __mmask16 valid = end - off >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (end - off)) - 1u);
      // Unmasked loads and stores for full vectors: masked stores are slow on some CPUs (Zen 4).
      __m512 x = valid == 0xFFFF ? _mm512_loadu_ps(in + off) : _mm512_maskz_loadu_ps(valid, in + off);
      __m512i u = _mm512_castps_si512(x);
      __m512i sign = _mm512_and_si512(u, vSign);
      __m512i a = _mm512_and_si512(u, vAbs);
      __mmask16 nanM = _mm512_cmpgt_epi32_mask(a, vInf);
      __mmask16 infM = _mm512_cmpeq_epi32_mask(a, vInf);
      __mmask16 zeroM = _mm512_cmpeq_epi32_mask(a, _mm512_setzero_si512());

      // Normal range: integer rounding of the bit pattern at bit d.
      __m512i add = sr ? _mm512_and_si512(rnd[w], vMask)
                       : _mm512_add_epi32(vHalf, _mm512_and_si512(_mm512_add_epi32(
                                                         _mm512_srl_epi32(a, vD), vLsbAdjust),
                                                     vOne));
      __m512i q = _mm512_and_si512(_mm512_add_epi32(a, add), vKeep);

      if (!k.linear) {
        // Computed for every vector: with typical data some lane is nearly always below the
        // smallest normal, and a data-dependent branch here costs more than the arithmetic.
        __mmask16 subM = _mm512_cmplt_epi32_mask(a, vMinNormal);
        {
          __m512 y = _mm512_mul_ps(_mm512_mul_ps(_mm512_castsi512_ps(a), vS1), vS2);
          __m512 r;
          if (!sr) {
            r = _mm512_roundscale_ps(y, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
          } else {
            __m512 fl = _mm512_roundscale_ps(y, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
            __m512 frac = _mm512_sub_ps(y, fl);
            __m512i odd = _mm512_or_si512(_mm512_slli_epi32(_mm512_srli_epi32(rnd[w], 9), 1), vOne);
            __m512 uni = _mm512_mul_ps(_mm512_cvtepi32_ps(odd), vTwoM24);
            __mmask16 up = _mm512_cmp_ps_mask(frac, uni, _CMP_GT_OQ);
            r = _mm512_mask_add_ps(fl, up, fl, vOneF);
          }
          __m512i qs = _mm512_castps_si512(_mm512_mul_ps(r, vC));
          q = _mm512_mask_mov_epi32(q, subM, qs);
        }
      }
      __mmask16 ovM = _mm512_cmpgt_epu32_mask(q, vMax) & static_cast<__mmask16>(~nanM);
      q = _mm512_mask_mov_epi32(q, ovM, vOverflow);
      q = _mm512_mask_mov_epi32(q, nanM, vNan);
      __mmask16 negM = 0;
      if (!k.isSigned) {
        negM = _mm512_test_epi32_mask(sign, sign) & static_cast<__mmask16>(~nanM);
        q = _mm512_mask_mov_epi32(q, negM, _mm512_setzero_si512());
        sign = _mm512_maskz_mov_epi32(nanM, sign);
      }
      __m512 result = _mm512_castsi512_ps(_mm512_or_si512(q, sign));
      if (valid == 0xFFFF) {
        _mm512_storeu_ps(out + off, result);
      } else {
        _mm512_mask_storeu_ps(out + off, valid, result);
      }

      __mmask16 finite = valid & static_cast<__mmask16>(~(nanM | infM));
      __mmask16 nonzero = static_cast<__mmask16>(~zeroM);
      __mmask16 qZero = _mm512_cmpeq_epi32_mask(q, _mm512_setzero_si512());
      nonFinite += __builtin_popcount(valid & (nanM | infM));
      saturated += __builtin_popcount(finite & (ovM | (negM & nonzero)));
      flushed += __builtin_popcount(finite & nonzero & qZero & static_cast<__mmask16>(~negM));
    }
  }
  cnt.saturated += saturated;
  cnt.flushed += flushed;
  cnt.nonFinite += nonFinite;
}

#undef MANTISSA_AVX512

using RangeFn = void (*)(const float*, float*, int64_t, int64_t, const Consts&, bool,
                         StochasticKey, Counters&);

int64_t run(RangeFn fn, const float* in, float* out, int64_t n, const FloatGrid& grid,
            Rounding rounding, uint64_t seed, uint64_t stream, uint64_t step, QuantStats* stats) {
  MANTISSA_CHECK(n >= 0, "grid quantizer: negative element count ", n);
  Consts k = makeConsts(grid);
  bool sr = rounding == Rounding::Stochastic;
  StochasticKey key = sr ? stochasticKey(seed, stream, step) : StochasticKey{};
  std::atomic<int64_t> saturated{0}, flushed{0}, nonFinite{0};
  // Chunks are whole 64-element groups so a group's Philox block is never split.
  int64_t groups = (n + kGroup - 1) / kGroup;
  parallelFor(0, groups, 1024, [&](int64_t gb, int64_t ge) {
    Counters c;
    fn(in, out, gb * kGroup, std::min(n, ge * kGroup), k, sr, key, c);
    saturated += c.saturated;
    flushed += c.flushed;
    nonFinite += c.nonFinite;
  });
  if (stats) {
    stats->count += n;
    stats->saturated += saturated;
    stats->flushed += flushed;
    stats->nonFinite += nonFinite;
  }
  return nonFinite;
}

}  // namespace


StochasticKey stochasticKey(uint64_t seed, uint64_t stream, uint64_t step) {
  auto r = philox4x32({static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)},
                      {static_cast<uint32_t>(stream), static_cast<uint32_t>(stream >> 32),
                       static_cast<uint32_t>(step), static_cast<uint32_t>(step >> 32)});
  return {r[0], r[1]};
}

uint32_t stochasticBits(const StochasticKey& key, uint64_t index) {
  uint64_t c = ((index >> 6) << 4) | (index & 15);
  auto r = philox4x32({key.k0, key.k1},
                      {static_cast<uint32_t>(c), static_cast<uint32_t>(c >> 32), 0u, 0u});
  return r[(index >> 4) & 3];
}

int64_t quantizeGrid(const float* in, float* out, int64_t n, const FloatGrid& grid,
                     Rounding rounding, uint64_t seed, uint64_t stream, uint64_t step,
                     QuantStats* stats) {
  return run(cpuFeatures().avx512 ? avx512Range : scalarRange, in, out, n, grid, rounding, seed, stream,
             step, stats);
}

int64_t quantizeGridScalar(const float* in, float* out, int64_t n, const FloatGrid& grid,
                           Rounding rounding, uint64_t seed, uint64_t stream, uint64_t step,
                           QuantStats* stats) {
  return run(scalarRange, in, out, n, grid, rounding, seed, stream, step, stats);
}

// ---- small float codes ----------------------------------------------------------------------

namespace {

int codeBits(const MiniFloat& l) { return l.signBits + l.expBits + l.mantBits; }

void checkLayout(const MiniFloat& l) {
  MANTISSA_CHECK((l.signBits == 0 || l.signBits == 1) && l.expBits >= 0 && l.mantBits >= 0 &&
                     codeBits(l) <= 8 && codeBits(l) >= 1,
                 "small float layout s=", l.signBits, " e=", l.expBits, " m=", l.mantBits,
                 " does not fit 8 bits");
  MANTISSA_CHECK(l.specials == Specials::None || l.expBits >= 1,
                 "small float layout with Inf/NaN needs an exponent field");
}

}  // namespace

float MiniFloat::maxFinite() const {
  checkLayout(*this);
  int topExp = (1 << expBits) - 1;
  double mant;  // significand of the largest finite code
  int exp;      // its unbiased exponent
  if (expBits == 0) {
    mant = 1.0 - std::ldexp(1.0, -mantBits);  // every code is subnormal
    exp = 1 - bias;
  } else if (specials == Specials::Ieee) {
    mant = 2.0 - std::ldexp(1.0, -mantBits);
    exp = topExp - 1 - bias;
  } else if (specials == Specials::OcpE4M3) {
    mant = 2.0 - std::ldexp(1.0, 1 - mantBits);  // all-ones mantissa is NaN
    exp = topExp - bias;
  } else {
    mant = 2.0 - std::ldexp(1.0, -mantBits);
    exp = topExp - bias;
  }
  return static_cast<float>(std::ldexp(mant, exp));
}

FloatGrid MiniFloat::grid(bool saturate) const {
  MANTISSA_CHECK(saturate || specials != Specials::None,
                 "a small float layout without Inf/NaN can only saturate");
  return FloatGrid{.mantissaBits = mantBits,
                   .minExponent = 1 - bias,
                   .maxFinite = maxFinite(),
                   .saturate = saturate,
                   .infOnOverflow = specials == Specials::Ieee,
                   .hasNan = specials != Specials::None,
                   .isSigned = signBits == 1};
}

std::array<float, 256> MiniFloat::decodeTable() const {
  checkLayout(*this);
  std::array<float, 256> t;
  t.fill(std::numeric_limits<float>::quiet_NaN());
  int n = 1 << codeBits(*this);
  int topExp = (1 << expBits) - 1, mantMask = (1 << mantBits) - 1;
  for (int code = 0; code < n; ++code) {
    bool neg = signBits && (code >> (expBits + mantBits)) & 1;
    int ef = (code >> mantBits) & topExp, mf = code & mantMask;
    float sgn = neg ? -1.f : 1.f;
    float v;
    if (specials == Specials::Ieee && ef == topExp) {
      v = mf == 0 ? sgn * std::numeric_limits<float>::infinity()
                  : bitsToFloat((neg ? kSignBit : 0u) | kQuietNan);
    } else if (specials == Specials::OcpE4M3 && ef == topExp && mf == mantMask) {
      v = bitsToFloat((neg ? kSignBit : 0u) | kQuietNan);
    } else if (ef == 0) {
      v = sgn * static_cast<float>(std::ldexp(static_cast<double>(mf), 1 - bias - mantBits));
    } else {
      v = sgn * static_cast<float>(std::ldexp(1.0 + std::ldexp(mf, -mantBits), ef - bias));
    }
    t[static_cast<size_t>(code)] = v;
  }
  return t;
}

namespace {

/// What the code kernels need from a layout.
struct CodeConsts {
  int m = 0, emin = 0;
  uint32_t signCode = 0;       // the sign bit of a code (0 for unsigned layouts)
  uint32_t magOnes = 0;        // S.111..1: NaN where the layout has one
  uint32_t infCode = 0;        // exponent all ones, mantissa 0 (IEEE layouts)
  uint32_t minNormalBits = 0;  // bit pattern of 2^emin
  uint32_t normalOffset = 0;   // (126 + emin) << m: fp32 exponent field -> code exponent field
  float s1 = 1.f, s2 = 1.f;    // s1 * s2 = 2^(m - emin), each a normal float
  bool ieee = false;
};

CodeConsts codeConsts(const MiniFloat& l) {
  checkLayout(l);
  CodeConsts k;
  k.m = l.mantBits;
  k.emin = 1 - l.bias;
  k.signCode = l.signBits ? 1u << (l.expBits + k.m) : 0u;
  k.magOnes = (1u << (l.expBits + k.m)) - 1u;
  k.infCode = ((1u << l.expBits) - 1u) << k.m;
  k.minNormalBits = floatToBits(std::ldexp(1.f, k.emin));
  k.normalOffset = static_cast<uint32_t>(126 + k.emin) << k.m;
  int up = k.m - k.emin;
  k.s1 = std::ldexp(1.f, up / 2);
  k.s2 = std::ldexp(1.f, up - up / 2);
  k.ieee = l.specials == Specials::Ieee;
  return k;
}

void encodeScalarRange(const float* q, uint8_t* codes, int64_t b, int64_t e, const CodeConsts& k) {
  for (int64_t i = b; i < e; ++i) {
    uint32_t u = floatToBits(q[i]);
    uint32_t a = u & kAbsMask;
    uint32_t s = (u & kSignBit) ? k.signCode : 0u;
    uint32_t code;
    if (a > kInfBits) {
      code = s | k.magOnes;  // Specials::None never gets here: its formats reject NaN input
    } else if (a == kInfBits) {
      code = s | (k.ieee ? k.infCode : k.magOnes);
    } else if (a >= k.minNormalBits) {
      uint32_t ef = (a >> 23) - 127u - static_cast<uint32_t>(k.emin) + 1u;
      code = s | (ef << k.m) | ((a >> (23 - k.m)) & ((1u << k.m) - 1u));
    } else {
      // Subnormal of the target: an exact integer multiple of 2^(emin - m).
      code =
          s | static_cast<uint32_t>(std::ldexp(static_cast<double>(bitsToFloat(a)), k.m - k.emin));
    }
    codes[i] = static_cast<uint8_t>(code);
  }
}

#define MANTISSA_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl")))

// The same codes as encodeScalarRange, 16 at a time. Normal range: the code is the fp32 pattern
// shifted right by 23 - m (exponent field and top m mantissa bits) minus the exponent offset.
// Subnormal range: the value times 2^(m - emin) (two exact scalings) is the integer code.
MANTISSA_AVX512 void encodeAvx512Range(const float* q, uint8_t* codes, int64_t b, int64_t e,
                                       const CodeConsts& k) {
  const __m512i vAbs = _mm512_set1_epi32(static_cast<int>(kAbsMask));
  const __m512i vSignBit = _mm512_set1_epi32(static_cast<int>(kSignBit));
  const __m512i vInf = _mm512_set1_epi32(static_cast<int>(kInfBits));
  const __m512i vMinNormal = _mm512_set1_epi32(static_cast<int>(k.minNormalBits));
  const __m512i vOffset = _mm512_set1_epi32(static_cast<int>(k.normalOffset));
  const __m512i vSignCode = _mm512_set1_epi32(static_cast<int>(k.signCode));
  const __m512i vMagOnes = _mm512_set1_epi32(static_cast<int>(k.magOnes));
  const __m512i vInfCode = _mm512_set1_epi32(static_cast<int>(k.ieee ? k.infCode : k.magOnes));
  const __m512 vS1 = _mm512_set1_ps(k.s1), vS2 = _mm512_set1_ps(k.s2);
  const __m128i vShift = _mm_cvtsi32_si128(23 - k.m);
  for (int64_t i = b; i < e; i += 16) {
    __mmask16 valid = e - i >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (e - i)) - 1u);
    __m512i u =
        valid == 0xFFFF ? _mm512_loadu_si512(q + i) : _mm512_maskz_loadu_epi32(valid, q + i);
    __m512i a = _mm512_and_si512(u, vAbs);
    __m512i code = _mm512_sub_epi32(_mm512_srl_epi32(a, vShift), vOffset);
    __mmask16 subM = _mm512_cmplt_epu32_mask(a, vMinNormal);
    __m512 scaled = _mm512_mul_ps(_mm512_mul_ps(_mm512_castsi512_ps(a), vS1), vS2);
    code = _mm512_mask_mov_epi32(code, subM, _mm512_cvttps_epi32(scaled));
    code = _mm512_mask_mov_epi32(code, _mm512_cmpeq_epi32_mask(a, vInf), vInfCode);
    code = _mm512_mask_mov_epi32(code, _mm512_cmpgt_epu32_mask(a, vInf), vMagOnes);
    code = _mm512_mask_or_epi32(code, _mm512_test_epi32_mask(u, vSignBit), code, vSignCode);
    if (valid == 0xFFFF) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(codes + i), _mm512_cvtepi32_epi8(code));
    } else {
      _mm512_mask_cvtepi32_storeu_epi8(codes + i, valid, code);
    }
  }
}

/// Words table[idx] of a 256-entry table held in eight registers: vpermt2w looks up 64 entries by
/// the low 6 bits, bits 6 (m6) and 7 (m7) pick among the four results.
MANTISSA_AVX512 inline __m512i lookupWords256(const __m512i* t, __m512i idx, __mmask32 m6,
                                              __mmask32 m7) {
  __m512i r0 = _mm512_permutex2var_epi16(t[0], idx, t[1]);
  __m512i r1 = _mm512_permutex2var_epi16(t[2], idx, t[3]);
  __m512i r2 = _mm512_permutex2var_epi16(t[4], idx, t[5]);
  __m512i r3 = _mm512_permutex2var_epi16(t[6], idx, t[7]);
  return _mm512_mask_blend_epi16(m7, _mm512_mask_blend_epi16(m6, r0, r1),
                                 _mm512_mask_blend_epi16(m6, r2, r3));
}

// 32 codes at a time through a 256-entry table of 32-bit patterns split into its high and low
// 16-bit halves, each held in eight registers and looked up like decodeBf16Avx512Range below;
// two word permutes then interleave the halves into 32 floats. Gathers from the table are
// slower on this CPU kind than the scalar loop.
MANTISSA_AVX512 void decodeTableAvx512Range(const uint8_t* codes, float* out, int64_t b, int64_t e,
                                            const uint32_t* table) {
  alignas(64) uint16_t hiTab[256], loTab[256];
  for (int c = 0; c < 256; ++c) {
    hiTab[c] = static_cast<uint16_t>(table[c] >> 16);
    loTab[c] = static_cast<uint16_t>(table[c]);
  }
  __m512i th[8], tl[8];
  for (int k = 0; k < 8; ++k) {
    th[k] = _mm512_load_si512(hiTab + 32 * k);
    tl[k] = _mm512_load_si512(loTab + 32 * k);
  }
  alignas(64) uint16_t il[32], ih[32];  // word indices interleaving lo (0..31) and hi (32..63)
  for (int j = 0; j < 16; ++j) {
    il[2 * j] = static_cast<uint16_t>(j);
    il[2 * j + 1] = static_cast<uint16_t>(32 + j);
    ih[2 * j] = static_cast<uint16_t>(16 + j);
    ih[2 * j + 1] = static_cast<uint16_t>(48 + j);
  }
  const __m512i interLo = _mm512_load_si512(il), interHi = _mm512_load_si512(ih);
  const __m512i bit6 = _mm512_set1_epi16(64), bit7 = _mm512_set1_epi16(128);
  for (int64_t i = b; i < e; i += 32) {
    const int64_t left = e - i;
    __mmask32 valid = left >= 32 ? 0xFFFFFFFFu : static_cast<__mmask32>((1ull << left) - 1u);
    __m256i c8 = left >= 32 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + i))
                            : _mm256_maskz_loadu_epi8(valid, codes + i);
    __m512i idx = _mm512_cvtepu8_epi16(c8);
    __mmask32 m6 = _mm512_test_epi16_mask(idx, bit6), m7 = _mm512_test_epi16_mask(idx, bit7);
    __m512i lo = lookupWords256(tl, idx, m6, m7), hi = lookupWords256(th, idx, m6, m7);
    __m512i v0 = _mm512_permutex2var_epi16(lo, interLo, hi);  // elements 0..15
    __m512i v1 = _mm512_permutex2var_epi16(lo, interHi, hi);  // elements 16..31
    if (left >= 32) {
      _mm512_storeu_si512(out + i, v0);
      _mm512_storeu_si512(out + i + 16, v1);
    } else {
      _mm512_mask_storeu_epi32(out + i, static_cast<__mmask16>(valid), v0);
      _mm512_mask_storeu_epi32(out + i + 16, static_cast<__mmask16>(valid >> 16), v1);
    }
  }
}

// 32 codes at a time through a 256-entry table of 16-bit patterns held in eight registers
// (shuffles instead of gathers, which are slow on some AVX-512 cores).
MANTISSA_AVX512 void decodeBf16Avx512Range(const uint8_t* codes, uint16_t* out, int64_t b,
                                           int64_t e, const uint16_t* table) {
  __m512i t[8];
  for (int k = 0; k < 8; ++k) t[k] = _mm512_loadu_si512(table + 32 * k);
  const __m512i bit6 = _mm512_set1_epi16(64), bit7 = _mm512_set1_epi16(128);
  for (int64_t i = b; i < e; i += 32) {
    __mmask32 valid = e - i >= 32 ? 0xFFFFFFFFu : static_cast<__mmask32>((1ull << (e - i)) - 1u);
    __m256i c8 = valid == 0xFFFFFFFFu
                     ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + i))
                     : _mm256_maskz_loadu_epi8(valid, codes + i);
    __m512i idx = _mm512_cvtepu8_epi16(c8);
    __mmask32 m6 = _mm512_test_epi16_mask(idx, bit6), m7 = _mm512_test_epi16_mask(idx, bit7);
    __m512i v = lookupWords256(t, idx, m6, m7);
    if (valid == 0xFFFFFFFFu) {
      _mm512_storeu_si512(out + i, v);
    } else {
      _mm512_mask_storeu_epi16(out + i, valid, v);
    }
  }
}

#undef MANTISSA_AVX512

}  // namespace

void encodeMiniFloat(const float* q, uint8_t* codes, int64_t n, const MiniFloat& l, bool avx512) {
  const CodeConsts k = codeConsts(l);
  const bool vec = avx512 && cpuFeatures().avx512;
  parallelFor(0, n, 1 << 16, [&](int64_t b, int64_t e) {
    if (vec) {
      encodeAvx512Range(q, codes, b, e, k);
    } else {
      encodeScalarRange(q, codes, b, e, k);
    }
  });
}

void decodeTable(const uint8_t* codes, float* out, int64_t n, const std::array<float, 256>& table,
                 bool avx512) {
  alignas(64) std::array<uint32_t, 256> bits;
  for (size_t c = 0; c < 256; ++c) bits[c] = floatToBits(table[c]);
  const bool vec = avx512 && cpuFeatures().avx512;
  parallelFor(0, n, 1 << 16, [&](int64_t b, int64_t e) {
    if (vec) {
      decodeTableAvx512Range(codes, out, b, e, bits.data());
    } else {
      for (int64_t i = b; i < e; ++i) out[i] = table[codes[i]];
    }
  });
}

void decodeMiniFloat(const uint8_t* codes, float* out, int64_t n, const MiniFloat& l, bool avx512) {
  decodeTable(codes, out, n, l.decodeTable(), avx512);
}

void decodeMiniFloatBf16(const uint8_t* codes, uint16_t* out, int64_t n, const MiniFloat& l,
                         bool avx512) {
  const std::array<float, 256> values = l.decodeTable();
  alignas(64) std::array<uint16_t, 256> table;
  for (size_t c = 0; c < 256; ++c) table[c] = static_cast<uint16_t>(floatToBits(values[c]) >> 16);
  const bool vec = avx512 && cpuFeatures().avx512;
  parallelFor(0, n, 1 << 16, [&](int64_t b, int64_t e) {
    if (vec) {
      decodeBf16Avx512Range(codes, out, b, e, table.data());
    } else {
      for (int64_t i = b; i < e; ++i) out[i] = table[codes[i]];
    }
  });
}

}  // namespace mantissa::formats::detail
