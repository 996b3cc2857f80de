#pragma once

#include <cstdint>

namespace mantissa::formats::detail {

/// Instruction set of the adaptive-format kernels (Flexpoint, HBFP, S2FP8). `Generic` is
/// portable C++ compiled for the baseline ISA (x86-64-v3, auto-vectorised); `Avx512` uses
/// AVX-512 F/BW/DQ/VL intrinsics in functions compiled with target attributes. Both give
/// bit-identical results; the kernels take the ISA explicitly so tests can run both.
enum class KernelIsa : uint8_t { Generic, Avx512 };

/// The best ISA this CPU supports (cpuFeatures().avx512).
KernelIsa bestKernelIsa();

/// "generic" / "avx512".
const char* kernelIsaName(KernelIsa isa);

}  // namespace mantissa::formats::detail
