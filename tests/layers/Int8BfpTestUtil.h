#pragma once
// Helpers of the int8 block-floating-point tests (Int8BfpTest.cpp, Int8BfpCodesTest.cpp): HBFP
// from its definition, double-precision references with the bound of FP32 summation in any order,
// the path switch and one forward + backward of a layer.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "LayerTestUtil.h"
#include "core/CpuFeatures.h"
#include "core/ops/Linalg.h"
#include "core/ops/detail/BfpConv.h"
#include "core/ops/detail/BfpGemm.h"
#include "formats/Format.h"
#include "formats/Policy.h"
#include "layers/DotProduct.h"

namespace mantissa::testing::int8bfp {

namespace od = mantissa::ops::detail;
using formats::FormatPolicy;

/// HBFP from its definition (FORMATS.md A.3): per block of `block` consecutive values of a row,
/// e = ceil(log2 max|x|) clamped to [-126, 128] (an all-zero block: -126), ulp = 2^(e-(N-1)),
/// m = round-half-even(x / ulp) clamped to ±(2^(N-1) - 1); the value is m · ulp. `x` is
/// [rows, K] row-major; blocks restart every `segLen` values of a row.
inline std::vector<float> quantizeRows(const std::vector<float>& x, int64_t rows, int64_t K,
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

inline Ref referenceGemm(const std::vector<float>& a, const std::vector<float>& b, int64_t M,
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
inline double worstRatio(const std::vector<float>& got, const Ref& ref, int64_t K) {
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double bound = (K + 1) * std::ldexp(1.0, -24) * ref.absSum[i] + 1e-300;
    worst = std::max(worst, std::fabs(got[i] - ref.value[i]) / bound);
  }
  return worst;
}

inline std::vector<float> randomMatrix(Rng& rng, int64_t rows, int64_t cols, float scale = 1.0f) {
  std::vector<float> v = Tensor::randn({rows, cols}, rng).toVector();
  for (float& x : v) x *= scale;
  return v;
}

inline od::BfpSource rowMajor(const std::vector<float>& q, int64_t rows, int64_t K, int bits) {
  return {.rows1 = rows, .segLen = K, .values = q.data(), .s1 = K, .sk = 1, .bits = bits};
}

/// B stored transposed, [K, N] (the strided read of the backward GEMMs).
inline od::BfpSource columnMajor(const std::vector<float>& qT, int64_t rows, int64_t K, int bits) {
  return {.rows1 = rows, .segLen = K, .values = qT.data(), .s1 = 1, .sk = rows, .bits = bits};
}

inline std::vector<float> transposed(const std::vector<float>& v, int64_t rows, int64_t cols) {
  std::vector<float> t(v.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) t[c * rows + r] = v[r * cols + c];
  return t;
}

inline std::vector<od::BfpIsa> isas() {
  std::vector<od::BfpIsa> v{od::BfpIsa::Scalar};
  if (cpuFeatures().avx512Vnni) v.push_back(od::BfpIsa::Vnni);
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

inline std::vector<double> toDouble(const Tensor& t) {
  std::vector<float> v = t.contiguous().toVector();
  return {v.begin(), v.end()};
}

/// C[m, n] = Σ_k A(m, k) B(n, k) in double with Σ|terms|, for operands given as accessors.
template <class FA, class FB>
inline Ref refProduct(int64_t M, int64_t N, int64_t K, const FA& a, const FB& b) {
  Ref r{std::vector<double>(M * N, 0), std::vector<double>(M * N, 0)};
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k) {
        const double p = a(m, k) * b(n, k);
        r.value[m * N + n] += p;
        r.absSum[m * N + n] += std::fabs(p);
      }
  return r;
}

inline double worstRatio(const Tensor& got, const Ref& ref, int64_t K, double slack = 1.0) {
  std::vector<float> v = got.contiguous().toVector();
  REQUIRE(v.size() == ref.value.size());
  return worstRatio(v,
                    Ref{ref.value,
                        [&] {
                          std::vector<double> s = ref.absSum;
                          for (double& x : s) x *= slack;
                          return s;
                        }()},
                    K);
}

struct LayerRun {
  Tensor y, gx, gw;
  Int8BfpStats stats;
};

inline LayerRun runLayer(nn::DotProductLayer& layer, const Tensor& weight, const Tensor& x,
                         const Tensor& g, bool on) {
  PathSwitch sw(on);
  layer.zeroGrad();
  Tensor xx = x.detach().clone();
  xx.requiresGrad();
  LayerRun r;
  r.y = layer.forward(xx);
  r.y.backward({.grad = g});
  r.gx = xx.grad();
  r.gw = weight.grad();
  r.stats = int8BfpStats();
  return r;
}

inline FormatPolicy hbfpPolicy(const std::string& spec) {
  FormatPolicy p = FormatPolicy::fp32();
  p.weight = p.activation = p.error = formats::parse(spec);
  return p;
}

/// An NCHW tensor quantized along C per pixel (HBFP definition, quantizeRows).
inline std::vector<float> quantizeChannels(const std::vector<float>& x, int64_t N, int64_t C,
                                           int64_t HW, int64_t block, int bits) {
  std::vector<float> rows(x.size()), out(x.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t p = 0; p < HW; ++p) rows[(n * HW + p) * C + c] = x[(n * C + c) * HW + p];
  std::vector<float> q = quantizeRows(rows, N * HW, C, C, block, bits);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t p = 0; p < HW; ++p) out[(n * C + c) * HW + p] = q[(n * HW + p) * C + c];
  return out;
}

/// y[n, o, h, w] = Σ_{c, kh, kw} x[n, c, h+kh-p, w+kw-p] · w(o, c, kh·k+kw) in double, p = (k-1)/2.
template <class FW>
inline Ref referenceConv(const std::vector<float>& x, int64_t N, int64_t C, int64_t H, int64_t W,
                         int64_t O, int64_t k, const FW& w) {
  const int64_t p = (k - 1) / 2;
  Ref r{std::vector<double>(N * O * H * W, 0), std::vector<double>(N * O * H * W, 0)};
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t v = 0; v < W; ++v) {
          const int64_t i = ((n * O + o) * H + h) * W + v;
          for (int64_t c = 0; c < C; ++c)
            for (int64_t kh = 0; kh < k; ++kh)
              for (int64_t kw = 0; kw < k; ++kw) {
                const int64_t ih = h + kh - p, iw = v + kw - p;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                const double prod =
                    double(x[((n * C + c) * H + ih) * W + iw]) * w(o, c, kh * k + kw);
                r.value[i] += prod;
                r.absSum[i] += std::fabs(prod);
              }
        }
  return r;
}

/// Codes of `t` with `f` along `axis` (Hbfp::encode, round to nearest).
inline formats::Encoded encodeAlong(const formats::FormatPtr& f, const Tensor& t, int64_t axis) {
  formats::QuantizeArgs args;
  args.blockAxis = axis;
  return f->encode(t, args);
}

/// Bit patterns (so that -0 and +0 differ).
inline std::vector<uint32_t> bitsOf(const std::vector<float>& v) {
  std::vector<uint32_t> b(v.size());
  std::memcpy(b.data(), v.data(), v.size() * sizeof(float));
  return b;
}

}  // namespace mantissa::testing::int8bfp
