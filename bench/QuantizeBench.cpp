// mantissa-bench-quantize: quantize throughput of every format in the registry (elements/s,
// 1 and 2 threads) on a 16M-element tensor, next to a plain parallel memcpy of the same tensor,
// the physical limit of a read-once/write-once pass. Prints CSV, then a Markdown table
// (docs/formats.md "Speed"). Each timing follows one warm-up call, so adaptive formats (Autoflex,
// ffp8:auto) are timed in their steady state. quantize returns a new tensor, so its
// time includes allocating (and zeroing) the output; the `Tensor::empty` and `clone` rows show
// what that costs on its own. Blocked formats (HBFP) are also timed on the two layouts of a
// convolution's operands, [n / 12544, 16, 28, 28] (NCHW, the first stage of ResNet-20 in
// mantissa-bench-train): blocks along C (forward operands) and along N, H, W (the
// weight-gradient GEMM; runs of 784 values, so some blocks span two); the bf16 GEMM path's
// conversion of hbfp8 values (toBf16Exact), and hbfp8's fused quantizer for that path
// (quantizeBf16: quantize + toBf16Exact in one pass writing 2 bytes a value) on the three layouts.
#include <cxxopts.hpp>
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "core/CpuFeatures.h"
#include "core/Rng.h"
#include "core/ops/detail/Bf16.h"
#include "core/parallel/ParallelFor.h"
#include "formats/Format.h"
#include "formats/detail/Grid.h"
#include "formats/detail/HbfpKernels.h"

using namespace mantissa;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  cxxopts::Options options("mantissa-bench-quantize",
                           "Quantize throughput of every format against a memcpy");
  options.add_options()
      ("elements", "tensor size", cxxopts::value<int64_t>()->default_value("16777216"))
      ("reps", "timed rounds per measurement (medians reported)",
       cxxopts::value<int>()->default_value("11"))
      ("threads", "thread counts to measure", cxxopts::value<std::string>()->default_value("1,2"))
      ("formats", "comma-separated specs (default: every knownFormats() spelling plus the "
                  "stochastic-rounding variants)", cxxopts::value<std::string>())
      ("fresh-pages", "leave glibc's malloc defaults: every 64 MiB tensor is a new mmap "
                      "(page faults and kernel zeroing on each allocation)")
      ("h,help", "help");
  cxxopts::ParseResult args;
  try {
    args = options.parse(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "mantissa-bench-quantize: error: " << e.what() << "\n";
    return 2;
  }
  if (args.count("help")) {
    std::cout << options.help();
    return 0;
  }
  if (!args.count("fresh-pages")) {
    // Keep freed tensors in the heap so the next allocation reuses pages already mapped, as in
    // a long-running training process; glibc would otherwise mmap/munmap every block above
    // 32 MiB, and each quantize call would pay for faulting in and zeroing fresh pages.
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
  }
  const int64_t n = args["elements"].as<int64_t>();
  const int reps = args["reps"].as<int>();
  std::vector<int> threads;
  {
    std::stringstream ss(args["threads"].as<std::string>());
    for (std::string t; std::getline(ss, t, ',');) threads.push_back(std::stoi(t));
  }
  std::vector<std::string> specs;
  if (args.count("formats")) {
    std::stringstream ss(args["formats"].as<std::string>());
    // Specs contain commas themselves ("ffp8:e=4,f=3,b=7,s=1"), so split on ';' when present.
    char sep = ss.str().find(';') != std::string::npos ? ';' : ',';
    for (std::string s; std::getline(ss, s, sep);) specs.push_back(s);
  } else {
    for (const auto& [spec, what] : formats::knownFormats()) specs.push_back(spec);
    for (const char* s : {"bf16:round=stochastic", "e4m3:round=stochastic",
                          "hbfp8:round=stochastic"}) {
      specs.push_back(s);
    }
  }

  Rng rng(1);
  Tensor x = Tensor::randn({n / 4096, 4096}, rng);  // blocked formats block along the last axis
  Tensor copy = Tensor::empty(x.shape());
  std::cerr << "tensor " << toString(x.shape()) << " (" << x.nbytes() / (1 << 20)
            << " MiB), AVX-512 " << (cpuFeatures().avx512 ? "yes" : "no") << "\n";

  // Every measured operation, each timing paired with a memcpy timed just before it: on a
  // shared machine the load changes from second to second, and the ratio of two adjacent
  // timings is far steadier than either. Reported: median time and median ratio over rounds.
  struct Entry {
    std::string name;
    bool isFormat;
    std::function<void()> run;
    std::map<int, std::vector<double>> seconds, ratios;  // by thread count
    int64_t elements = 0;                                // when not n
  };
  std::vector<Entry> entries;
  const float* src = x.data<float>();
  float* dst = copy.data<float>();
  auto memcpyRun = [&] {
    parallelFor(0, n, 1 << 16, [&](int64_t b, int64_t e) {
      std::memcpy(dst + b, src + b, static_cast<size_t>(e - b) * sizeof(float));
    });
  };
  entries.push_back({"memcpy", false, memcpyRun, {}, {}});
  entries.push_back({"Tensor::empty", false, [&] { Tensor y = Tensor::empty(x.shape()); }, {}, {}});
  entries.push_back({"clone", false, [&] { Tensor y = x.clone(); }, {}, {}});
  // The first values of x (as warm in cache as x itself, whose memcpy each timing follows).
  const Tensor xConv =
      x.reshape({n}).slice(0, 0, n / 12544 * 12544).reshape({n / 12544, 16, 28, 28});
  static const int64_t kNhw[] = {0, 2, 3};
  std::vector<std::unique_ptr<formats::FormatState>> states;
  uint64_t step = 0;
  for (const auto& spec : specs) {
    formats::FormatPtr f = formats::parse(spec);
    states.push_back(f->makeState());
    formats::FormatState* st = states.back().get();
    entries.push_back({spec, true, [&, f, st] {
                         formats::QuantizeArgs qa{.blockAxis = -1, .seed = 1, .stream = 2,
                                                  .step = step++};
                         Tensor q = f->quantize(x, qa, st);
                       }, {}, {}});
    if (!f->isBlocked() || xConv.numel() == 0) continue;
    entries.push_back({spec + " C of NCHW", true, [&, f] {
                         formats::QuantizeArgs qa{.blockAxis = 1, .seed = 1, .stream = 2,
                                                  .step = step++};
                         Tensor q = f->quantize(xConv, qa);
                       }, {}, {}, xConv.numel()});
    entries.push_back({spec + " NHW of NCHW", true, [&, f] {
                         formats::QuantizeArgs qa{.blockAxes = kNhw, .seed = 1, .stream = 2,
                                                  .step = step++};
                         Tensor q = f->quantize(xConv, qa);
                       }, {}, {}, xConv.numel()});
  }
  // The bf16 GEMM path's conversion of quantized values (exact: hbfp8 values are bf16 values),
  // and the fused quantizer that replaces quantize + toBf16Exact there (Format::quantizeBf16).
  const formats::FormatPtr hbfp8 = formats::parse("hbfp8");
  const Tensor xHbfp8 = hbfp8->quantize(x, {});
  entries.push_back({"toBf16Exact(hbfp8 values)", false,
                     [&] { ops::detail::Bf16Operand b = ops::detail::toBf16Exact(xHbfp8); },
                     {}, {}});
  entries.push_back({"hbfp8 quantizeBf16",
                     true,
                     [&] { formats::Bf16Quantized b = hbfp8->quantizeBf16(x, {.step = step++}); },
                     {},
                     {}});
  if (xConv.numel() > 0) {
    entries.push_back({"hbfp8 quantizeBf16 C of NCHW",
                       true,
                       [&] {
                         formats::Bf16Quantized b =
                             hbfp8->quantizeBf16(xConv, {.blockAxis = 1, .step = step++});
                       },
                       {},
                       {},
                       xConv.numel()});
    entries.push_back({"hbfp8 quantizeBf16 NHW of NCHW",
                       true,
                       [&] {
                         formats::Bf16Quantized b =
                             hbfp8->quantizeBf16(xConv, {.blockAxes = kNhw, .step = step++});
                       },
                       {},
                       {},
                       xConv.numel()});
  }
  // hbfp8's encode (I8 codes + I16 block exponents: the int8 convolution operands) on the
  // layouts above and on 32x32 images ([n / 16384, 16, 32, 32]: runs of 1024, every N, H, W
  // block inside one run, as in ResNet-20 on CIFAR).
  const Tensor xConv32 =
      x.reshape({n}).slice(0, 0, n / 16384 * 16384).reshape({n / 16384, 16, 32, 32});
  if (xConv.numel() > 0) {
    entries.push_back({"hbfp8 encode C of NCHW",
                       true,
                       [&] { formats::Encoded e = hbfp8->encode(xConv, {.blockAxis = 1}); },
                       {},
                       {},
                       xConv.numel()});
    entries.push_back({"hbfp8 encode NHW of NCHW",
                       true,
                       [&] { formats::Encoded e = hbfp8->encode(xConv, {.blockAxes = kNhw}); },
                       {},
                       {},
                       xConv.numel()});
  }
  if (xConv32.numel() > 0) {
    entries.push_back({"hbfp8 encode C of NCHW 32x32",
                       true,
                       [&] { formats::Encoded e = hbfp8->encode(xConv32, {.blockAxis = 1}); },
                       {},
                       {},
                       xConv32.numel()});
    entries.push_back({"hbfp8 encode NHW of NCHW 32x32",
                       true,
                       [&] { formats::Encoded e = hbfp8->encode(xConv32, {.blockAxes = kNhw}); },
                       {},
                       {},
                       xConv32.numel()});
  }
  // The int8 encode kernels alone (into buffers allocated once) on the 32x32 layouts.
  const int64_t n32 = xConv32.numel(), img32 = n32 / 16384;
  std::vector<int8_t> codes32(static_cast<size_t>(n32));
  std::vector<int16_t> exps32(static_cast<size_t>(n32));
  if (n32 > 0) {
    entries.push_back(
        {"hbfp8 encode kernel C of NCHW 32x32",
         true,
         [&] {
           formats::detail::HbfpLayout L{.outer = img32, .axis = 16, .inner = 1024, .block = 64};
           formats::detail::hbfpQuantize(xConv32.data<float>(), codes32.data(), exps32.data(), L,
                                         {}, formats::detail::bestKernelIsa());
         },
         {},
         {},
         n32});
    entries.push_back({"hbfp8 encode kernel NHW of NCHW 32x32",
                       true,
                       [&] {
                         formats::detail::HbfpGatherLayout L{.rows = 16,
                                                             .rowStride = 1024,
                                                             .segments = img32,
                                                             .segment = 1024,
                                                             .segmentStride = 16 * 1024,
                                                             .block = 64};
                         formats::detail::hbfpQuantizeGathered(xConv32.data<float>(),
                                                               codes32.data(), exps32.data(), L, {},
                                                               formats::detail::bestKernelIsa());
                       },
                       {},
                       {},
                       n32});
  }
  auto timed = [](const std::function<void()>& fn) {
    auto t0 = std::chrono::steady_clock::now();
    fn();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };

  std::cout << "format,threads,seconds,elements_per_s,ratio_to_memcpy\n";
  for (int t : threads) {
    setNumThreads(t);
    for (Entry& e : entries) e.run();  // warm-up: first touch, calibration of adaptive formats
    for (int r = 0; r < reps; ++r) {
      for (size_t i = 1; i < entries.size(); ++i) {
        double base = timed(memcpyRun);
        double sec = timed(entries[i].run);
        entries[0].seconds[t].push_back(base);
        entries[i].seconds[t].push_back(sec);
        const int64_t count = entries[i].elements ? entries[i].elements : n;
        entries[i].ratios[t].push_back(sec / base * static_cast<double>(n) / count);  // per value
      }
    }
    entries[0].ratios[t] = {1.0};
    for (const Entry& e : entries) {
      double sec = median(e.seconds.at(t));
      const int64_t count = e.elements ? e.elements : n;
      std::cout << e.name << "," << t << "," << sec << "," << count / sec << ","
                << median(e.ratios.at(t)) << "\n";
    }
  }

  std::cout << "\n| operation |";
  for (int t : threads) std::cout << " " << t << " thr: Gelem/s | time / memcpy |";
  std::cout << "\n|---|";
  for (size_t i = 0; i < threads.size(); ++i) std::cout << "---:|---:|";
  std::cout << "\n";
  for (const Entry& e : entries) {
    std::cout << "| " << (e.isFormat ? "`" + e.name + "`" : e.name) << " |";
    for (int t : threads) {
      const int64_t count = e.elements ? e.elements : n;
      std::cout << " " << std::fixed << std::setprecision(2)
                << count / median(e.seconds.at(t)) / 1e9 << " | " << median(e.ratios.at(t)) << " |";
    }
    std::cout << "\n";
  }
  return 0;
}
