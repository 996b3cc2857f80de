// The int8 block-floating-point path (docs/performance.md "int8 block-floating-point path"):
// the kernel (core/ops/detail/BfpGemm.h) against a double-precision reference built from
// operands quantized here from the HBFP definition, and the layers with the path on against
// the same kind of reference, within the bound of FP32 summation in any order.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "LayerTestUtil.h"
#include "core/ops/Linalg.h"
#include "core/ops/detail/BfpGemm.h"
#include "formats/Format.h"
#include "formats/Policy.h"
#include "layers/Conv2d.h"
#include "layers/Linear.h"

using namespace mantissa;
using formats::FormatPolicy;
namespace od = mantissa::ops::detail;

namespace {

/// HBFP from its definition (FORMATS.md A.3): per block of `block` consecutive values of a row,
/// e = ceil(log2 max|x|) clamped to [-126, 128] (an all-zero block: -126), ulp = 2^(e-(N-1)),
/// m = round-half-even(x / ulp) clamped to ±(2^(N-1) - 1); the value is m · ulp. `x` is
/// [rows, K] row-major; blocks restart every `segLen` values of a row.
std::vector<float> quantizeRows(const std::vector<float>& x, int64_t rows, int64_t K,
                                int64_t segLen, int64_t block, int bits) {
  std::vector<float> q(x.size());
  const double mmax = std::ldexp(1.0, bits - 1) - 1;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t s0 = 0; s0 < K; s0 += segLen) {
      for (int64_t b0 = s0; b0 < s0 + segLen; b0 += block) {
        const int64_t b1 = std::min(b0 + block, s0 + segLen);
        double mx = 0;
        for (int64_t k = b0; k < b1; ++k) mx = std::max(mx, std::fabs(double(x[r * K + k])));
        int e = -126;
        if (mx > 0) {
          int ex;
          const double f = std::frexp(mx, &ex);  // mx = f · 2^ex, f in [0.5, 1)
          e = std::clamp(f == 0.5 ? ex - 1 : ex, -126, 128);
        }
        const double ulp = std::ldexp(1.0, e - (bits - 1));
        for (int64_t k = b0; k < b1; ++k) {
          const double m = std::clamp(std::nearbyint(double(x[r * K + k]) / ulp), -mmax, mmax);
          q[r * K + k] = static_cast<float>(m * ulp);
        }
      }
    }
  }
  return q;
}

/// Σ_k a[m,k]·b[n,k] in double and Σ|a·b|: exact for these operands (products of <= 8-bit
/// mantissas, K small).
struct Ref {
  std::vector<double> value, absSum;
};

Ref referenceGemm(const std::vector<float>& a, const std::vector<float>& b, int64_t M,
                  int64_t N, int64_t K) {
  Ref r{std::vector<double>(M * N, 0), std::vector<double>(M * N, 0)};
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k) {
        const double p = double(a[m * K + k]) * double(b[n * K + k]);
        r.value[m * N + n] += p;
        r.absSum[m * N + n] += std::fabs(p);
      }
  return r;
}

/// Largest |got - ref| / ((K + 1) · 2^-24 · Σ|a·b|): <= 1 for any FP32 summation order of the
/// exact products (see Bf16GemmTest.cpp).
double worstRatio(const std::vector<float>& got, const Ref& ref, int64_t K) {
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double bound = (K + 1) * std::ldexp(1.0, -24) * ref.absSum[i] + 1e-300;
    worst = std::max(worst, std::fabs(got[i] - ref.value[i]) / bound);
  }
  return worst;
}

std::vector<float> randomMatrix(Rng& rng, int64_t rows, int64_t cols, float scale = 1.0f) {
  std::vector<float> v = Tensor::randn({rows, cols}, rng).toVector();
  for (float& x : v) x *= scale;
  return v;
}

od::BfpSource rowMajor(const std::vector<float>& q, int64_t rows, int64_t K, int bits) {
  return {.rows1 = rows, .segLen = K, .values = q.data(), .s1 = K, .sk = 1, .bits = bits};
}

/// B stored transposed, [K, N] (the strided read of the backward GEMMs).
od::BfpSource columnMajor(const std::vector<float>& qT, int64_t rows, int64_t K, int bits) {
  return {.rows1 = rows, .segLen = K, .values = qT.data(), .s1 = 1, .sk = rows, .bits = bits};
}

std::vector<float> transposed(const std::vector<float>& v, int64_t rows, int64_t cols) {
  std::vector<float> t(v.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) t[c * rows + r] = v[r * cols + c];
  return t;
}

std::vector<od::BfpIsa> isas() {
  std::vector<od::BfpIsa> v{od::BfpIsa::Scalar};
  if (od::cpuHasAvx512Vnni()) v.push_back(od::BfpIsa::Vnni);
  return v;
}

/// Sets the process-wide switch for one scope and clears the counters.
class PathSwitch {
 public:
  explicit PathSwitch(bool on) : saved_(int8BfpEnabled()) {
    setInt8BfpEnabled(on);
    resetInt8BfpStats();
  }
  ~PathSwitch() { setInt8BfpEnabled(saved_); }

 private:
  bool saved_;
};

}  // namespace

TEST_CASE("Int8Bfp kernel: block-FP GEMM equals the double reference within the FP32 bound") {
  struct Shape3 {
    int64_t M, N, K, block;
  };
  // Odd sizes: tails of the 6-row and 16/32-column tiles, partial last blocks, K < 4, K not a
  // multiple of 4, blocks of 5 and 16.
  const Shape3 shapes[] = {{1, 1, 1, 64},   {7, 17, 3, 64},  {13, 33, 130, 64},
                           {50, 40, 200, 16}, {5, 3, 67, 5}, {64, 64, 64, 64},
                           {97, 50, 129, 64}};
  const int widths[][2] = {{8, 8}, {6, 6}, {4, 4}, {8, 4}};
  for (const Shape3& sh : shapes) {
    for (const auto& w : widths) {
      CAPTURE(sh.M);
      CAPTURE(sh.N);
      CAPTURE(sh.K);
      CAPTURE(sh.block);
      CAPTURE(w[0]);
      CAPTURE(w[1]);
      Rng rng(static_cast<uint64_t>(sh.M * 1000 + sh.K + w[1]));
      auto a = randomMatrix(rng, sh.M, sh.K), b = randomMatrix(rng, sh.N, sh.K, 1e-3f);
      if (sh.K >= 3) {
        for (int64_t k = 0; k < std::min<int64_t>(sh.K, sh.block); ++k) a[k] = 0.0f;  // a zero block
        b[1] = 1e30f;  // a block whose other values flush to zero mantissas
      }
      auto qa = quantizeRows(a, sh.M, sh.K, sh.K, sh.block, w[0]);
      auto qb = quantizeRows(b, sh.N, sh.K, sh.K, sh.block, w[1]);
      Ref ref = referenceGemm(qa, qb, sh.M, sh.N, sh.K);
      auto qbT = transposed(qb, sh.N, sh.K);
      std::vector<float> first;
      for (od::BfpIsa isa : isas()) {
        CAPTURE(static_cast<int>(isa));
        for (bool strided : {false, true}) {
          std::vector<float> c(sh.M * sh.N + 3, -7.0f);  // ldc = N; a guard after the end
          const od::BfpSource B = strided ? columnMajor(qbT, sh.N, sh.K, w[1])
                                          : rowMajor(qb, sh.N, sh.K, w[1]);
          REQUIRE(od::bfpGemm(rowMajor(qa, sh.M, sh.K, w[0]), B, sh.block, c.data(), sh.N, isa));
          CHECK(c[sh.M * sh.N] == -7.0f);
          c.resize(sh.M * sh.N);
          CHECK(worstRatio(c, ref, sh.K) <= 1.0);
          // Both kernels sum the same block values in the same order: the same bits.
          if (first.empty()) first = c;
          CHECK(std::memcmp(first.data(), c.data(), c.size() * sizeof(float)) == 0);
        }
      }
    }
  }
}

TEST_CASE("Int8Bfp kernel: mantissas and exponents recovered from the values are the encoder's") {
  // The path packs the emulation's quantized FP32 values; the recovered integers must be those
  // hbfpQuantize<int8_t> writes (Format::encode), for RNE and stochastic rounding, including
  // blocks clamped at 2^-126, saturated blocks and blocks flushed to zero.
  for (std::string spec : {"hbfp8", "hbfp4", "hbfp6:round=stochastic", "hbfp8:block=16"}) {
    CAPTURE(spec);
    auto f = formats::parse(spec);
    Rng rng(21);
    const int64_t rows = 9, K = 150;
    std::vector<float> x = randomMatrix(rng, rows, K);
    for (int64_t k = 0; k < 64; ++k) x[K + k] *= 1e-40f;  // row 1, block 0: FP32 subnormals
    x[2 * K + 3] = 1.0f;                                   // row 2: a power-of-two max
    for (int64_t k = 0; k < K; ++k) x[3 * K + k] = 0.0f;   // row 3: all zero
    Tensor xt = Tensor::fromVector(x, {rows, K});
    formats::QuantizeArgs args;
    args.blockAxis = 1;
    args.seed = 5;
    args.step = 3;
    Tensor q = f->quantize(xt, args);
    formats::Encoded e = f->encode(xt, args);
    const int bits = e.codeBits;
    const int64_t block = spec.find("block=16") != std::string::npos ? 16 : 64;
    std::vector<float> qv = q.toVector();
    od::BfpPackedA pa = od::bfpPackA(rowMajor(qv, rows, K, bits), block);
    CHECK(pa.onGrid);
    std::vector<int8_t> codes = e.codes.toVector<int8_t>();
    std::vector<int16_t> exps = e.exponents.toVector<int16_t>();
    const int64_t nb = (K + block - 1) / block;
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t kb = 0; kb < nb; ++kb) {
        const int8_t* got = pa.data.data() + r * pa.rowBytes + kb * pa.P;
        bool nonZero = false;
        for (int64_t k = kb * block; k < std::min(K, (kb + 1) * block); ++k) {
          CHECK(got[k - kb * block] == codes[r * K + k]);
          nonZero |= codes[r * K + k] != 0;
        }
        if (nonZero) {  // an all-zero block's exponent does not matter (its products are 0)
          int32_t biased;
          std::memcpy(&biased, pa.data.data() + r * pa.rowBytes + pa.blocks * (pa.P + 4) + kb * 4,
                      4);
          CHECK((biased >> 23) - 127 == exps[r * nb + kb] - (bits - 1));
        }
      }
    }
  }
}

TEST_CASE("Int8Bfp kernel: falls back when a block product is not an FP32 normal") {
  const int64_t M = 4, N = 5, K = 40;
  Rng rng(3);
  for (od::BfpIsa isa : isas()) {
    SUBCASE("tiny exponents: products below 2^-126") {
      auto a = quantizeRows(randomMatrix(rng, M, K, 0x1p-60f), M, K, K, 64, 8);
      auto b = quantizeRows(randomMatrix(rng, N, K, 0x1p-66f), N, K, K, 64, 8);
      std::vector<float> c(M * N, 3.0f);
      CHECK_FALSE(od::bfpGemm(rowMajor(a, M, K, 8), rowMajor(b, N, K, 8), 64, c.data(), N, isa));
      CHECK(c == std::vector<float>(M * N, 3.0f));  // untouched
    }
    SUBCASE("huge exponents: block sums beyond FP32's range") {
      auto a = quantizeRows(randomMatrix(rng, M, K, 0x1p+70f), M, K, K, 64, 8);
      auto b = quantizeRows(randomMatrix(rng, N, K, 0x1p+60f), N, K, K, 64, 8);
      std::vector<float> c(M * N, 3.0f);
      CHECK_FALSE(od::bfpGemm(rowMajor(a, M, K, 8), rowMajor(b, N, K, 8), 64, c.data(), N, isa));
    }
    SUBCASE("values that are not N-bit HBFP values") {
      auto a = quantizeRows(randomMatrix(rng, M, K), M, K, K, 64, 8);
      auto b = quantizeRows(randomMatrix(rng, N, K), N, K, K, 64, 8);
      std::vector<float> c(M * N, 3.0f);
      CHECK_FALSE(od::bfpGemm(rowMajor(a, M, K, 4), rowMajor(b, N, K, 8), 64, c.data(), N, isa));
      a[5] = std::nextafter(a[5], 10.0f);
      CHECK_FALSE(od::bfpGemm(rowMajor(a, M, K, 8), rowMajor(b, N, K, 8), 64, c.data(), N, isa));
    }
    SUBCASE("zero blocks with the clamped exponent do not force a fallback") {
      auto a = quantizeRows(randomMatrix(rng, M, K, 0x1p-100f), M, K, K, 64, 8);
      std::vector<float> b(N * K, 0.0f);
      b[7] = 1.0f;  // one non-zero block; the other rows are zero blocks (exponent -126)
      std::vector<float> c(M * N, 3.0f);
      REQUIRE(od::bfpGemm(rowMajor(a, M, K, 8), rowMajor(b, N, K, 8), 64, c.data(), N, isa));
      Ref ref = referenceGemm(a, b, M, N, K);
      CHECK(worstRatio(c, ref, K) <= 1.0);
    }
  }
}
