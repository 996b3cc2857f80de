// Spike (2026-12-07, not part of the library or the build): an int8 (AVX-512 VNNI) HBFP8 3x3
// convolution forward for ResNet-20's small-channel layers against oneDNN's bf16 and f32
// forward, one thread, checked against a double reference within the FP32 summation bound.
// What it measured and what it implies: docs/performance.md "What ResNet-20 would need for 1.3x".
// It is kept as the starting point of the int8 convolution kernels that section calls for.
// Needs a CPU with AVX-512 VNNI:
//   g++ -O3 -march=native -fopenmp -std=c++20 docs/spikes/int8_conv_forward.cpp -ldnnl -o spike
//   ./spike            # all three layers; ./spike 16 (one layer), ./spike 16 noref (no check)
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "oneapi/dnnl/dnnl.hpp"

static double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

static int gRuns = 21, gWarm = 3;

static double medianTime(const std::function<void()>& f) {
  for (int i = 0; i < gWarm; ++i) f();
  std::vector<double> t;
  for (int i = 0; i < gRuns; ++i) {
    double t0 = now();
    f();
    t.push_back(now() - t0);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

template <class T>
struct AlignedBuf {
  T* p = nullptr;
  size_t n = 0;
  explicit AlignedBuf(size_t n_ = 0) { resize(n_); }
  void resize(size_t n_) {
    std::free(p);
    n = n_;
    p = static_cast<T*>(std::aligned_alloc(64, ((n * sizeof(T) + 63) / 64) * 64 + 64));
    std::memset(p, 0, n * sizeof(T));
  }
  ~AlignedBuf() { std::free(p); }
  T& operator[](size_t i) { return p[i]; }
  const T& operator[](size_t i) const { return p[i]; }
  AlignedBuf(const AlignedBuf&) = delete;
};

struct Problem {
  int N, C, O, H, W;
  std::vector<int8_t> ma;  // [N][C][H][W]
  std::vector<int8_t> ea;  // [N][H][W]
  std::vector<int8_t> mb;  // [O][C][3][3]
  std::vector<int8_t> eb;  // [O][3][3]
  double macs() const { return double(N) * O * H * W * C * 9; }
};

static Problem makeProblem(int N, int C, int O, int H, int W, uint64_t seed) {
  Problem p{N, C, O, H, W, {}, {}, {}, {}};
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> m(-127, 127), e(-3, 3);
  p.ma.resize(size_t(N) * C * H * W);
  p.ea.resize(size_t(N) * H * W);
  p.mb.resize(size_t(O) * C * 9);
  p.eb.resize(size_t(O) * 9);
  for (auto& v : p.ma) v = int8_t(m(rng));
  for (auto& v : p.ea) v = int8_t(e(rng));
  for (auto& v : p.mb) v = int8_t(m(rng));
  for (auto& v : p.eb) v = int8_t(e(rng));
  return p;
}

static inline float dec(int m, int e) { return std::ldexp(float(m), e - 7); }

// Reference in double, output NCHW; also sum |a*b| per output.
static void reference(const Problem& p, std::vector<double>& y, std::vector<double>& ab) {
  const int N = p.N, C = p.C, O = p.O, H = p.H, W = p.W;
  y.assign(size_t(N) * O * H * W, 0.0);
  ab.assign(y.size(), 0.0);
  std::vector<double> xa(size_t(C) * H * W), wb(size_t(O) * C * 9);
  for (int o = 0; o < O; ++o)
    for (int c = 0; c < C; ++c)
      for (int t = 0; t < 9; ++t)
        wb[(size_t(o) * C + c) * 9 + t] = dec(p.mb[(size_t(o) * C + c) * 9 + t], p.eb[o * 9 + t]);
  for (int n = 0; n < N; ++n) {
    for (int c = 0; c < C; ++c)
      for (int i = 0; i < H * W; ++i)
        xa[size_t(c) * H * W + i] = dec(p.ma[(size_t(n) * C + c) * H * W + i], p.ea[size_t(n) * H * W + i]);
    for (int o = 0; o < O; ++o)
      for (int h = 0; h < H; ++h)
        for (int w = 0; w < W; ++w) {
          double s = 0, a = 0;
          for (int kh = 0; kh < 3; ++kh) {
            int ih = h + kh - 1;
            if (ih < 0 || ih >= H) continue;
            for (int kw = 0; kw < 3; ++kw) {
              int iw = w + kw - 1;
              if (iw < 0 || iw >= W) continue;
              for (int c = 0; c < C; ++c) {
                double v = xa[size_t(c) * H * W + ih * W + iw] * wb[(size_t(o) * C + c) * 9 + kh * 3 + kw];
                s += v;
                a += std::fabs(v);
              }
            }
          }
          size_t idx = ((size_t(n) * O + o) * H + h) * W + w;
          y[idx] = s;
          ab[idx] = a;
        }
  }
}

struct Check {
  double maxRatio = 0;  // max |err| / bound
  double maxAbsErr = 0;
  size_t bad = 0;
};
static Check check(const std::vector<double>& ref, const std::vector<double>& ab, const float* y, double K) {
  Check c;
  const double u = std::ldexp(1.0, -24);
  for (size_t i = 0; i < ref.size(); ++i) {
    double err = std::fabs(double(y[i]) - ref[i]);
    double bound = (K + 1) * u * ab[i];
    c.maxAbsErr = std::max(c.maxAbsErr, err);
    if (bound > 0) c.maxRatio = std::max(c.maxRatio, err / bound);
    if (err > bound) ++c.bad;
  }
  return c;
}

// ------------------------------------------------------------------------------------------
// oneDNN baseline
struct DnnlResult {
  double sec = 0, srcReorderSec = 0;
  std::string impl, srcTag;
  Check chk;
};

static DnnlResult runDnnl(const Problem& p, bool bf16, const std::vector<double>& ref, const std::vector<double>& ab) {
  using namespace dnnl;
  using dt = memory::data_type;
  using tag = memory::format_tag;
  engine eng(engine::kind::cpu, 0);
  stream s(eng);
  memory::dims src{p.N, p.C, p.H, p.W}, wei{p.O, p.C, 3, 3}, dst{p.N, p.O, p.H, p.W};
  dt in = bf16 ? dt::bf16 : dt::f32;
  auto d = convolution_forward::desc(prop_kind::forward_training, algorithm::convolution_direct,
                                     memory::desc(src, in, tag::any), memory::desc(wei, in, tag::any),
                                     memory::desc(dst, dt::f32, tag::any), {1, 1}, {1, 1}, {1, 1});
  convolution_forward::primitive_desc pd(d, eng);
  DnnlResult r;
  r.impl = pd.impl_info_str();
  // user memories
  memory usrc({src, in, tag::nchw}, eng), uwei({wei, in, tag::oihw}, eng), udst({dst, dt::f32, tag::nchw}, eng);
  auto fill = [&](memory& m, const std::vector<int8_t>& mant, auto expOf) {
    size_t n = mant.size();
    if (bf16) {
      uint16_t* q = static_cast<uint16_t*>(m.get_data_handle());
      for (size_t i = 0; i < n; ++i) {
        float f = dec(mant[i], expOf(i));
        uint32_t b;
        std::memcpy(&b, &f, 4);
        q[i] = uint16_t(b >> 16);  // exact: 7 significant bits
      }
    } else {
      float* q = static_cast<float*>(m.get_data_handle());
      for (size_t i = 0; i < n; ++i) q[i] = dec(mant[i], expOf(i));
    }
  };
  const size_t HW = size_t(p.H) * p.W;
  fill(usrc, p.ma, [&](size_t i) { return int(p.ea[(i / (HW * p.C)) * HW + i % HW]); });
  fill(uwei, p.mb, [&](size_t i) { return int(p.eb[(i / (size_t(p.C) * 9)) * 9 + i % 9]); });
  memory msrc(pd.src_desc(), eng), mwei(pd.weights_desc(), eng), mdst(pd.dst_desc(), eng);
  reorder rsrc(usrc, msrc);
  r.srcReorderSec = medianTime([&] {
    rsrc.execute(s, usrc, msrc);
    s.wait();
  });
  r.srcTag = msrc.get_desc().data.format_desc.blocking.inner_nblks ? "blocked" : "plain";
  reorder(uwei, mwei).execute(s, uwei, mwei);
  s.wait();
  convolution_forward conv(pd);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, msrc}, {DNNL_ARG_WEIGHTS, mwei}, {DNNL_ARG_DST, mdst}};
  r.sec = medianTime([&] {
    conv.execute(s, args);
    s.wait();
  });
  reorder(mdst, udst).execute(s, mdst, udst);
  s.wait();
  r.chk = check(ref, ab, static_cast<float*>(udst.get_data_handle()), 9.0 * p.C);
  return r;
}

// ------------------------------------------------------------------------------------------
// int8 VNNI kernel
// Packed activation: xp[n][H+2][W+2][C] uint8 = m + 128 (pad = 128, i.e. value 0).
// eo[n][H+2][W+2] int32: byte offset (ea - emin) * 9 * O * 4 into the scale table.
// Weights wp[t][C/4][O][4] int8; corr[t][O] = -128 * sum_c mb[o][c][t].
// Scale table tab[e - emin][t][O] = 2^(e-7) * 2^(eb[o][t]-7) (exact powers of two).
// Output y[n][O/16][H][W][16] float (oneDNN-like nChw16c).
struct Packed {
  int N, C, O, H, W, Hp, Wp, emin, E;
  AlignedBuf<uint8_t> xp;
  AlignedBuf<int32_t> eo;
  AlignedBuf<int8_t> wp;
  AlignedBuf<int32_t> corr;
  AlignedBuf<float> tab;
};

static void packWeights(const Problem& p, Packed& k, int emin, int emax) {
  const int C = p.C, O = p.O, C4 = C / 4;
  k.emin = emin;
  k.E = emax - emin + 1;
  k.wp.resize(size_t(9) * C4 * O * 4);
  k.corr.resize(size_t(9) * O);
  k.tab.resize(size_t(k.E) * 9 * O);
  for (int t = 0; t < 9; ++t)
    for (int o = 0; o < O; ++o) {
      int sum = 0;
      for (int c = 0; c < C; ++c) {
        int8_t m = p.mb[(size_t(o) * C + c) * 9 + t];
        k.wp[((size_t(t) * C4 + c / 4) * O + o) * 4 + c % 4] = m;
        sum += m;
      }
      k.corr[size_t(t) * O + o] = -128 * sum;
      for (int e = 0; e < k.E; ++e)
        k.tab[(size_t(e) * 9 + t) * O + o] = std::ldexp(1.0f, (emin + e - 7) + (p.eb[o * 9 + t] - 7));
    }
}

// Activation pack: NCHW int8 mantissas + exponents -> padded NHWC uint8 + offsets.
static void packActivations(const Problem& p, Packed& k) {
  const int N = p.N, C = p.C, H = p.H, W = p.W, Hp = H + 2, Wp = W + 2;
  const int32_t estride = 9 * p.O * 4;
  for (int n = 0; n < N; ++n) {
    uint8_t* xn = &k.xp[size_t(n) * Hp * Wp * C];
    int32_t* en = &k.eo[size_t(n) * Hp * Wp];
    const int8_t* src = &p.ma[size_t(n) * C * H * W];
    const int8_t* es = &p.ea[size_t(n) * H * W];
    // padding rows / columns (value 128 = 0, offset 0)
    std::memset(xn, 128, size_t(Wp) * C);
    std::memset(xn + size_t(Hp - 1) * Wp * C, 128, size_t(Wp) * C);
    for (int h = 0; h < H; ++h) {
      uint8_t* row = xn + size_t(h + 1) * Wp * C;
      std::memset(row, 128, C);
      std::memset(row + size_t(W + 1) * C, 128, C);
      int32_t* erow = en + size_t(h + 1) * Wp;
      for (int w = 0; w < W; ++w) erow[w + 1] = (es[h * W + w] - k.emin) * estride;
      // transpose C x W -> W x C with +128; 16 channels at a time, gather along w
      for (int w = 0; w < W; ++w) {
        uint8_t* dst = row + size_t(w + 1) * C;
        for (int c = 0; c < C; ++c) dst[c] = uint8_t(src[(size_t(c) * H + h) * W + w] + 128);
      }
    }
  }
}

// Faster AVX-512 pack for C multiple of 16: for each 16-pixel chunk along w and 16 channels,
// load 16 rows of 16 bytes... kept simple: byte-transpose via scalar is ~ fine for reporting an
// upper bound; see packActivationsFast below.
static void packActivationsFast(const Problem& p, Packed& k) {
  const int N = p.N, C = p.C, H = p.H, W = p.W, Hp = H + 2, Wp = W + 2;
  const int32_t estride = 9 * p.O * 4;
  const __m512i bias = _mm512_set1_epi8(char(0x80));
  for (int n = 0; n < N; ++n) {
    uint8_t* xn = &k.xp[size_t(n) * Hp * Wp * C];
    int32_t* en = &k.eo[size_t(n) * Hp * Wp];
    const int8_t* src = &p.ma[size_t(n) * C * H * W];
    const int8_t* es = &p.ea[size_t(n) * H * W];
    std::memset(xn, 128, size_t(Wp) * C);
    std::memset(xn + size_t(Hp - 1) * Wp * C, 128, size_t(Wp) * C);
    for (int h = 0; h < H; ++h) {
      uint8_t* row = xn + size_t(h + 1) * Wp * C;
      std::memset(row, 128, C);
      std::memset(row + size_t(W + 1) * C, 128, C);
      int32_t* erow = en + size_t(h + 1) * Wp;
      for (int w = 0; w < W; ++w) erow[w + 1] = (es[h * W + w] - k.emin) * estride;
      // 4 channels at a time: gather 4 channel rows of W bytes, interleave into dwords.
      for (int c = 0; c < C; c += 4) {
        const int8_t* s0 = src + (size_t(c) * H + h) * W;
        const size_t cs = size_t(H) * W;
        for (int w = 0; w < W; w += 16) {
          int cnt = std::min(16, W - w);
          __mmask16 m = __mmask16((1u << cnt) - 1);
          __m512i a = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, s0 + w));
          __m512i b = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, s0 + cs + w));
          __m512i cc = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, s0 + 2 * cs + w));
          __m512i d = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, s0 + 3 * cs + w));
          __m512i v = _mm512_or_si512(_mm512_or_si512(a, _mm512_slli_epi32(b, 8)),
                                      _mm512_or_si512(_mm512_slli_epi32(cc, 16), _mm512_slli_epi32(d, 24)));
          v = _mm512_xor_si512(v, bias);
          // scatter dwords with stride C bytes
          __m512i idx = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                           _mm512_set1_epi32(C / 4));
          _mm512_mask_i32scatter_epi32(row + size_t(w + 1) * C + c, m, idx, v, 4);
        }
      }
    }
  }
}

template <int P, int OVB, int C, bool kSkipPadRows = true>
__attribute__((noinline)) static void convInt8(const Packed& k, float* __restrict y) {
  constexpr int C4 = C / 4;
  const int N = k.N, O = k.O, H = k.H, W = k.W, Hp = k.Hp, Wp = k.Wp;
  const int OV = O / 16;
  for (int n = 0; n < N; ++n)
    for (int ov0 = 0; ov0 < OV; ov0 += OVB)
      for (int h = 0; h < H; ++h)
        for (int w0 = 0; w0 < W; w0 += P) {
          __m512 acc[P][OVB];
#pragma GCC unroll 64
          for (int i = 0; i < P; ++i)
#pragma GCC unroll 8
            for (int j = 0; j < OVB; ++j) acc[i][j] = _mm512_setzero_ps();
          // skip kernel rows that fall entirely into the zero padding (oneDNN does the same)
          const int khBeg = (kSkipPadRows && h == 0) ? 1 : 0, khEnd = (kSkipPadRows && h == H - 1) ? 2 : 3;
#pragma GCC unroll 1
          for (int kh = khBeg; kh < khEnd; ++kh) {
#pragma GCC unroll 1
            for (int kw = 0; kw < 3; ++kw) {
              const int t = kh * 3 + kw;
              const size_t pix = (size_t(n) * Hp + h + kh) * Wp + w0 + kw;
              const uint8_t* xr = k.xp.p + pix * C;
              const int32_t* er = k.eo.p + pix;
              const int8_t* wt = k.wp.p + (size_t(t) * C4 * O + ov0 * 16) * 4;
              __m512i S[P][OVB];
#pragma GCC unroll 8
              for (int j = 0; j < OVB; ++j) {
                __m512i c0 = _mm512_load_si512(k.corr.p + size_t(t) * O + (ov0 + j) * 16);
#pragma GCC unroll 64
                for (int i = 0; i < P; ++i) S[i][j] = c0;
              }
#pragma GCC unroll 16
              for (int c4 = 0; c4 < C4; ++c4) {
                __m512i wv[OVB];
#pragma GCC unroll 8
                for (int j = 0; j < OVB; ++j) wv[j] = _mm512_load_si512(wt + (size_t(c4) * O + j * 16) * 4);
#pragma GCC unroll 64
                for (int i = 0; i < P; ++i) {
                  const int32_t* xa = reinterpret_cast<const int32_t*>(xr + i * C + c4 * 4);
                  // NB: an embedded-broadcast memory operand of vpdpbusd is the *signed* operand, so
                  // broadcast the (unsigned) activation into a register; asm keeps GCC from hoisting.
                  {
                    __m512i xb;
                    asm("vpbroadcastd %[x], %[b]" : [b] "=v"(xb) : [x] "m"(*xa));
#pragma GCC unroll 8
                    for (int j = 0; j < OVB; ++j) S[i][j] = _mm512_dpbusd_epi32(S[i][j], xb, wv[j]);
                  }
                }
              }
              const char* tb = reinterpret_cast<const char*>(k.tab.p + size_t(t) * O + ov0 * 16);
#pragma GCC unroll 64
              for (int i = 0; i < P; ++i) {
                const char* ti = tb + er[i];
#pragma GCC unroll 8
                for (int j = 0; j < OVB; ++j)
                  acc[i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(S[i][j]),
                                              _mm512_load_ps(reinterpret_cast<const float*>(ti) + j * 16), acc[i][j]);
              }
            }
          }
#pragma GCC unroll 8
          for (int j = 0; j < OVB; ++j) {
            float* yo = y + (((size_t(n) * OV + ov0 + j) * H + h) * W + w0) * 16;
#pragma GCC unroll 64
            for (int i = 0; i < P; ++i) _mm512_store_ps(yo + i * 16, acc[i][j]);
          }
        }
}

using KernelFn = void (*)(const Packed&, float*);
struct Variant {
  const char* name;
  int C, P, OVB;
  KernelFn fn;
};
static const Variant kVariants[] = {
    {"C16 P14 OV1", 16, 14, 1, convInt8<14, 1, 16>},
    {"C16 P7 OV1", 16, 7, 1, convInt8<7, 1, 16>},
    {"C16 P4 OV1", 16, 4, 1, convInt8<4, 1, 16>},
    {"C32 P14 OV1", 32, 14, 1, convInt8<14, 1, 32>},
    {"C32 P7 OV2", 32, 7, 2, convInt8<7, 2, 32>},
    {"C32 P7 OV1", 32, 7, 1, convInt8<7, 1, 32>},
    {"C64 P7 OV1", 64, 7, 1, convInt8<7, 1, 64>},
    {"C64 P7 OV2", 64, 7, 2, convInt8<7, 2, 64>},
    {"C64 P7 OV4 (spills)", 64, 7, 4, convInt8<7, 4, 64>},
    {"C16 P14 OV1 noskip", 16, 14, 1, convInt8<14, 1, 16, false>},
    {"C32 P7 OV2 noskip", 32, 7, 2, convInt8<7, 2, 32, false>},
    {"C64 P7 OV2 noskip", 64, 7, 2, convInt8<7, 2, 64, false>},
};

int main(int argc, char** argv) {
  omp_set_num_threads(1);
  std::string only = argc > 1 ? argv[1] : "";
  bool noRef = argc > 2 && std::string(argv[2]) == "noref";
  bool onlyInt8 = argc > 3;  // for perf stat: argv[3] = variant name substring
  if (const char* r = std::getenv("RUNS")) gRuns = std::atoi(r);
  struct L {
    const char* name;
    int C, H;
  } layers[] = {{"16x28x28", 16, 28}, {"32x14x14", 32, 14}, {"64x7x7", 64, 7}};
  const int N = 128;
  std::printf("layer,variant,gmacs,ms,max_err/bound,bad\n");
  for (auto& l : layers) {
    if (!only.empty() && only != "all" && only != l.name) continue;
    Problem p = makeProblem(N, l.C, l.C, l.H, l.H, 1234 + l.C);
    std::vector<double> ref, ab;
    if (!noRef) reference(p, ref, ab);
    const double macs = p.macs();
    if (!onlyInt8) {
      for (bool bf : {false, true}) {
        auto r = runDnnl(p, bf, noRef ? std::vector<double>(size_t(N) * p.O * p.H * p.W, 0.0) : ref,
                         noRef ? std::vector<double>(size_t(N) * p.O * p.H * p.W, 1.0) : ab);
        std::printf("%s,onednn %s [%s],%.1f,%.3f,%.3g,%zu\n", l.name, bf ? "bf16" : "f32", r.impl.c_str(),
                    macs / r.sec * 1e-9, r.sec * 1e3, r.chk.maxRatio, noRef ? size_t(0) : r.chk.bad);
        std::printf("%s,onednn %s src reorder nchw->%s (excluded above): %.3f ms\n", l.name, bf ? "bf16" : "f32",
                    r.srcTag.c_str(), r.srcReorderSec * 1e3);
      }
    }
    // int8
    Packed k{N, p.C, p.O, p.H, p.W, p.H + 2, p.W + 2, 0, 0, AlignedBuf<uint8_t>(), AlignedBuf<int32_t>(),
             AlignedBuf<int8_t>(), AlignedBuf<int32_t>(), AlignedBuf<float>()};
    int emin = *std::min_element(p.ea.begin(), p.ea.end()), emax = *std::max_element(p.ea.begin(), p.ea.end());
    k.xp.resize(size_t(N) * k.Hp * k.Wp * p.C);
    k.eo.resize(size_t(N) * k.Hp * k.Wp);
    const int savedRuns = gRuns, savedWarm = gWarm;
    if (onlyInt8) gRuns = 1, gWarm = 0;
    double tw = medianTime([&] { packWeights(p, k, emin, emax); });
    double ta = medianTime([&] { packActivations(p, k); });
    double taf = medianTime([&] { packActivationsFast(p, k); });
    // the min/max scan over exponents is part of packing too
    double tmm = medianTime([&] {
      volatile int a = *std::min_element(p.ea.begin(), p.ea.end());
      volatile int b = *std::max_element(p.ea.begin(), p.ea.end());
      (void)a, (void)b;
    });
    if (!onlyInt8)
      std::printf("%s,pack: weights %.3f ms, act scalar %.3f ms, act avx512 %.3f ms, exp min/max %.3f ms\n", l.name,
                  tw * 1e3, ta * 1e3, taf * 1e3, tmm * 1e3);
    {  // verify fast pack == scalar pack
      AlignedBuf<uint8_t> a(k.xp.n);
      std::memcpy(a.p, k.xp.p, a.n);
      packActivations(p, k);
      if (std::memcmp(a.p, k.xp.p, a.n)) std::printf("PACK MISMATCH\n");
    }
    gRuns = savedRuns, gWarm = savedWarm;
    const double tpack = tw + std::min(ta, taf) + tmm;
    AlignedBuf<float> y(size_t(N) * p.O * p.H * p.W);
    std::vector<float> ynchw(y.n);
    for (const Variant& v : kVariants) {
      if (v.C != p.C || p.W % v.P || (p.O / 16) % v.OVB) continue;
      if (onlyInt8 && std::string(v.name).find(argv[3]) == std::string::npos) continue;
      double t = medianTime([&] { v.fn(k, y.p); });
      Check c;
      if (!noRef) {
        const int OV = p.O / 16, HW = p.H * p.W;
        for (int n = 0; n < N; ++n)
          for (int o = 0; o < p.O; ++o)
            for (int i = 0; i < HW; ++i)
              ynchw[(size_t(n) * p.O + o) * HW + i] = y[((size_t(n) * OV + o / 16) * HW + i) * 16 + o % 16];
        c = check(ref, ab, ynchw.data(), 9.0);
      }
      std::printf("%s,int8 %s,%.1f,%.3f,%.3g,%zu\n", l.name, v.name, macs / t * 1e-9, t * 1e3, c.maxRatio, c.bad);
      std::printf("%s,int8 %s + pack,%.1f,%.3f,,\n", l.name, v.name, macs / (t + tpack) * 1e-9, (t + tpack) * 1e3);
    }
  }
  return 0;
}
