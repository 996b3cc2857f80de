// mantissa-bench-int8-wgrad: the int8 block-FP weight gradient of a convolution
// (ops::detail::bfpConv2dBackwardWeights, packing from the operands' HBFP codes included, as
// Conv2d calls it) against the bf16 path it replaces: oneDNN's bf16 convolution backward-weights on
// the same hbfp8 operands as exact bf16, with the toBf16Exact conversions of both operands timed
// apart. Per ResNet-20 3x3 layer shape (stride 1, padding 1), 1 and 2 threads; the variants
// interleave round by round, medians over the rounds (docs/performance.md "int8 convolution kernel:
// weight gradient").
//   mantissa-bench-int8-wgrad [--batch 128] [--rounds 10] [--threads 0] [--bits 8] [--cpu-time]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include <cxxopts.hpp>

#include "core/CpuFeatures.h"
#include "core/Rng.h"
#include "core/ops/Conv.h"
#include "core/ops/detail/Bf16.h"
#include "core/ops/detail/BfpConvWeights.h"
#include "core/parallel/ParallelFor.h"
#include "formats/Format.h"

using namespace mantissa;
namespace od = mantissa::ops::detail;

namespace {

/// --cpu-time: CPU seconds of the process instead of wall-clock seconds (with --threads 1, the
/// work itself, which other jobs on a shared machine do not inflate).
bool gCpuTime = false;

double now() {
  if (!gCpuTime) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

/// Runs the variants round by round (one warm-up round first) and returns the median seconds.
std::vector<double> interleaved(const std::vector<std::function<void()>>& variants, int rounds) {
  std::vector<std::vector<double>> t(variants.size());
  for (const auto& v : variants) v();
  for (int r = 0; r < rounds; ++r) {
    for (size_t i = 0; i < variants.size(); ++i) {
      const double t0 = now();
      variants[i]();
      t[i].push_back(now() - t0);
    }
  }
  std::vector<double> out;
  for (auto& v : t) out.push_back(median(v));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  cxxopts::Options options("mantissa-bench-int8-wgrad",
                           "int8 block-FP conv weight gradient vs the bf16 path");
  // clang-format off
  options.add_options()
      ("batch", "batch size", cxxopts::value<int64_t>()->default_value("128"))
      ("rounds", "timed rounds (each variant once per round)", cxxopts::value<int>()->default_value("10"))
      ("threads", "threads (0 = 1 and 2)", cxxopts::value<int>()->default_value("0"))
      ("cpu-time", "time with the process CPU clock (use with --threads 1 on a loaded machine)")
      ("bits", "HBFP mantissa bits of both operands", cxxopts::value<int>()->default_value("8"))
      ("h,help", "this help");
  // clang-format on
  try {
    auto r = options.parse(argc, argv);
    if (r.count("help")) {
      std::cout << options.help() << '\n';
      return 0;
    }
    if (!cpuFeatures().avx512Vnni) {
      std::cerr << "mantissa-bench-int8-wgrad: this CPU has no AVX-512 VNNI; the kernel runs "
                   "its plain-loop version\n";
    }
    gCpuTime = r.count("cpu-time") > 0;
    const int64_t batch = r["batch"].as<int64_t>();
    const int rounds = r["rounds"].as<int>(), bits = r["bits"].as<int>();
    const int th = r["threads"].as<int>();
    const std::vector<int> threadCounts = th > 0 ? std::vector<int>{th} : std::vector<int>{1, 2};
    struct Item {
      const char* name;
      int64_t C, HW;
    };
    const Item items[] = {{"resnet20 16->16 3x3 28x28", 16, 28},
                          {"resnet20 32->32 3x3 14x14", 32, 14},
                          {"resnet20 64->64 3x3 7x7", 64, 7}};
    auto hbfp = formats::parse("hbfp" + std::to_string(bits));
    const std::vector<int64_t> nhw{0, 2, 3};
    std::printf(
        "layer,batch,bits,threads,bf16_wgrad_ms,bf16_convert_ms,int8_ms,int8_vs_bf16,"
        "int8_vs_bf16_with_convert\n");
    for (int threads : threadCounts) {
      setNumThreads(threads);
      for (const Item& it : items) {
        Rng rng(5);
        const int64_t C = it.C, H = it.HW;
        const Shape xs{batch, C, H, H}, ws{C, C, 3, 3};
        formats::QuantizeArgs args;
        args.blockAxes = nhw;  // the weight-gradient GEMM's reduction axes
        const formats::Encoded xe = hbfp->encode(Tensor::randn(xs, rng), args);
        const formats::Encoded ge = hbfp->encode(Tensor::randn(xs, rng), args);
        Tensor x = hbfp->decode(xe), gy = hbfp->decode(ge);
        const Conv2dOptions opts{.padding = 1};
        od::Bf16Operand xb = od::toBf16Exact(x), gb = od::toBf16Exact(gy);
        MANTISSA_CHECK(xb.exact() && gb.exact(), "bench: operands not exact in bf16");
        Tensor dw = Tensor::uninitialized(ws);
        const od::BfpWeightGradArgs a{.x = xe.codes.data<int8_t>(),
                                      .xExps = xe.exponents.data<int16_t>(),
                                      .gy = ge.codes.data<int8_t>(),
                                      .gyExps = ge.exponents.data<int16_t>(),
                                      .N = batch,
                                      .C = C,
                                      .O = C,
                                      .H = H,
                                      .W = H,
                                      .k = 3,
                                      .bitsX = bits,
                                      .bitsGy = bits};
        bool exact = true;
        auto t =
            interleaved({[&] { (void)conv2dBackwardWeights(xb.bits, gb.bits, ws, opts, false); },
                         [&] { (void)od::toBf16Exact(x), (void)od::toBf16Exact(gy); },
                         [&] { exact &= od::bfpConv2dBackwardWeights(a, 64, dw.data<float>()); }},
                        rounds);
        MANTISSA_CHECK(exact, "bench: the int8 weight gradient declined");
        std::printf("%s,%lld,%d,%d,%.3f,%.3f,%.3f,%.2f,%.2f\n", it.name,
                    static_cast<long long>(batch), bits, threads, 1e3 * t[0], 1e3 * t[1],
                    1e3 * t[2], t[0] / t[2], (t[0] + t[1]) / t[2]);
      }
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "mantissa-bench-int8-wgrad: error: " << e.what() << '\n';
    return 2;
  }
}
