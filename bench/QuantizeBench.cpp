// mantissa-bench-quantize: quantize throughput of every format in the registry (elements/s,
// 1 and 2 threads) on a 16M-element tensor, next to a plain parallel memcpy of the same tensor,
// the physical limit of a read-once/write-once pass. Prints CSV, then a Markdown table
// (docs/formats.md "Speed"). Timings are the minimum of --reps runs after one warm-up call (the
// minimum is the least disturbed by other processes on a shared machine), so adaptive formats
// (Autoflex, ffp8:auto) are timed in their steady state. quantize returns a new tensor, so its
// time includes allocating (and zeroing) the output; the `Tensor::empty` and `clone` rows show
// what that costs on its own.
#include <cxxopts.hpp>
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "core/Rng.h"
#include "core/parallel/ParallelFor.h"
#include "formats/Format.h"
#include "formats/detail/Grid.h"

using namespace mantissa;

namespace {


template <class F>
double timeIt(int reps, const F& fn) {
  fn();  // warm-up: first-touch, calibration of adaptive formats
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return *std::min_element(t.begin(), t.end());
}

struct Row {
  std::string spec;
  std::map<int, double> seconds;  // by thread count
};

}  // namespace

int main(int argc, char** argv) {
  cxxopts::Options options("mantissa-bench-quantize",
                           "Quantize throughput of every format against a memcpy");
  options.add_options()
      ("elements", "tensor size", cxxopts::value<int64_t>()->default_value("16777216"))
      ("reps", "timed repetitions per measurement (minimum reported)",
       cxxopts::value<int>()->default_value("9"))
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
            << " MiB), AVX-512 " << (formats::detail::cpuHasAvx512() ? "yes" : "no") << "\n";

  std::map<int, double> copySeconds;
  std::vector<Row> rows, baselines = {{"Tensor::empty", {}}, {"clone", {}}};
  for (const auto& s : specs) rows.push_back({s, {}});
  std::cout << "format,threads,seconds,elements_per_s,ratio_to_copy\n";
  for (int t : threads) {
    setNumThreads(t);
    const float* src = x.data<float>();
    float* dst = copy.data<float>();
    copySeconds[t] = timeIt(reps, [&] {
      parallelFor(0, n, 1 << 16, [&](int64_t b, int64_t e) {
        std::memcpy(dst + b, src + b, static_cast<size_t>(e - b) * sizeof(float));
      });
    });
    std::cout << "memcpy," << t << "," << copySeconds[t] << "," << n / copySeconds[t] << ",1\n";
    for (Row& row : baselines) {
      row.seconds[t] = timeIt(reps, [&] {
        Tensor y = row.spec == "Tensor::empty" ? Tensor::empty(x.shape()) : x.clone();
      });
      std::cout << row.spec << "," << t << "," << row.seconds[t] << "," << n / row.seconds[t]
                << "," << row.seconds[t] / copySeconds[t] << "\n";
    }
    for (Row& row : rows) {
      formats::FormatPtr f = formats::parse(row.spec);
      auto state = f->makeState();
      uint64_t step = 0;
      double sec = timeIt(reps, [&] {
        formats::QuantizeArgs qa{.blockAxis = -1, .seed = 1, .stream = 2, .step = step++};
        Tensor q = f->quantize(x, qa, state.get());
      });
      row.seconds[t] = sec;
      std::cout << row.spec << "," << t << "," << sec << "," << n / sec << ","
                << sec / copySeconds[t] << "\n";
    }
  }

  std::cout << "\n| format |";
  for (int t : threads) std::cout << " " << t << " thr: Gelem/s | time / copy |";
  std::cout << "\n|---|";
  for (size_t i = 0; i < threads.size(); ++i) std::cout << "---:|---:|";
  std::cout << "\n| memcpy |";
  for (int t : threads) {
    std::cout << " " << std::fixed << std::setprecision(2) << n / copySeconds[t] / 1e9 << " | 1.00 |";
  }
  std::cout << "\n";
  for (const Row& row : baselines) {
    std::cout << "| " << row.spec << " |";
    for (int t : threads) {
      std::cout << " " << std::fixed << std::setprecision(2) << n / row.seconds.at(t) / 1e9 << " | "
                << row.seconds.at(t) / copySeconds[t] << " |";
    }
    std::cout << "\n";
  }
  for (const Row& row : rows) {
    std::cout << "| `" << row.spec << "` |";
    for (int t : threads) {
      std::cout << " " << std::fixed << std::setprecision(2) << n / row.seconds.at(t) / 1e9 << " | "
                << row.seconds.at(t) / copySeconds[t] << " |";
    }
    std::cout << "\n";
  }
  return 0;
}
