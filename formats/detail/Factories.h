#pragma once

#include <string>
#include <vector>

#include "formats/Format.h"
#include "formats/detail/Spec.h"

namespace mantissa::formats::detail {

// One factory per format family. The registry (formats/Registry.cpp) picks the factory from the
// spec's head and hands it the parsed keys; the factory consumes its keys with the SpecKeys
// getters, calls `keys.finish(allowed)` and returns the format. Errors quote the whole spec.

/// `fp32` (no keys).
FormatPtr makeFp32(SpecKeys& keys);
/// `bf16[:round=nearest|stochastic]`.
FormatPtr makeBf16(SpecKeys& keys);
/// `fp16[:round=nearest|stochastic]`.
FormatPtr makeFp16(SpecKeys& keys);
/// `e4m3` / `e5m2` with `sat=0|1` and `round=nearest|stochastic` (head decides the layout).
FormatPtr makeFp8(SpecKeys& keys);
/// `ffp8:e=..,f=..,b=..,s=..` or `ffp8:auto`.
FormatPtr makeFfp8(SpecKeys& keys);
/// `flex<N>+<M>[:history=..,sigmas=..,margin=..]` (formats B).
FormatPtr makeFlexpoint(SpecKeys& keys);
/// `hbfp<N>[:block=..,round=..]` (formats B).
FormatPtr makeHbfp(SpecKeys& keys);
/// `s2fp8` (formats B).
FormatPtr makeS2fp8(SpecKeys& keys);

}  // namespace mantissa::formats::detail
