// mantissa-bench-int8: the int8 block-floating-point path (docs/performance.md "int8
// block-floating-point path"), in one process, as ratios.
//   1. Kernel: ops::detail::bfpGemm (packing from the quantized FP32 operands included) against
//      oneDNN's FP32 matmul (core `gemm`) on the same hbfp8 operands, GFLOP/s.
//   2. Layers: forward + backward of one hbfp8 Conv2d / Linear with FP32 GEMMs (bf16 and int8
//      paths off), on the bf16 path (the default) and on the int8 path.
//   3. Training: one step (forward, cross-entropy, backward, SGD) of ResNet-20 / AlexNet-small
//      in fp32, hbfp8 with the int8 path off (bf16 path, the default) and on.
//   5. Convolutions (--conv): the int8 direct convolution (ops::detail::bfpConv2d, packing
//      included) against the bf16 path's oneDNN convolution on the same hbfp8 operands (its
//      toBf16Exact conversions timed apart), forward and backward-data, per ResNet-20 3x3 layer
//      shape, 1 and 2 threads; and the kernel on the operands' codes (what Conv2d passes) with
//      what produces each route's operands (quantize to FP32 values, encode to codes) timed apart.
//   4. Ceiling (--ceiling): register-only loops of the instructions themselves, one thread:
//      FP32 FMA, bf16 dot products (vdpbf16ps) and int8 block dot products (vpdpbusd) followed,
//      every B values, by the per-block epilogue an exact block-FP GEMM needs (convert the int32
//      sum, FMA with the blocks' scale), for B = 16, 32, 64: the best an int8 kernel can do
//      against the bf16 path for ResNet-20's 16/32/64-channel blocks (docs/performance.md "What
//      ResNet-20 would need for 1.3x").
// Every measurement interleaves its variants round by round, so a shared, noisy machine slows
// them alike; medians over the rounds are reported.
//   mantissa-bench-int8 [--models resnet20,alexnet-small] [--batch 128] [--rounds 5]
//                       [--threads 2] [--cpu-time] [--no-kernel] [--no-layers] [--no-train]
//                       [--ceiling] [--conv]
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <cxxopts.hpp>

#include "apps/common/Precision.h"
#include "core/CpuFeatures.h"
#include "core/Rng.h"
#include "core/ops/Conv.h"
#include "core/ops/Linalg.h"
#include "core/ops/Loss.h"
#include "core/ops/detail/Bf16.h"
#include "core/ops/detail/BfpConv.h"
#include "core/ops/detail/BfpGemm.h"
#include "core/parallel/ParallelFor.h"
#include "formats/Format.h"
#include "formats/Policy.h"
#include "formats/PrecisionSchedule.h"
#include "layers/Conv2d.h"
#include "layers/Linear.h"
#include "layers/models/AlexNet.h"
#include "layers/models/CifarResNet.h"
#include "optim/Sgd.h"

using namespace mantissa;
namespace od = mantissa::ops::detail;

namespace {

using Clock = std::chrono::steady_clock;

/// --cpu-time: CPU seconds of the process instead of wall-clock seconds. With --threads 1 this
/// is the work of the step, which other jobs on a loaded machine do not inflate.
bool gCpuTime = false;

double now() {
  if (!gCpuTime) return std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

double seconds(const std::function<void()>& f) {
  const double t0 = now();
  f();
  return now() - t0;
}

/// Runs the variants round by round (one warm-up round first) and returns the median seconds.
std::vector<double> interleaved(const std::vector<std::function<void()>>& variants, int rounds) {
  std::vector<std::vector<double>> t(variants.size());
  for (const auto& v : variants) v();
  for (int r = 0; r < rounds; ++r) {
    for (size_t i = 0; i < variants.size(); ++i) t[i].push_back(seconds(variants[i]));
  }
  std::vector<double> out;
  for (auto& v : t) out.push_back(median(v));
  return out;
}

void kernelBench(int rounds) {
  struct Item {
    const char* name;
    int64_t M, N, K;
  };
  const Item items[] = {
      {"resnet20 stage 1 conv (im2col shape), batch 128", 128 * 28 * 28, 16, 144},
      {"resnet20 stage 2 conv", 128 * 14 * 14, 32, 288},
      {"resnet20 stage 3 conv", 128 * 7 * 7, 64, 576},
      {"alexnet-small conv 192->384 3x3 (batch 128, 7x7)", 128 * 7 * 7, 384, 1728},
      {"alexnet-small fc 1024->1024, batch 128", 128, 1024, 1024},
      {"1024^3", 1024, 1024, 1024},
  };
  auto hbfp8 = formats::parse("hbfp8");
  std::printf("shape,M,N,K,onednn_f32_gflops,int8_bfp_gflops,ratio\n");
  for (const Item& it : items) {
    Rng rng(3);
    formats::QuantizeArgs args;
    args.blockAxis = 1;
    Tensor a = hbfp8->quantize(Tensor::randn({it.M, it.K}, rng), args);
    Tensor b = hbfp8->quantize(Tensor::randn({it.N, it.K}, rng), args);
    Tensor c = Tensor::empty({it.M, it.N});
    const od::BfpSource A{.rows1 = it.M, .segLen = it.K, .values = a.data<float>(), .s1 = it.K};
    const od::BfpSource B{.rows1 = it.N, .segLen = it.K, .values = b.data<float>(), .s1 = it.K};
    const od::BfpIsa isa = od::bestBfpIsa();
    Tensor bt = b.transpose(0, 1);
    auto t = interleaved({[&] { (void)gemm(a, bt); },
                          [&] { od::bfpGemm(A, B, 64, c.data<float>(), it.N, isa); }},
                         rounds);
    const double flop = 2.0 * static_cast<double>(it.M) * it.N * it.K;
    std::printf("%s,%lld,%lld,%lld,%.1f,%.1f,%.2f\n", it.name, static_cast<long long>(it.M),
                static_cast<long long>(it.N), static_cast<long long>(it.K), flop / t[0] * 1e-9,
                flop / t[1] * 1e-9, t[0] / t[1]);
  }
  std::printf("\n");
}

// ---- 4. Instruction ceiling ---------------------------------------------------------------
// kAcc independent accumulator chains, enough to cover the latency of each instruction; the
// operands are loop-invariant registers, the results are kept alive through an empty asm.
constexpr int kAcc = 12;

template <class V>
inline void keep(V& v) {
  asm volatile("" : "+v"(v));
}

__attribute__((target("avx512f"))) double fp32MacsPerNs(int64_t iters) {
  __m512 acc[kAcc], a = _mm512_set1_ps(1.0f), b = _mm512_set1_ps(1e-9f);
  for (auto& x : acc) x = _mm512_setzero_ps();
  const double t0 = now();
  for (int64_t it = 0; it < iters; ++it) {
    for (auto& x : acc) x = _mm512_fmadd_ps(a, b, x);
    keep(a);
  }
  const double t = now() - t0;
  for (auto& x : acc) keep(x);
  return static_cast<double>(iters) * kAcc * 16 / (t * 1e9);
}

__attribute__((target("avx512f,avx512bf16"))) double bf16MacsPerNs(int64_t iters) {
  __m512 acc[kAcc];
  __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3000);
  for (auto& x : acc) x = _mm512_setzero_ps();
  const double t0 = now();
  for (int64_t it = 0; it < iters; ++it) {
    for (auto& x : acc) x = _mm512_dpbf16_ps(x, a, b);
    keep(a);
  }
  const double t = now() - t0;
  for (auto& x : acc) keep(x);
  return static_cast<double>(iters) * kAcc * 32 / (t * 1e9);
}

/// kSteps vpdpbusd per block (B = 4 kSteps values), then the block epilogue into FP32. Each
/// chain has its own B operand, so no two chains compute the same block sum.
template <int kSteps>
__attribute__((target("avx512f,avx512vnni"))) double int8BlockMacsPerNs(int64_t iters) {
  __m512 acc[kAcc], scale = _mm512_set1_ps(0x1p-20f);
  __m512i a = _mm512_set1_epi8(3), b[kAcc], start = _mm512_setzero_si512();
  for (int i = 0; i < kAcc; ++i) {
    acc[i] = _mm512_setzero_ps();
    b[i] = _mm512_set1_epi8(static_cast<char>(i + 1));
  }
  const double t0 = now();
  for (int64_t it = 0; it < iters; ++it) {
    for (int i = 0; i < kAcc; ++i) {
      __m512i s = start;
      for (int k = 0; k < kSteps; ++k) s = _mm512_dpbusd_epi32(s, a, b[i]);
      acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), scale, acc[i]);
    }
    keep(a);
  }
  const double t = now() - t0;
  for (auto& x : acc) keep(x);
  return static_cast<double>(iters) * kAcc * 64 * kSteps / (t * 1e9);
}

void ceilingBench(int rounds) {
  if (!cpuFeatures().avx512 || !cpuFeatures().avx512Bf16 || !cpuFeatures().avx512Vnni) {
    std::printf("ceiling: skipped (needs AVX-512 with BF16 and VNNI)\n\n");
    return;
  }
  setNumThreads(1);
  constexpr int64_t kMacs = int64_t{1} << 30;  // per measurement, about 0.1-0.5 s
  std::vector<double> f32, bf, i16, i32, i64;
  for (int r = 0; r < rounds; ++r) {
    f32.push_back(fp32MacsPerNs(kMacs / (kAcc * 16)));
    bf.push_back(bf16MacsPerNs(kMacs / (kAcc * 32)));
    i16.push_back(int8BlockMacsPerNs<4>(kMacs / (kAcc * 256)));
    i32.push_back(int8BlockMacsPerNs<8>(kMacs / (kAcc * 512)));
    i64.push_back(int8BlockMacsPerNs<16>(kMacs / (kAcc * 1024)));
  }
  const double b = median(bf);
  std::printf("instruction,gmacs_per_s_one_thread,vs_bf16\n");
  std::printf("fp32 fma,%.1f,%.2f\n", median(f32), median(f32) / b);
  std::printf("bf16 vdpbf16ps,%.1f,1.00\n", b);
  std::printf("int8 vpdpbusd block 16 + epilogue,%.1f,%.2f\n", median(i16), median(i16) / b);
  std::printf("int8 vpdpbusd block 32 + epilogue,%.1f,%.2f\n", median(i32), median(i32) / b);
  std::printf("int8 vpdpbusd block 64 + epilogue,%.1f,%.2f\n\n", median(i64), median(i64) / b);
}

void layerBench(int rounds, const std::string& only) {
  struct Item {
    std::string name;
    std::shared_ptr<nn::DotProductLayer> layer;
    Shape input;
  };
  Rng rng(1);
  // clang-format off
  std::vector<Item> items{
      {"conv2d 16->16 3x3, 128x16x28x28", std::make_shared<nn::Conv2d>(16, 16, 3, rng, nn::Conv2dOptions{.padding = 1}), {128, 16, 28, 28}},
      {"conv2d 64->64 3x3, 128x64x7x7", std::make_shared<nn::Conv2d>(64, 64, 3, rng, nn::Conv2dOptions{.padding = 1}), {128, 64, 7, 7}},
      {"conv2d 64->64 3x3, 64x64x32x32", std::make_shared<nn::Conv2d>(64, 64, 3, rng, nn::Conv2dOptions{.padding = 1}), {64, 64, 32, 32}},
      {"conv2d 16->32 3x3 stride 2, 128x16x28x28", std::make_shared<nn::Conv2d>(16, 32, 3, rng, nn::Conv2dOptions{.stride = 2, .padding = 1}), {128, 16, 28, 28}},
      {"conv2d 32->64 3x3 stride 2, 128x32x14x14", std::make_shared<nn::Conv2d>(32, 64, 3, rng, nn::Conv2dOptions{.stride = 2, .padding = 1}), {128, 32, 14, 14}},
      {"linear 1024->1024, batch 128", std::make_shared<nn::Linear>(1024, 1024, rng), {128, 1024}},
      {"linear 1024->1024, batch 512", std::make_shared<nn::Linear>(1024, 1024, rng), {512, 1024}},
  };
  // clang-format on
  std::printf("layer,format,fp32_gemms_ms,bf16_path_ms,int8_path_ms,int8_vs_fp32,int8_vs_bf16,"
              "int8_gemms,inexact\n");
  for (Item& it : items) {
    if (it.name.find(only) == std::string::npos) continue;
    it.layer->setPolicy(formats::FormatPolicy::recipe("hbfp8"));
    Tensor x = Tensor::randn(it.input, rng);
    x.requiresGrad();
    Tensor g;
    Int8BfpStats stats;
    // GEMMs: both paths off (FP32), the bf16 path (the default), the int8 path.
    auto step = [&](bool on, bool bf16 = true) {
      setInt8BfpEnabled(on);
      setBf16GemmEnabled(bf16);
      resetInt8BfpStats();
      x.zeroGrad();
      it.layer->zeroGrad();
      Tensor y = it.layer->forward(x);
      if (!g.defined()) g = Tensor::randn(y.shape(), rng);
      y.backward({.grad = g});
      if (on) stats = int8BfpStats();
    };
    auto t = interleaved({[&] { step(false, false); }, [&] { step(false); }, [&] { step(true); }},
                         rounds);
    setBf16GemmEnabled(true);
    std::printf("%s,hbfp8,%.2f,%.2f,%.2f,%.2f,%.2f,%lld,%lld\n", it.name.c_str(), 1e3 * t[0],
                1e3 * t[1], 1e3 * t[2], t[0] / t[2], t[1] / t[2],
                static_cast<long long>(stats.int8), static_cast<long long>(stats.inexact));
  }
  std::printf("\n");
}

// ---- 5. Direct convolutions ---------------------------------------------------------------

void convBench(int rounds, int64_t batch, const std::vector<int>& threadCounts,
               const std::string& only) {
  struct Item {
    const char* name;
    int64_t C, O, HW;
  };
  const Item items[] = {{"resnet20 16->16 3x3 28x28", 16, 16, 28},
                        {"resnet20 32->32 3x3 14x14", 32, 32, 14},
                        {"resnet20 64->64 3x3 7x7", 64, 64, 7},
                        {"resnet20 conv1 1->16 3x3 28x28", 1, 16, 28}};
  auto hbfp8 = formats::parse("hbfp8");
  std::printf(
      "layer,pass,batch,threads,bf16_conv_ms,bf16_convert_ms,int8_ms,"
      "int8_vs_bf16_conv,int8_vs_bf16_with_convert,int8_codes_ms,quantize_ms,encode_ms,"
      "codes_vs_values_with_operands\n");
  const int saved = numThreads();
  for (int threads : threadCounts) {
    setNumThreads(threads);
    for (const Item& it : items) {
      if (std::string(it.name).find(only) == std::string::npos) continue;
      Rng rng(5);
      const int64_t C = it.C, O = it.O, H = it.HW;
      const Shape xs{batch, C, H, H}, ys{batch, O, H, H}, ws{O, C, 3, 3};
      auto q = [&](const Tensor& t, int64_t axis) {
        formats::QuantizeArgs args;
        args.blockAxis = axis;
        return hbfp8->quantize(t, args);
      };
      // Forward: x and w blocked along C; backward-data: gy along O (axis 1), w along O (axis 0).
      Tensor x = q(Tensor::randn(xs, rng), 1), gy = q(Tensor::randn(ys, rng), 1);
      Tensor wRaw = Tensor::randn(ws, rng);
      Tensor wF = q(wRaw, 1), wD = q(wRaw, 0);
      const Conv2dOptions opts{.padding = 1};
      od::Bf16Operand xb = od::toBf16Exact(x), gb = od::toBf16Exact(gy);
      od::Bf16Operand wfb = od::toBf16Exact(wF), wdb = od::toBf16Exact(wD);
      Tensor y = Tensor::uninitialized(ys), gx = Tensor::uninitialized(xs);
      const int64_t T = 9;
      const od::BfpConvInput inF{.values = x.data<float>(), .N = batch, .C = C, .H = H, .W = H};
      const od::BfpConvWeight wtF{
          .values = wF.data<float>(), .O = O, .C = C, .k = 3, .sO = C * T, .sC = T, .sT = 1};
      const od::BfpConvInput inD{.values = gy.data<float>(), .N = batch, .C = O, .H = H, .W = H};
      const od::BfpConvWeight wtD{.values = wD.data<float>() + (T - 1),
                                  .O = C,
                                  .C = O,
                                  .k = 3,
                                  .sO = T,
                                  .sC = C * T,
                                  .sT = -1};
      // The codes route (what Conv2d passes): the operands as HBFP codes, packed from 1-byte
      // mantissas; and what produces each route's operands from the FP32 tensors (quantize for
      // the values, encode for the codes).
      auto e = [&](const Tensor& t, int64_t axis) {
        formats::QuantizeArgs args;
        args.blockAxis = axis;
        return hbfp8->encode(t, args);
      };
      Tensor xRaw = Tensor::randn(xs, rng), gRaw = Tensor::randn(ys, rng);
      const formats::Encoded xe = e(x, 1), ge = e(gy, 1), wfe = e(wF, 1), wde = e(wD, 0);
      const int64_t CB = (C + 63) / 64;
      const od::BfpConvInput inFc{.mantissas = xe.codes.data<int8_t>(),
                                  .exponents = xe.exponents.data<int16_t>(),
                                  .N = batch,
                                  .C = C,
                                  .H = H,
                                  .W = H};
      const od::BfpConvWeight wtFc{.mantissas = wfe.codes.data<int8_t>(),
                                   .exponents = wfe.exponents.data<int16_t>(),
                                   .O = O,
                                   .C = C,
                                   .k = 3,
                                   .sO = C * T,
                                   .sC = T,
                                   .sT = 1,
                                   .eO = CB * T,
                                   .eCB = T,
                                   .eT = 1};
      const od::BfpConvInput inDc{.mantissas = ge.codes.data<int8_t>(),
                                  .exponents = ge.exponents.data<int16_t>(),
                                  .N = batch,
                                  .C = O,
                                  .H = H,
                                  .W = H};
      const od::BfpConvWeight wtDc{.mantissas = wde.codes.data<int8_t>() + (T - 1),
                                   .exponents = wde.exponents.data<int16_t>() + (T - 1),
                                   .O = C,
                                   .C = O,
                                   .k = 3,
                                   .sO = T,
                                   .sC = C * T,
                                   .sT = -1,
                                   .eO = T,
                                   .eCB = C * T,
                                   .eT = -1};
      bool exact = true;
      auto t = interleaved(
          {[&] { (void)conv2dForward(xb.bits, wfb.bits, Tensor(), opts); },
           [&] { (void)od::toBf16Exact(x), (void)od::toBf16Exact(wF); },
           [&] { exact &= od::bfpConv2d(inF, wtF, 64, y.data<float>()); },
           [&] { exact &= od::bfpConv2d(inFc, wtFc, 64, y.data<float>()); },
           [&] { (void)q(xRaw, 1), (void)q(wRaw, 1); }, [&] { (void)e(xRaw, 1), (void)e(wRaw, 1); },
           [&] { (void)conv2dBackwardData(gb.bits, wdb.bits, xs, opts); },
           [&] { (void)od::toBf16Exact(gy), (void)od::toBf16Exact(wD); },
           [&] { exact &= od::bfpConv2d(inD, wtD, 64, gx.data<float>()); },
           [&] { exact &= od::bfpConv2d(inDc, wtDc, 64, gx.data<float>()); },
           [&] { (void)q(gRaw, 1), (void)q(wRaw, 0); },
           [&] { (void)e(gRaw, 1), (void)e(wRaw, 0); }},
          rounds);
      MANTISSA_CHECK(exact, "convBench: the int8 convolution declined");
      for (int pass = 0; pass < 2; ++pass) {
        const double* v = t.data() + 6 * pass;
        const double conv = v[0], cvt = v[1], i8 = v[2], i8c = v[3], qt = v[4], et = v[5];
        std::printf("%s,%s,%lld,%d,%.3f,%.3f,%.3f,%.2f,%.2f,%.3f,%.3f,%.3f,%.2f\n", it.name,
                    pass == 0 ? "forward" : "backward-data", static_cast<long long>(batch), threads,
                    1e3 * conv, 1e3 * cvt, 1e3 * i8, conv / i8, (conv + cvt) / i8, 1e3 * i8c,
                    1e3 * qt, 1e3 * et, (qt + i8) / (et + i8c));
      }
    }
  }
  setNumThreads(saved);
  std::printf("\n");
}

std::shared_ptr<nn::Model> makeModel(const std::string& name) {
  Rng rng(7);
  if (name == "alexnet-small") {
    return std::make_shared<nn::AlexNet>(
        nn::AlexNetOptions{.variant = nn::AlexNetVariant::Small, .inChannels = 1,
                           .numClasses = 10, .inputSize = 28},
        rng);
  }
  MANTISSA_CHECK(name.rfind("resnet", 0) == 0, "--models: resnetN or alexnet-small, got '", name,
                 "'");
  return std::make_shared<nn::CifarResNet>(
      nn::CifarResNetOptions{.depth = std::stoi(name.substr(6)), .inChannels = 1,
                             .numClasses = 10},
      rng);
}

void trainBench(const std::vector<std::string>& models, int64_t batch, int rounds) {
  std::printf("model,batch,threads,fp32_ms,hbfp8_path_off_ms,hbfp8_path_on_ms,"
              "hbfp8_on_vs_fp32,hbfp8_on_vs_off,int8_gemms_per_step,inexact\n");
  for (const std::string& name : models) {
    Rng dataRng(1);
    Tensor x = Tensor::randn({batch, 1, 28, 28}, dataRng);
    std::vector<int64_t> labels(static_cast<size_t>(batch));
    for (auto& l : labels) l = static_cast<int64_t>(dataRng.uniformInt(10));
    Tensor y = Tensor::fromInts(labels);
    struct Run {
      std::shared_ptr<nn::Model> net;
      std::unique_ptr<optim::Sgd> sgd;
    };
    auto makeRun = [&](const std::string& recipe) {
      Run r;
      r.net = makeModel(name);
      r.sgd = std::make_unique<optim::Sgd>(
          r.net->namedParameters(), optim::SgdOptions{.lr = 0.01, .momentum = 0.9, .weightDecay = 5e-4});
      train::applyPrecision(*r.net, r.sgd.get(), formats::PrecisionSchedule::parse(recipe), 0, 2, 1);
      return r;
    };
    Run fp32 = makeRun("fp32"), off = makeRun("hbfp8"), on = makeRun("hbfp8");
    Int8BfpStats stats;
    auto step = [&](Run& r, bool path) {
      setInt8BfpEnabled(path);
      resetInt8BfpStats();
      Tensor loss = crossEntropy(r.net->forward(x), y);
      r.sgd->zeroGrad();
      loss.backward();
      r.sgd->step();
      if (path) stats = int8BfpStats();
    };
    auto t = interleaved({[&] { step(fp32, false); }, [&] { step(off, false); },
                          [&] { step(on, true); }},
                         rounds);
    std::printf("%s,%lld,%d,%.1f,%.1f,%.1f,%.3f,%.3f,%lld,%lld\n", name.c_str(),
                static_cast<long long>(batch), numThreads(), 1e3 * t[0], 1e3 * t[1], 1e3 * t[2],
                t[0] / t[2], t[1] / t[2], static_cast<long long>(stats.int8),
                static_cast<long long>(stats.inexact));
  }
}

}  // namespace

int main(int argc, char** argv) {
  cxxopts::Options options("mantissa-bench-int8", "int8 block-FP GEMM path on vs off");
  // clang-format off
  options.add_options()
      ("models", "comma-separated: resnetN, alexnet-small", cxxopts::value<std::vector<std::string>>()->default_value("resnet20,alexnet-small"))
      ("batch", "batch size", cxxopts::value<int64_t>()->default_value("128"))
      ("rounds", "timed rounds (each variant once per round)", cxxopts::value<int>()->default_value("5"))
      ("threads", "threads (0 = all)", cxxopts::value<int>()->default_value("0"))
      ("cpu-time", "time with the process CPU clock (use with --threads 1 on a loaded machine)")
      ("no-kernel", "skip the kernel timings")
      ("layers", "only the layers whose name contains this", cxxopts::value<std::string>()->default_value(""))
      ("no-layers", "skip the single-layer timings")
      ("no-train", "skip the training-step timings")
      ("ceiling", "only the instruction ceiling (register-only loops, one thread)")
      ("conv", "only the direct convolutions (ResNet-20 3x3 layers; 1 and 2 threads unless --threads)")
      ("h,help", "this help");
  // clang-format on
  try {
    auto r = options.parse(argc, argv);
    if (r.count("help")) {
      std::cout << options.help() << '\n';
      return 0;
    }
    if (r["threads"].as<int>() > 0) setNumThreads(r["threads"].as<int>());
    if (!cpuFeatures().avx512Vnni) {
      std::cerr << "mantissa-bench-int8: this CPU has no AVX-512 VNNI; the path runs its "
                   "plain-loop kernel\n";
    }
    const int rounds = r["rounds"].as<int>();
    gCpuTime = r.count("cpu-time") > 0;
    if (r.count("ceiling")) {
      ceilingBench(rounds);
      return 0;
    }
    if (r.count("conv")) {
      const int th = r["threads"].as<int>();
      convBench(rounds, r["batch"].as<int64_t>(),
                th > 0 ? std::vector<int>{th} : std::vector<int>{1, 2},
                r["layers"].as<std::string>());
      return 0;
    }
    if (!r.count("no-kernel")) kernelBench(rounds);
    if (!r.count("no-layers")) layerBench(rounds, r["layers"].as<std::string>());
    if (!r.count("no-train")) {
      trainBench(r["models"].as<std::vector<std::string>>(), r["batch"].as<int64_t>(), rounds);
    }
    setInt8BfpEnabled(false);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "mantissa-bench-int8: error: " << e.what() << '\n';
    return 2;
  }
}
