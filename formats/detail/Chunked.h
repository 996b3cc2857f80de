#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/parallel/ParallelFor.h"

namespace mantissa::formats::detail {

/// Elements per work item of the adaptive-format kernels: large enough to amortise the
/// OpenMP dispatch, small enough to balance two threads on a few-MB tensor.
inline constexpr int64_t kKernelChunk = int64_t{1} << 16;

/// Runs fn(begin, end) -> R over fixed chunks of [0, n) in parallel and folds the per-chunk
/// results in chunk order with `combine`. The chunking does not depend on the thread count, so
/// order-sensitive reductions give the same result on any number of threads.
template <class R, class F, class C>
R reduceChunks(int64_t n, int64_t chunk, R init, const F& fn, const C& combine) {
  if (n <= 0) return init;
  const int64_t nChunks = (n + chunk - 1) / chunk;
  if (nChunks == 1) return combine(init, fn(int64_t{0}, n));
  std::vector<R> parts(static_cast<size_t>(nChunks), init);
  parallelFor(0, nChunks, 1, [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e; ++c) {
      parts[static_cast<size_t>(c)] = fn(c * chunk, std::min(n, (c + 1) * chunk));
    }
  });
  R r = init;
  for (const R& p : parts) r = combine(r, p);
  return r;
}

}  // namespace mantissa::formats::detail
