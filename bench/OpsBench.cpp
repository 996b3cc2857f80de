// oneDNN-backed op throughput: Mantissa's ops against the same shapes run through raw oneDNN
// primitives in one process, so the ratio is measured under the same load. Prints CSV.
//
//   mantissa-bench-ops [--threads 2] [--iters 5] [--batch 128]
//
// Workloads: a 3x3 convolution (batch 128, 64 -> 64 channels, 32x32, padding 1, bias) and a
// 1024x1024x1024 matmul, each as forward, backward-data and backward-weights GEMMs.
// Implementations:
//   mantissa-autograd  conv2d / matmul, then backward() through the autograd engine
//   mantissa-kernels   the public raw kernels (conv2dForward, conv2dBackwardData, ...)
//   onednn-blocked     raw primitives on format_tag::any layouts with every operand already in
//                      the chosen (blocked) layout: the best oneDNN does, no reorders, no
//                      allocation
//   onednn-plain       raw primitives on plain NCHW/OIHW layouts (the alternative Mantissa
//                      could have used instead of reordering; conv only)
// Each figure is the median of --iters timed iterations after one warm-up iteration.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include <cxxopts.hpp>
#include <dnnl.hpp>

#include "core/Rng.h"
#include "core/ops/Conv.h"
#include "core/ops/Linalg.h"
#include "core/parallel/ParallelFor.h"

using namespace mantissa;
using Clock = std::chrono::steady_clock;
using dnnl::memory;

namespace {

double seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

/// Per-pass times of one implementation: forward, backward data, backward weights (seconds).
struct Times {
  double fwd = 0, bwdData = 0, bwdWeights = 0;
  double total() const { return fwd + bwdData + bwdWeights; }
};

/// Median over iterations of each pass, after one warm-up call.
Times measure(int iters, const std::function<Times()>& once) {
  once();
  std::vector<Times> runs;
  for (int i = 0; i < iters; ++i) runs.push_back(once());
  auto median = [&](double Times::*field) {
    std::vector<double> v;
    for (const Times& t : runs) v.push_back(t.*field);
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  Times m{median(&Times::fwd), median(&Times::bwdData), median(&Times::bwdWeights)};
  return m;
}

/// A buffer in a oneDNN layout, filled from a plain f32 source through a reorder.
memory filled(const dnnl::engine& eng, dnnl::stream& s, const memory::desc& want,
              const memory::desc& plain, const float* src) {
  memory out(want, eng);
  memory in(plain, eng, const_cast<float*>(src));
  dnnl::reorder(in, out).execute(s, in, out);
  s.wait();
  return out;
}

/// Raw oneDNN convolution, forward + backward data + backward weights (with bias), on layouts
/// chosen by oneDNN (`tag` any) or fixed plain ones.
Times rawConv(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& g, memory::format_tag tag,
              int iters, std::string* impl) {
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream s(eng);
  const auto f32 = memory::data_type::f32;
  auto dims = [](const Tensor& t) { return memory::dims(t.shape().begin(), t.shape().end()); };
  const bool any = tag == memory::format_tag::any;
  memory::desc xP(dims(x), f32, memory::format_tag::nchw), wP(dims(w), f32, memory::format_tag::oihw),
      yP(dims(g), f32, memory::format_tag::nchw), bP(dims(b), f32, memory::format_tag::x);
  memory::desc xA = any ? memory::desc(dims(x), f32, tag) : xP, wA = any ? memory::desc(dims(w), f32, tag) : wP,
               yA = any ? memory::desc(dims(g), f32, tag) : yP;
  dnnl::primitive_attr attr;
  attr.set_fpmath_mode(dnnl::fpmath_mode::strict);
  memory::dims st{1, 1}, pad{1, 1};
  const auto alg = dnnl::algorithm::convolution_direct;
  dnnl::convolution_forward::primitive_desc fpd(
      {dnnl::prop_kind::forward_training, alg, xA, wA, bP, yA, st, pad, pad}, attr, eng);
  dnnl::convolution_backward_data::primitive_desc dpd({alg, xA, wA, yA, st, pad, pad}, attr, eng, fpd);
  dnnl::convolution_backward_weights::primitive_desc wpd({alg, xA, wA, bP, yA, st, pad, pad}, attr,
                                                         eng, fpd);
  *impl = std::string(fpd.impl_info_str()) + "/" + dpd.impl_info_str() + "/" + wpd.impl_info_str();
  dnnl::convolution_forward fwd(fpd);
  dnnl::convolution_backward_data bwdD(dpd);
  dnnl::convolution_backward_weights bwdW(wpd);
  memory mx = filled(eng, s, fpd.src_desc(), xP, x.data<float>());
  memory mw = filled(eng, s, fpd.weights_desc(), wP, w.data<float>());
  memory mb(bP, eng, const_cast<float*>(b.data<float>()));
  memory my(fpd.dst_desc(), eng);
  memory mgy = filled(eng, s, dpd.diff_dst_desc(), yP, g.data<float>());
  memory mwd = filled(eng, s, dpd.weights_desc(), wP, w.data<float>());
  memory mgx(dpd.diff_src_desc(), eng);
  memory mxw = filled(eng, s, wpd.src_desc(), xP, x.data<float>());
  memory mgyw = filled(eng, s, wpd.diff_dst_desc(), yP, g.data<float>());
  memory mgw(wpd.diff_weights_desc(), eng), mgb(bP, eng);
  return measure(iters, [&] {
    Times t;
    auto t0 = Clock::now();
    fwd.execute(s, {{DNNL_ARG_SRC, mx}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_BIAS, mb}, {DNNL_ARG_DST, my}});
    s.wait();
    auto t1 = Clock::now();
    bwdD.execute(s, {{DNNL_ARG_DIFF_DST, mgy}, {DNNL_ARG_WEIGHTS, mwd}, {DNNL_ARG_DIFF_SRC, mgx}});
    s.wait();
    auto t2 = Clock::now();
    bwdW.execute(s, {{DNNL_ARG_SRC, mxw}, {DNNL_ARG_DIFF_DST, mgyw}, {DNNL_ARG_DIFF_WEIGHTS, mgw},
                     {DNNL_ARG_DIFF_BIAS, mgb}});
    s.wait();
    auto t3 = Clock::now();
    return Times{seconds(t0, t1), seconds(t1, t2), seconds(t2, t3)};
  });
}

/// Raw oneDNN matmul: C = A·B, dA = dC·Bᵀ, dB = Aᵀ·dC with the transposes as strides.
Times rawMatmul(const Tensor& a, const Tensor& b, const Tensor& g, int iters, std::string* impl) {
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream s(eng);
  const auto f32 = memory::data_type::f32;
  const int64_t n = a.size(0);
  memory::dims d{n, n};
  memory::desc rowMajor(d, f32, memory::format_tag::ab), colMajor(d, f32, memory::format_tag::ba);
  dnnl::primitive_attr attr;
  attr.set_fpmath_mode(dnnl::fpmath_mode::strict);
  dnnl::matmul::primitive_desc fpd({rowMajor, rowMajor, rowMajor}, attr, eng);
  dnnl::matmul::primitive_desc dpd({rowMajor, colMajor, rowMajor}, attr, eng);  // dC · Bᵀ
  dnnl::matmul::primitive_desc wpd({colMajor, rowMajor, rowMajor}, attr, eng);  // Aᵀ · dC
  *impl = fpd.impl_info_str();
  dnnl::matmul fwd(fpd), bwdD(dpd), bwdW(wpd);
  auto wrap = [&](const Tensor& t, const memory::desc& md) {
    return memory(md, eng, const_cast<float*>(t.data<float>()));
  };
  Tensor c = Tensor::empty({n, n}), ga = Tensor::empty({n, n}), gb = Tensor::empty({n, n});
  return measure(iters, [&] {
    Times t;
    auto t0 = Clock::now();
    fwd.execute(s, {{DNNL_ARG_SRC, wrap(a, rowMajor)}, {DNNL_ARG_WEIGHTS, wrap(b, rowMajor)},
                    {DNNL_ARG_DST, wrap(c, rowMajor)}});
    s.wait();
    auto t1 = Clock::now();
    bwdD.execute(s, {{DNNL_ARG_SRC, wrap(g, rowMajor)}, {DNNL_ARG_WEIGHTS, wrap(b, colMajor)},
                     {DNNL_ARG_DST, wrap(ga, rowMajor)}});
    s.wait();
    auto t2 = Clock::now();
    bwdW.execute(s, {{DNNL_ARG_SRC, wrap(a, colMajor)}, {DNNL_ARG_WEIGHTS, wrap(g, rowMajor)},
                     {DNNL_ARG_DST, wrap(gb, rowMajor)}});
    s.wait();
    auto t3 = Clock::now();
    return Times{seconds(t0, t1), seconds(t1, t2), seconds(t2, t3)};
  });
}

void row(const char* workload, const char* impl, int threads, const Times& t, double gflopPerPass,
         const std::string& detail) {
  auto rate = [&](double secs, double passes) { return gflopPerPass * passes / secs; };
  std::printf("%s,%s,%d,%.2f,%.2f,%.2f,%.2f,%.1f,%s\n", workload, impl, threads, t.fwd * 1e3,
              t.bwdData * 1e3, t.bwdWeights * 1e3, t.total() * 1e3, rate(t.total(), 3),
              detail.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  cxxopts::Options cli("mantissa-bench-ops", "oneDNN-backed ops against raw oneDNN (CSV)");
  cli.add_options()("threads", "OpenMP threads", cxxopts::value<int>()->default_value("2"))(
      "iters", "timed iterations (median reported)", cxxopts::value<int>()->default_value("5"))(
      "batch", "conv batch size", cxxopts::value<int64_t>()->default_value("128"))(
      "n", "matmul size", cxxopts::value<int64_t>()->default_value("1024"))("h,help", "usage");
  auto args = cli.parse(argc, argv);
  if (args.count("help")) {
    std::printf("%s\n", cli.help().c_str());
    return 0;
  }
  const int threads = args["threads"].as<int>(), iters = args["iters"].as<int>();
  const int64_t batch = args["batch"].as<int64_t>(), n = args["n"].as<int64_t>();
  setNumThreads(threads);
  Rng rng(1);

  std::printf("workload,impl,threads,fwd_ms,bwd_data_ms,bwd_weights_ms,total_ms,gflops,detail\n");

  // ---- 3x3 convolution ---------------------------------------------------------------------
  const int64_t c = 64, hw = 32;
  Tensor x = Tensor::randn({batch, c, hw, hw}, rng), w = Tensor::randn({c, c, 3, 3}, rng, 0.f, 0.05f);
  Tensor b = Tensor::randn({c}, rng), g = Tensor::randn({batch, c, hw, hw}, rng);
  const Conv2dOptions opts{.padding = 1};
  const double convGflop = 2.0 * batch * c * c * 9 * hw * hw / 1e9;
  const std::string convName = "conv3x3 " + std::to_string(batch) + "x64x32x32";

  Times autogradConv = measure(iters, [&] {
    Tensor xr = x.detach().requiresGrad(), wr = w.detach().requiresGrad(), br = b.detach().requiresGrad();
    auto t0 = Clock::now();
    Tensor y = conv2d(xr, wr, br, opts);
    auto t1 = Clock::now();
    y.backward({.grad = g});
    auto t2 = Clock::now();
    // The backward runs both GEMMs in one closure: report it as data + weights together.
    return Times{seconds(t0, t1), seconds(t1, t2), 0};
  });
  Times kernelsConv = measure(iters, [&] {
    auto t0 = Clock::now();
    Tensor y = conv2dForward(x, w, b, opts);
    auto t1 = Clock::now();
    Tensor gx = conv2dBackwardData(g, w, x.shape(), opts);
    auto t2 = Clock::now();
    WeightGrads gw = conv2dBackwardWeights(x, g, w.shape(), opts, true);
    auto t3 = Clock::now();
    return Times{seconds(t0, t1), seconds(t1, t2), seconds(t2, t3)};
  });
  std::string blockedImpl, plainImpl;
  Times blockedConv = rawConv(x, w, b, g, memory::format_tag::any, iters, &blockedImpl);
  Times plainConv = rawConv(x, w, b, g, memory::format_tag::nchw, iters, &plainImpl);
  row(convName.c_str(), "mantissa-autograd", threads, autogradConv, convGflop, "backward = data+weights");
  row(convName.c_str(), "mantissa-kernels", threads, kernelsConv, convGflop, "");
  row(convName.c_str(), "onednn-blocked", threads, blockedConv, convGflop, blockedImpl);
  row(convName.c_str(), "onednn-plain", threads, plainConv, convGflop, plainImpl);

  // ---- matmul ------------------------------------------------------------------------------
  Tensor ma = Tensor::randn({n, n}, rng), mb = Tensor::randn({n, n}, rng), mg = Tensor::randn({n, n}, rng);
  const double mmGflop = 2.0 * double(n) * n * n / 1e9;
  const std::string mmName = "matmul " + std::to_string(n) + "^3";
  Times autogradMm = measure(iters, [&] {
    Tensor ar = ma.detach().requiresGrad(), br = mb.detach().requiresGrad();
    auto t0 = Clock::now();
    Tensor y = matmul(ar, br);
    auto t1 = Clock::now();
    y.backward({.grad = mg});
    auto t2 = Clock::now();
    return Times{seconds(t0, t1), seconds(t1, t2), 0};
  });
  Times kernelsMm = measure(iters, [&] {
    auto t0 = Clock::now();
    Tensor y = gemm(ma, mb);
    auto t1 = Clock::now();
    Tensor ga = gemm(mg, mb.transpose(0, 1));
    auto t2 = Clock::now();
    Tensor gb = gemm(ma.transpose(0, 1), mg);
    auto t3 = Clock::now();
    return Times{seconds(t0, t1), seconds(t1, t2), seconds(t2, t3)};
  });
  std::string mmImpl;
  Times rawMm = rawMatmul(ma, mb, mg, iters, &mmImpl);
  row(mmName.c_str(), "mantissa-autograd", threads, autogradMm, mmGflop, "backward = data+weights");
  row(mmName.c_str(), "mantissa-kernels", threads, kernelsMm, mmGflop, "");
  row(mmName.c_str(), "onednn-blocked", threads, rawMm, mmGflop, mmImpl);

  std::fflush(stdout);
  std::fprintf(stderr, "conv fwd+bwd: mantissa-autograd / onednn-blocked throughput = %.2f, "
               "mantissa-kernels = %.2f; matmul: %.2f / %.2f\n",
               blockedConv.total() / autogradConv.total(), blockedConv.total() / kernelsConv.total(),
               rawMm.total() / autogradMm.total(), rawMm.total() / kernelsMm.total());
  return 0;
}
