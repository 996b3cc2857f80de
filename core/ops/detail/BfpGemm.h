#pragma once

#include <cstdint>

#include "core/Tensor.h"

// int8 block-floating-point GEMM (docs/performance.md "int8 block-floating-point path"): the
// GEMM of two HBFP-quantized operands computed from their integer mantissas and per-block
// exponents, so that it gives what the FP32 emulation gives on the dequantized values up to
// FP32 summation order.
//
//   C[m, n] = Σ_kb 2^(sa[m, kb] + sb[n, kb]) · Σ_{k in block kb} A[m, k] · B[n, k]
//
// with A and B int8 mantissas (|m| <= 127), sa = e - (N_A - 1) and sb = e - (N_B - 1) the
// exponents of the blocks' ulps (value = m · 2^(e - (N-1)), formats/Hbfp.h). The integer block
// dot products are exact in int32 and, since |Σ| <= P · 127² < 2^24 for blocks of at most P =
// 1024 values, exact when converted to float; the power-of-two scale is applied exactly as long
// as every block product 2^(sa+sb)·Σ is an FP32 normal number (checked per call from the
// smallest and largest exponents of the blocks that hold a non-zero mantissa) — the same
// condition under which every single product of the emulation is exact. The block values are
// then summed in FP32 (one fused multiply-add per block), in block order.
//
// AVX-512 VNNI (vpdpbusd multiplies u8 by s8): B is stored offset by +128 as u8 and the
// accumulator of row m and block kb starts at -128 · Σ A[m, block] (precomputed when A is
// packed). A plain-loop kernel on the same packed data gives bit-identical results on CPUs
// without VNNI and for tests.

namespace mantissa::ops::detail {

/// A matrix of HBFP-quantized FP32 values (the emulation's own operand) viewed as rows x K,
/// read with strides (no copy): row i = (i1, i2) = (i / rows2, i % rows2); K = segments x
/// segLen, and the HBFP blocks are `block` consecutive k that restart at each segment (they must
/// be the blocks the values were quantized with). Element (i, s, k) is
/// values[i1·s1 + i2·s2 + s·sSeg + k·sk].
///
/// Packing recovers each block's mantissas and exponent from the values exactly: a block
/// quantized with shared exponent e holds multiples of ulp = 2^(e - (N-1)) with
/// |m| <= 2^(N-1) - 1 and, unless e was clamped at -126, max|q| >= 2^(e-1) (the block max
/// exceeds 2^(e-1), which lies on the grid, and rounding and saturation keep it there); so
/// e = max(floor(log2 max|q|) + 1, -126), and m = q / ulp is exact. Values that are not on such
/// a grid (not HBFP N-bit values blocked this way) are detected, and the GEMM falls back.
///
/// Or the operand's HBFP codes (what the dot-product layers pass, Hbfp::encode): `mantissas`
/// (int8) at the same offsets as the values, and the blocks' shared exponents e (int16), the one
/// of block kb of segment s of row (i1, i2) at exponents[i1·e1 + i2·e2 + s·eSeg + kb·eb]. Packing
/// then copies the mantissas and takes ulp exponent e - (N-1) (none for a block whose mantissas
/// are all zero, as the recovery gives): the same packed bytes.
struct BfpSource {
  int64_t rows1 = 1, rows2 = 1;
  int64_t segments = 1, segLen = 0;
  const float* values = nullptr;
  int64_t s1 = 0, s2 = 0, sSeg = 0, sk = 1;
  int bits = 8;
  const int8_t* mantissas = nullptr;
  const int16_t* exponents = nullptr;
  int64_t e1 = 0, e2 = 0, eSeg = 0, eb = 0;
  int64_t rows() const { return rows1 * rows2; }
};

/// Which instructions run the block dot products.
enum class BfpIsa : uint8_t { Scalar, Vnni };

/// Vnni when the CPU has it, else Scalar.
BfpIsa bestBfpIsa();

/// Packed rows of the broadcast operand (A): per row, for each block, P bytes of mantissas
/// (P = block length rounded up to a multiple of 4, zero-padded), then per block the int32
/// accumulator start -128·Σ, then per block (sa + 127) << 23 (zero blocks: the smallest sa).
/// One zero row at the end (index `rows`) stands for padding.
struct BfpPackedA {
  int64_t rows = 0, blocks = 0, P = 0, rowBytes = 0;
  int minExp = 0, maxExp = 0;  // sa over blocks with a non-zero mantissa
  bool anyNonZero = false;
  bool onGrid = true;  // every value was an N-bit HBFP value of its block
  int bits = 8;
  Tensor buffer;  // (rows + 1) x rowBytes (I8; Storage recycles the blocks)
  int8_t* data() { return buffer.data<int8_t>(); }
  const int8_t* data() const { return buffer.data<int8_t>(); }
};

/// Packed columns of the vector operand (B): panels of 16 columns, [panel][kb][P/4][16][4] u8
/// (mantissa + 128; padding 128), and per panel [kb][16] scale exponents (expBuffer).
struct BfpPackedB {
  int64_t cols = 0, panels = 0, blocks = 0, blocksPerSegment = 0, P = 0;
  int minExp = 0, maxExp = 0;
  bool anyNonZero = false;
  bool onGrid = true;
  int bits = 8;
  Tensor buffer;     // U8
  Tensor expBuffer;  // I32: sb << 23 per (panel, kb, lane); zero blocks get the smallest sb
  uint8_t* data() { return buffer.data<uint8_t>(); }
  const uint8_t* data() const { return buffer.data<uint8_t>(); }
  int32_t* exps() { return expBuffer.data<int32_t>(); }
  const int32_t* exps() const { return expBuffer.data<int32_t>(); }
};

/// Packs A (all its segments' blocks one after the other in each row). `isa` picks the
/// conversion loop (both give the same bytes).
BfpPackedA bfpPackA(const BfpSource& a, int64_t block, BfpIsa isa = bestBfpIsa());
/// Packs B (its rows become the columns n of C).
BfpPackedB bfpPackB(const BfpSource& b, int64_t block, BfpIsa isa = bestBfpIsa());

/// Which packed A rows make row m of C: for segment s (the B segment s, blocks
/// [s·bpS, (s+1)·bpS) of B with bpS = blocksPerSegment) row `index[m·segments + s]` of A (or the
/// zero row when -1), at its blocks [blockOffset, blockOffset + bpS). index == nullptr: row m,
/// one segment (a plain GEMM).
struct BfpRowMap {
  int64_t rows = 0, segments = 1;
  const int32_t* index = nullptr;
  int64_t blockOffset = 0;
  /// 0: C is row-major, C(m, n) at c[m·ldc + n]. P > 0: C is planar (NCHW), rows are P pixels
  /// of each image, C(m, n) at c[(m / P)·ldc·P + n·P + m % P] (ldc = channels per image).
  int64_t planeRows = 0;
};

/// What the exactness check needs of one packed operand: the range of the ulp exponents of its
/// blocks with a non-zero mantissa, whether it has any, whether every value was on its grid.
struct BfpExponents {
  int minExp = 0, maxExp = 0;
  bool anyNonZero = false;
  bool onGrid = true;
  int bits = 8;
};

/// Whether both operands were on their grids and every non-zero product of a block of A and a
/// block of B (P values, padded) is exactly representable (an FP32 normal, no overflow).
bool bfpExactRange(const BfpExponents& a, const BfpExponents& b, int64_t P);

/// bfpExactRange of the two packed operands.
bool bfpExact(const BfpPackedA& a, const BfpPackedB& b);

/// C(m, n) = the block-FP product, for m < map.rows, n < b.cols (C is overwritten; layout
/// see BfpRowMap::planeRows).
/// Returns false, and leaves C untouched, when bfpExact fails (the caller then runs the FP32
/// GEMM on the same operands).
bool bfpGemmPacked(const BfpPackedA& a, const BfpRowMap& map, const BfpPackedB& b, float* c,
                   int64_t ldc, BfpIsa isa);

/// A [M, K] x B [N, K]ᵀ -> C [M, N] (ldc): packs both and calls bfpGemmPacked.
bool bfpGemm(const BfpSource& a, const BfpSource& b, int64_t block, float* c, int64_t ldc,
             BfpIsa isa);

// ---- Mantissa recovery, shared with the int8 convolution (BfpConv.h) ------------------------

/// One block of `len` values (contiguous in buf) to int8 mantissas in dst[0, len) (see
/// BfpSource): returns the ulp exponent sa = e - (bits - 1), or INT32_MIN for a block without a
/// non-zero mantissa; `sum` gets Σ m; `onGrid` turns false if a value is not m · 2^sa with
/// |m| <= 2^(bits-1) - 1. Plain loops.
int32_t blockMantissas(const float* buf, int64_t len, int bits, int8_t* dst, int32_t& sum,
                       bool& onGrid);
/// blockMantissas with AVX-512 (the same bytes, sums and flags); needs cpuFeatures().avx512.
int32_t blockMantissasAvx512(const float* buf, int64_t len, int bits, int8_t* dst, int32_t& sum,
                             bool& onGrid);
/// blockMantissas for 16 rows at once whose values lie at unit stride across rows (lane l,
/// index k at base[l + k·sk]), lanes >= nLanes empty: mantissas to tile[k·16 + lane] for k < P
/// (zero beyond len), Σ m and sa (INT32_MIN: no non-zero) per lane. Needs AVX-512.
void laneTileAvx512(const float* base, int64_t sk, int64_t len, int64_t P, int nLanes, int bits,
                    int8_t* tile, int32_t* sums, int32_t* sa, bool& onGrid);

/// Counts one GEMM (thread-safe). See mantissa::Int8BfpStats.
void countInt8BfpGemm();
void countInt8BfpInexact();

}  // namespace mantissa::ops::detail
