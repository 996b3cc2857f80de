#pragma once

namespace mantissa {

/// The instruction-set extensions of the CPU running the process that Mantissa's own kernels
/// choose between. Detected once (CPUID, through GCC's __builtin_cpu_supports) on first use; all
/// false on a CPU or compiler without x86 detection.
struct CpuFeatures {
  /// AVX-512 F, BW, DQ and VL: the AVX-512 kernels of the formats and of the ops.
  bool avx512 = false;
  /// AVX-512 VBMI2 (vpshldd/vpshldw) on top of `avx512`: the S2FP8 code search.
  bool avx512Vbmi2 = false;
  /// AVX-512 VNNI (vpdpbusd) on top of `avx512`: the int8 block-floating-point GEMM.
  bool avx512Vnni = false;
  /// AVX-512 BF16 (vdpbf16ps): without it oneDNN emulates bf16, so the bf16 GEMM path is off.
  bool avx512Bf16 = false;
};

/// This CPU's features (thread-safe; computed once).
const CpuFeatures& cpuFeatures();

}  // namespace mantissa
