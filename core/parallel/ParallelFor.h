#pragma once

#include <algorithm>
#include <cstdint>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace mantissa {

/// Number of threads used by parallelFor and by oneDNN primitives (both run on OpenMP).
int numThreads();
/// Sets the thread count for parallelFor and oneDNN alike (the `--threads` option).
void setNumThreads(int n);

/// Splits [begin, end) into contiguous chunks of at least `grain` iterations and runs
/// fn(chunkBegin, chunkEnd) on the OpenMP team. Runs inline when the range is small or when
/// already inside a parallel region.
template <class F>
void parallelFor(int64_t begin, int64_t end, int64_t grain, const F& fn) {
  const int64_t n = end - begin;
  if (n <= 0) return;
#ifdef _OPENMP
  int64_t maxChunks = std::max<int64_t>(1, n / std::max<int64_t>(grain, 1));
  int threads = static_cast<int>(std::min<int64_t>(omp_get_max_threads(), maxChunks));
  if (threads > 1 && !omp_in_parallel()) {
#pragma omp parallel num_threads(threads)
    {
      int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
      int64_t chunk = (n + nt - 1) / nt;
      int64_t b = begin + t * chunk, e = std::min(end, b + chunk);
      if (b < e) fn(b, e);
    }
    return;
  }
#endif
  fn(begin, end);
}

}  // namespace mantissa
