// mantissa-bench-adaptive: throughput of the adaptive formats (Flexpoint, HBFP, S2FP8) on a
// 16M-element NCHW tensor [16, 256, 64, 64], next to a parallel memcpy, on 1 and 2 threads
// (docs/formats.md "Speed of Flexpoint, HBFP and S2FP8"). Complements mantissa-bench-quantize
// with what it does not cover: HBFP blocked along C (stride H*W) as well as along the last
// axis, encode to packed codes, and the kernels alone (into a preallocated output, without the
// allocation and zeroing that Format::quantize's new tensor costs). Each timing is paired with
// a memcpy timed just before it; medians of times and of ratios are reported. CSV, then a
// Markdown table.
#include <cxxopts.hpp>
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>
#include <functional>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "core/Rng.h"
#include "core/parallel/ParallelFor.h"
#include "formats/Format.h"
#include "formats/detail/FlexpointKernels.h"
#include "formats/detail/HbfpKernels.h"
#include "formats/detail/KernelIsa.h"
#include "formats/detail/S2fp8Kernels.h"

using namespace mantissa;
namespace fd = mantissa::formats::detail;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

struct Entry {
  std::string name;
  std::function<void()> run;
  std::map<int, std::vector<double>> seconds, ratios;
};

}  // namespace

int main(int argc, char** argv) {
  cxxopts::Options options("mantissa-bench-adaptive",
                           "Flexpoint / HBFP / S2FP8 throughput against a memcpy");
  options.add_options()
      ("reps", "timed rounds (medians reported)", cxxopts::value<int>()->default_value("9"))
      ("threads", "thread counts", cxxopts::value<std::string>()->default_value("1,2"))
      ("isa", "kernel ISA: best, generic", cxxopts::value<std::string>()->default_value("best"))
      ("clock", "wall, or cpu (process CPU time: steadier on a shared machine, meaningful for "
                "one thread)", cxxopts::value<std::string>()->default_value("wall"))
      ("h,help", "help");
  cxxopts::ParseResult args;
  try {
    args = options.parse(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "mantissa-bench-adaptive: error: " << e.what() << "\n";
    return 2;
  }
  if (args.count("help")) {
    std::cout << options.help();
    return 0;
  }
  // Reuse freed 64 MiB blocks instead of a fresh mmap per tensor (as a training process would).
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  const int reps = args["reps"].as<int>();
  std::vector<int> threads;
  {
    std::stringstream ss(args["threads"].as<std::string>());
    for (std::string t; std::getline(ss, t, ',');) threads.push_back(std::stoi(t));
  }
  std::string isaName = args["isa"].as<std::string>();
  if (isaName != "best" && isaName != "generic") {
    std::cerr << "mantissa-bench-adaptive: error: --isa must be best or generic, got " << isaName << "\n";
    return 2;
  }
  const fd::KernelIsa isa = isaName == "generic" ? fd::KernelIsa::Generic : fd::bestKernelIsa();
  const std::string clockKind = args["clock"].as<std::string>();
  if (clockKind != "wall" && clockKind != "cpu") {
    std::cerr << "mantissa-bench-adaptive: error: --clock must be wall or cpu, got " << clockKind << "\n";
    return 2;
  }

  const Shape shape{16, 256, 64, 64};
  Rng rng(1);
  Tensor x = Tensor::randn(shape, rng);
  const int64_t n = x.numel();
  Tensor out = Tensor::empty(shape);
  std::vector<int16_t> codes16(static_cast<size_t>(n)), exps(static_cast<size_t>(n));
  std::vector<int8_t> codes8(static_cast<size_t>(n));
  const float* src = x.data<float>();
  float* dst = out.data<float>();
  std::cerr << "tensor " << toString(shape) << " (" << x.nbytes() / (1 << 20) << " MiB), kernels "
            << fd::kernelIsaName(isa) << ", " << clockKind << " clock\n";

  auto memcpyRun = [&] {
    parallelFor(0, n, 1 << 16, [&](int64_t b, int64_t e) {
      std::memcpy(dst + b, src + b, static_cast<size_t>(e - b) * sizeof(float));
    });
  };
  std::vector<Entry> entries;
  entries.push_back({"memcpy", memcpyRun, {}, {}});
  // Kernels alone, into preallocated buffers.
  const fd::HbfpLayout lastAxis{.outer = n / 64, .axis = 64, .inner = 1, .block = 64};
  const fd::HbfpLayout channels{.outer = 16, .axis = 256, .inner = 64 * 64, .block = 64};
  entries.push_back({"kernel flex16 (dec 13)", [&] { fd::flexQuantize(src, dst, n, 13, 16, isa); }, {}, {}});
  entries.push_back({"kernel flex16 codes", [&] { fd::flexQuantize(src, codes16.data(), n, 13, 16, isa); }, {}, {}});
  entries.push_back({"kernel hbfp8 last axis", [&] {
                       fd::hbfpQuantize(src, dst, static_cast<int16_t*>(nullptr), lastAxis, {.bits = 8}, isa);
                     }, {}, {}});
  entries.push_back({"kernel hbfp8 axis C", [&] {
                       fd::hbfpQuantize(src, dst, static_cast<int16_t*>(nullptr), channels, {.bits = 8}, isa);
                     }, {}, {}});
  entries.push_back({"kernel hbfp8 axis C codes", [&] {
                       fd::hbfpQuantize(src, codes8.data(), exps.data(), channels, {.bits = 8}, isa);
                     }, {}, {}});
  entries.push_back({"kernel hbfp8 stochastic last axis", [&] {
                       fd::hbfpQuantize(src, dst, static_cast<int16_t*>(nullptr), lastAxis,
                                        {.bits = 8, .rounding = formats::Rounding::Stochastic, .seed = 1}, isa);
                     }, {}, {}});
  entries.push_back({"kernel s2fp8 (scan + tables + map)", [&] {
                       fd::S2fp8Scan s = fd::s2fp8Scan(src, n, isa);
                       fd::S2fp8Tables t = fd::s2fp8Tables(15.0f / 4.0f, -1.0f);
                       fd::s2fp8Map(src, dst, nullptr, n, t, isa, s.nonFinite > 0);
                     }, {}, {}});
  // Whole Format calls (allocation of the result included).
  std::vector<std::unique_ptr<formats::FormatState>> states;
  uint64_t step = 0;
  struct Call {
    const char* spec;
    int64_t axis;
    bool encode;
  };
  for (Call c : {Call{"flex16+5", -1, false}, Call{"flex16+5", -1, true}, Call{"hbfp8", -1, false},
                 Call{"hbfp8", 1, false}, Call{"hbfp8", 1, true}, Call{"hbfp8:round=stochastic", 1, false},
                 Call{"s2fp8", -1, false}, Call{"s2fp8", -1, true}}) {
    formats::FormatPtr f = formats::parse(c.spec);
    states.push_back(f->makeState());
    formats::FormatState* st = states.back().get();
    std::string name = std::string(c.encode ? "encode " : "quantize ") + c.spec +
                       (f->isBlocked() ? (c.axis == 1 ? " axis C" : " last axis") : "");
    entries.push_back({name, [&, f, st, c] {
                         formats::QuantizeArgs qa{.blockAxis = c.axis, .seed = 1, .step = step++};
                         if (c.encode) {
                           formats::Encoded e = f->encode(x, qa, st);
                         } else {
                           Tensor q = f->quantize(x, qa, st);
                         }
                       }, {}, {}});
  }

  auto now = [&] {
    if (clockKind == "wall") {
      return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
    }
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
  };
  auto timed = [&](const std::function<void()>& fn) {
    double t0 = now();
    fn();
    return now() - t0;
  };
  std::cout << "operation,threads,seconds,elements_per_s,ratio_to_memcpy\n";
  for (int t : threads) {
    setNumThreads(t);
    for (Entry& e : entries) e.run();  // warm-up (Autoflex initialisation, first touch)
    for (int r = 0; r < reps; ++r) {
      for (size_t i = 1; i < entries.size(); ++i) {
        double base = timed(memcpyRun);
        double sec = timed(entries[i].run);
        entries[0].seconds[t].push_back(base);
        entries[i].seconds[t].push_back(sec);
        entries[i].ratios[t].push_back(sec / base);
      }
    }
    entries[0].ratios[t] = {1.0};
    for (const Entry& e : entries) {
      double s = median(e.seconds.at(t));
      std::cout << e.name << "," << t << "," << s << "," << n / s << "," << median(e.ratios.at(t)) << "\n";
    }
  }
  std::cout << "\n| operation |";
  for (int t : threads) std::cout << " " << t << " thr: Gelem/s | time / memcpy |";
  std::cout << "\n|---|";
  for (size_t i = 0; i < threads.size(); ++i) std::cout << "---:|---:|";
  std::cout << "\n" << std::fixed << std::setprecision(2);
  for (const Entry& e : entries) {
    std::cout << "| " << e.name << " |";
    for (int t : threads) {
      std::cout << " " << n / median(e.seconds.at(t)) / 1e9 << " | " << median(e.ratios.at(t)) << " |";
    }
    std::cout << "\n";
  }
  return 0;
}
