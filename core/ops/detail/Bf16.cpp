#include "core/ops/detail/Bf16.h"

#include <algorithm>
#include <atomic>

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

bool bf16GemmEnabled() { return gSwitch().load(std::memory_order_relaxed) && ops::detail::cpuHasBf16Dot(); }

namespace ops::detail {

void countBf16Gemm() { gBf16.fetch_add(1, std::memory_order_relaxed); }
void countBf16Inexact() { gInexact.fetch_add(1, std::memory_order_relaxed); }
void countBf16NoKernel() { gNoKernel.fetch_add(1, std::memory_order_relaxed); }

bool cpuHasBf16Dot() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") != 0;
  }();
  return has;
}

Bf16Operand toBf16Exact(const Tensor& x) {
  MANTISSA_CHECK(x.defined() && x.dtype() == DType::F32, "toBf16Exact: expected an f32 tensor");
  Tensor src = x.detach().contiguous();
  Tensor out = Tensor::empty(src.shape(), DType::U16);
  const uint32_t* s = reinterpret_cast<const uint32_t*>(src.data<float>());
  uint16_t* d = out.data<uint16_t>();
  std::atomic<uint32_t> lowOr{0}, minExp{kNoNonZero};
  // One streaming pass; the loop body is branch-free so it vectorises (x86-64-v3 baseline).
  parallelFor(0, src.numel(), 1 << 15, [&](int64_t b, int64_t e) {
    uint32_t low = 0, lo = kNoNonZero;
    for (int64_t i = b; i < e; ++i) {
      const uint32_t u = s[i];
      d[i] = static_cast<uint16_t>(u >> 16);
      low |= u & 0xFFFFu;
      const uint32_t ex = (u >> 23) & 0xFFu;
      // Zeros (either sign) do not count; an FP32 subnormal has ex = 0 and is caught below.
      lo = std::min(lo, (u & 0x7FFFFFFFu) != 0 ? ex : kNoNonZero);
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
