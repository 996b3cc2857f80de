#include "core/parallel/ParallelFor.h"

#include "core/Error.h"

namespace mantissa {

int numThreads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

void setNumThreads(int n) {
  MANTISSA_CHECK(n >= 1, "thread count must be at least 1, got ", n);
#ifdef _OPENMP
  // oneDNN is built on the same OpenMP runtime, so this also sets its team size.
  omp_set_num_threads(n);
#endif
}

}  // namespace mantissa
