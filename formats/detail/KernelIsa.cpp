#include "formats/detail/KernelIsa.h"

#include "core/CpuFeatures.h"
#include "formats/detail/Grid.h"

namespace mantissa::formats::detail {

KernelIsa bestKernelIsa() { return cpuFeatures().avx512 ? KernelIsa::Avx512 : KernelIsa::Generic; }

const char* kernelIsaName(KernelIsa isa) { return isa == KernelIsa::Avx512 ? "avx512" : "generic"; }

}  // namespace mantissa::formats::detail
