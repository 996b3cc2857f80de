#include "core/CpuFeatures.h"

namespace mantissa {

namespace {

CpuFeatures detect() {
  CpuFeatures f;
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  // Needed when this runs before libgcc's own constructor (static initialisation of callers).
  __builtin_cpu_init();
  f.avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  f.avx512Vbmi2 = f.avx512 && __builtin_cpu_supports("avx512vbmi2");
  f.avx512Vnni = f.avx512 && __builtin_cpu_supports("avx512vnni");
  f.avx512Bf16 = __builtin_cpu_supports("avx512bf16");
#endif
  return f;
}

}  // namespace

const CpuFeatures& cpuFeatures() {
  static const CpuFeatures features = detect();
  return features;
}

}  // namespace mantissa
