// IEEE binary16 (docs/formats.md "fp16"; IEEE 754-2008; Micikevicius et al. 2018, "Mixed
// Precision Training"). Rounding: RNE via F16C vcvtps2ph (exact IEEE conversion, subnormals
// kept), or stochastic via the shared grid quantizer. Overflow: ±Inf, no saturation. NaN: the
// canonical quiet NaN with the input's sign (vcvtps2ph would keep payload bits; they are
// cleared so quantize, encode and decode agree bit for bit whatever the NaN).
#include "formats/Fp16.h"

#include <immintrin.h>

#include <atomic>
#include <cmath>

#include "core/CpuFeatures.h"
#include "core/parallel/ParallelFor.h"
#include "formats/detail/Factories.h"

// GCC 12 reports the _mm512_undefined_* placeholders inside AVX-512 intrinsics as
// "maybe uninitialized"; the warning is about the compiler's own headers.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace mantissa::formats {
namespace {

constexpr int kRne = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

struct Counts {
  int64_t saturated = 0, flushed = 0, nonFinite = 0;
};

__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl"))) void roundTripAvx512(
    const float* in, float* out, int64_t b, int64_t e, Counts& c) {
  const __m512i vAbs = _mm512_set1_epi32(0x7FFFFFFF), vSign = _mm512_set1_epi32(INT32_MIN);
  const __m512i vInf = _mm512_set1_epi32(0x7F800000), vNan = _mm512_set1_epi32(0x7FC00000);
  for (int64_t i = b; i < e; i += 16) {
    __mmask16 valid = e - i >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (e - i)) - 1u);
    // Masked loads/stores only for the tail: masked stores are slow on some CPUs (Zen 4).
    __m512 x = valid == 0xFFFF ? _mm512_loadu_ps(in + i) : _mm512_maskz_loadu_ps(valid, in + i);
    __m512 y = _mm512_cvtph_ps(_mm512_cvtps_ph(x, kRne));
    __m512i ax = _mm512_and_si512(_mm512_castps_si512(x), vAbs);
    __m512i ay = _mm512_and_si512(_mm512_castps_si512(y), vAbs);
    __mmask16 nanM = _mm512_cmpgt_epi32_mask(ax, vInf);
    __mmask16 infM = _mm512_cmpeq_epi32_mask(ax, vInf);
    __m512i canon = _mm512_or_si512(_mm512_and_si512(_mm512_castps_si512(x), vSign), vNan);
    y = _mm512_castsi512_ps(_mm512_mask_mov_epi32(_mm512_castps_si512(y), nanM, canon));
    if (valid == 0xFFFF) {
      _mm512_storeu_ps(out + i, y);
    } else {
      _mm512_mask_storeu_ps(out + i, valid, y);
    }
    __mmask16 finite = valid & static_cast<__mmask16>(~(nanM | infM));
    c.nonFinite += __builtin_popcount(valid & (nanM | infM));
    c.saturated += __builtin_popcount(finite & _mm512_cmpeq_epi32_mask(ay, vInf));
    c.flushed += __builtin_popcount(finite & _mm512_test_epi32_mask(ax, ax) &
                                    _mm512_cmpeq_epi32_mask(ay, _mm512_setzero_si512()));
  }
}

// Baseline (x86-64-v3 has F16C) path, 8 lanes; the counters are rarely needed on such CPUs,
// so they are computed in a plain loop over the results.
void roundTripAvx2(const float* in, float* out, int64_t b, int64_t e, Counts& c) {
  int64_t i = b;
  for (; i + 8 <= e; i += 8) {
    __m256 x = _mm256_loadu_ps(in + i);
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm256_cvtps_ph(x, kRne)));
  }
  for (; i < e; ++i) {
    __m128 x = _mm_set_ss(in[i]);
    out[i] = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtps_ph(x, kRne)));
  }
  for (int64_t j = b; j < e; ++j) {
    float x = in[j];
    if (std::isnan(x)) {
      out[j] = std::copysign(std::numeric_limits<float>::quiet_NaN(), x);
      ++c.nonFinite;
    } else if (std::isinf(x)) {
      ++c.nonFinite;
    } else {
      c.saturated += std::isinf(out[j]);
      c.flushed += x != 0.f && out[j] == 0.f;
    }
  }
}

}  // namespace

detail::FloatGrid Fp16::fp16Grid() {
  return detail::FloatGrid{.mantissaBits = 10,
                           .minExponent = -14,
                           .maxFinite = 65504.f,
                           .saturate = false,
                           .infOnOverflow = true,
                           .hasNan = true,
                           .isSigned = true};
}

Fp16::Fp16(Rounding rounding) : GridFormat(fp16Grid(), rounding) {}

std::string Fp16::spec() const { return "fp16" + detail::roundingSuffix(rounding_, true); }

Tensor Fp16::quantize(const Tensor& x, const QuantizeArgs& args, FormatState* state) const {
  if (rounding_ == Rounding::Stochastic) return GridFormat::quantize(x, args, state);
  Tensor in = detail::checkedInput(x, spec(), args);
  Tensor out = Tensor::uninitialized(in.shape());
  detail::fp16RoundTrip(in.data<float>(), out.data<float>(), in.numel(), cpuFeatures().avx512,
                        args.stats);
  return out;
}

Encoded Fp16::encode(const Tensor& x, const QuantizeArgs& args, FormatState* state) const {
  Tensor q;
  return encodeWithValues(x, args, state, q);
}

Encoded Fp16::encodeWithValues(const Tensor& x, const QuantizeArgs& args, FormatState* state,
                               Tensor& q) const {
  q = quantize(x, args, state);
  Tensor codes = Tensor::uninitialized(q.shape(), DType::U16);
  const float* src = q.data<float>();
  uint16_t* dst = codes.data<uint16_t>();
  // The values are already on the binary16 grid, so the conversion is exact.
  parallelFor(0, q.numel(), 1 << 16, [&](int64_t b, int64_t e) {
    int64_t i = b;
    for (; i + 8 <= e; i += 8) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i),
                       _mm256_cvtps_ph(_mm256_loadu_ps(src + i), kRne));
    }
    for (; i < e; ++i) dst[i] = _cvtss_sh(src[i], kRne);
  });
  return detail::elementwiseEncoded(spec(), q.shape(), codes);
}

Tensor Fp16::decode(const Encoded& e) const {
  detail::checkEncoded(e, spec(), DType::U16);
  Tensor codes = e.codes.contiguous();
  Tensor out = Tensor::uninitialized(e.shape);
  const uint16_t* src = codes.data<uint16_t>();
  float* dst = out.data<float>();
  parallelFor(0, out.numel(), 1 << 16, [&](int64_t b, int64_t e2) {
    int64_t i = b;
    for (; i + 8 <= e2; i += 8) {
      _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(
                                    reinterpret_cast<const __m128i*>(src + i))));
    }
    for (; i < e2; ++i) dst[i] = _cvtsh_ss(src[i]);
  });
  return out;
}

namespace detail {
void fp16RoundTrip(const float* in, float* out, int64_t n, bool avx512, QuantStats* stats) {
  std::atomic<int64_t> sat{0}, flushed{0}, bad{0};
  parallelFor(0, n, 1 << 14, [&](int64_t b, int64_t e) {
    Counts c;
    if (avx512) {
      roundTripAvx512(in, out, b, e, c);
    } else {
      roundTripAvx2(in, out, b, e, c);
    }
    sat += c.saturated;
    flushed += c.flushed;
    bad += c.nonFinite;
  });
  if (stats) {
    stats->count += n;
    stats->saturated += sat;
    stats->flushed += flushed;
    stats->nonFinite += bad;
  }
}

FormatPtr makeFp16(SpecKeys& keys) {
  Rounding r = takeRounding(keys);
  keys.finish({"round"});
  return std::make_shared<Fp16>(r);
}
}  // namespace detail

}  // namespace mantissa::formats
