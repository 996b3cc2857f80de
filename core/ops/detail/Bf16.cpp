#include "core/ops/detail/Bf16.h"

#include "core/Immintrin.h"

#include <algorithm>
#include <atomic>

#include "core/CpuFeatures.h"
#include "core/Env.h"
#include "core/ops/Linalg.h"
#include "core/parallel/ParallelFor.h"

namespace mantissa {

namespace {

std::atomic<int64_t> gBf16{0}, gInexact{0}, gNoKernel{0};

/// On by default: measured faster on a quiet machine for every layer shape and recipe tried
/// (docs/performance.md "bf16 GEMM path"). MANTISSA_BF16_GEMM=0 (or "off", "false") turns it
/// off at start-up; setBf16GemmEnabled overrides it at any time.
bool initialSwitch() { return envSwitch("MANTISSA_BF16_GEMM", true); }

std::atomic<bool>& gSwitch() {
  static std::atomic<bool> on{initialSwitch()};
  return on;
}

}  // namespace

Bf16GemmStats bf16GemmStats() {
  return {.bf16 = gBf16.load(), .inexact = gInexact.load(), .noKernel = gNoKernel.load()};
}

void resetBf16GemmStats() {
  gBf16 = 0;
  gInexact = 0;
  gNoKernel = 0;
}

void setBf16GemmEnabled(bool on) { gSwitch() = on; }

bool bf16GemmEnabled() {
  return gSwitch().load(std::memory_order_relaxed) && cpuFeatures().avx512Bf16;
}

namespace ops::detail {

void countBf16Gemm() { gBf16.fetch_add(1, std::memory_order_relaxed); }
void countBf16Inexact() { gInexact.fetch_add(1, std::memory_order_relaxed); }
void countBf16NoKernel() { gNoKernel.fetch_add(1, std::memory_order_relaxed); }


namespace {

/// One chunk of toBf16Exact: d[i] = high half of s[i]; ORs the low halves into `low` and lowers
/// `lo` to the smallest exponent field of a non-zero magnitude. The loop body is branch-free so
/// it vectorises (x86-64-v3 baseline).
void toBf16Chunk(const uint32_t* s, uint16_t* d, int64_t n, uint32_t& low, uint32_t& lo) {
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t u = s[i];
    d[i] = static_cast<uint16_t>(u >> 16);
    low |= u & 0xFFFFu;
    const uint32_t ex = (u >> 23) & 0xFFu;
    // Zeros (either sign) do not count; an FP32 subnormal has ex = 0 and is caught below.
    lo = std::min(lo, (u & 0x7FFFFFFFu) != 0 ? ex : kNoNonZero);
  }
}

/// toBf16Chunk with AVX-512: 32 values a step, the high halves packed by one word permute. The
/// smallest exponent is that of the smallest non-zero magnitude (magnitude bits order like
/// their exponents).
__attribute__((target("avx512f,avx512bw"))) void toBf16ChunkAvx512(const uint32_t* s, uint16_t* d,
                                                                   int64_t n, uint32_t& low,
                                                                   uint32_t& lo) {
  const __m512i odd = _mm512_setr_epi32(0x30001, 0x70005, 0xB0009, 0xF000D, 0x130011, 0x170015,
                                        0x1B0019, 0x1F001D, 0x230021, 0x270025, 0x2B0029, 0x2F002D,
                                        0x330031, 0x370035, 0x3B0039, 0x3F003D);
  const __m512i absMask = _mm512_set1_epi32(0x7FFFFFFF);
  __m512i orAcc = _mm512_setzero_si512(), minAcc = _mm512_set1_epi32(-1);
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512i a = _mm512_loadu_si512(s + i), b = _mm512_loadu_si512(s + i + 16);
    orAcc = _mm512_ternarylogic_epi32(orAcc, a, b, 0xFE);  // orAcc | a | b
    const __m512i ma = _mm512_and_si512(a, absMask), mb = _mm512_and_si512(b, absMask);
    minAcc = _mm512_mask_min_epu32(minAcc, _mm512_test_epi32_mask(ma, ma), minAcc, ma);
    minAcc = _mm512_mask_min_epu32(minAcc, _mm512_test_epi32_mask(mb, mb), minAcc, mb);
    _mm512_storeu_si512(d + i, _mm512_permutex2var_epi16(a, odd, b));
  }
  low |= static_cast<uint32_t>(_mm512_reduce_or_epi32(orAcc)) & 0xFFFFu;
  const uint32_t minMag = static_cast<uint32_t>(_mm512_reduce_min_epu32(minAcc));
  lo = std::min(lo, minMag == 0xFFFFFFFFu ? kNoNonZero : minMag >> 23);
  toBf16Chunk(s + i, d + i, n - i, low, lo);
}

}  // namespace

Bf16Operand toBf16Exact(const Tensor& x) {
  MANTISSA_CHECK(x.defined() && x.dtype() == DType::F32, "toBf16Exact: expected an f32 tensor");
  Tensor src = x.detach().contiguous();
  Tensor out = Tensor::uninitialized(src.shape(), DType::U16);  // every element is written
  const uint32_t* s = reinterpret_cast<const uint32_t*>(src.data<float>());
  uint16_t* d = out.data<uint16_t>();
  std::atomic<uint32_t> lowOr{0}, minExp{kNoNonZero};
  const bool avx512 = cpuFeatures().avx512;
  parallelFor(0, src.numel(), 1 << 15, [&](int64_t b, int64_t e) {
    uint32_t low = 0, lo = kNoNonZero;
    if (avx512) {
      toBf16ChunkAvx512(s + b, d + b, e - b, low, lo);
    } else {
      toBf16Chunk(s + b, d + b, e - b, low, lo);
    }
    lowOr.fetch_or(low, std::memory_order_relaxed);
    uint32_t cur = minExp.load(std::memory_order_relaxed);
    while (lo < cur && !minExp.compare_exchange_weak(cur, lo, std::memory_order_relaxed)) {
    }
  });
  Bf16Operand r;
  r.minExponent = minExp.load();
  if (lowOr.load() == 0 && r.minExponent >= 1) r.bits = out;
  return r;
}

Tensor widenBf16(const Tensor& bits) {
  MANTISSA_CHECK(isBf16Bits(bits), "widenBf16: expected a U16 tensor of bf16 bit patterns");
  Tensor src = bits.detach().contiguous();
  Tensor out = Tensor::empty(src.shape());
  const uint16_t* s = src.data<uint16_t>();
  uint32_t* d = reinterpret_cast<uint32_t*>(out.data<float>());
  parallelFor(0, src.numel(), 1 << 15, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) d[i] = static_cast<uint32_t>(s[i]) << 16;
  });
  return out;
}

}  // namespace ops::detail

}  // namespace mantissa
