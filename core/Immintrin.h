#pragma once

// <immintrin.h> for the AVX-512 kernels. GCC 12 reports -Wuninitialized inside the intrinsic
// headers (_mm512_undefined_*, GCC PR 105593); the warnings point into the header, so they are
// silenced for it alone. Include this instead of <immintrin.h>.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
