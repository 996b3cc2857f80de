#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/Rng.h"
#include "core/Tensor.h"
#include "core/autograd/Autograd.h"
#include "core/ops/Conv.h"
#include "core/ops/Elementwise.h"
#include "core/ops/Loss.h"
#include "core/ops/Norm.h"
#include "core/ops/Pool.h"
#include "core/ops/Reduce.h"

// Uninitialised allocations: Tensor::uninitialized skips the zero fill, and the testing hook
// Storage::PoisonGuard fills such buffers (fresh or recycled from the block cache) with 0xFF
// bytes (f32 NaN). Ops that create outputs uninitialised must give the same bits with the hook
// on as with it off: an op that read a byte it had not written would produce NaN.

using namespace mantissa;

namespace {

// Above the block cache's 64 KiB threshold, so freed buffers are recycled.
constexpr int64_t kBig = 40000;

bool sameBits(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::bit_cast<uint32_t>(a[i]) != std::bit_cast<uint32_t>(b[i])) return false;
  }
  return true;
}

/// Every element's bits, and how many are NaN.
int64_t countNan(const Tensor& t) {
  int64_t n = 0;
  for (float v : t.toVector<float>()) n += std::isnan(v) ? 1 : 0;
  return n;
}

/// Outputs of the ops that allocate uninitialised storage (copies, conversions, elementwise,
/// losses and their gradients), flattened.
std::vector<float> runOps() {
  Rng rng(5);
  Tensor a = Tensor::randn({8, 50, 100}, rng), b = Tensor::randn({8, 50, 100}, rng);
  Tensor row = Tensor::randn({100}, rng);
  std::vector<float> all;
  auto keep = [&](const Tensor& t) {
    std::vector<float> v = t.toVector<float>();
    all.insert(all.end(), v.begin(), v.end());
  };
  keep(a.permute({2, 0, 1}).contiguous());
  keep(a.transpose(0, 2).clone());
  keep(Tensor::full({kBig}, 0.25));
  keep(Tensor::arange(kBig));
  keep(Tensor::fromVector(std::vector<float>(kBig, 3.0f), {kBig}));
  keep(a.to(DType::F64).to(DType::F32));
  keep(add(a, b));
  keep(mul(a, row));                       // broadcast
  keep(sub(a.transpose(1, 2), b.transpose(1, 2)));  // strided inputs
  keep(relu(a));
  keep(mul(a, 2.0f));
  Tensor logits = Tensor::randn({64, 10}, rng).requiresGrad();
  std::vector<int64_t> labels(64);
  for (auto& l : labels) l = static_cast<int64_t>(rng.uniformInt(10));
  Tensor loss = crossEntropy(logits, Tensor::fromInts(labels));
  loss.backward();
  keep(loss);
  keep(logits.grad());
  Tensor p = Tensor::randn({kBig}, rng).requiresGrad(), q = Tensor::randn({kBig}, rng);
  Tensor mse = mseLoss(p, q);
  mse.backward();
  keep(mse);
  keep(p.grad());
  Tensor s = Tensor::randn({16, 30}, rng).requiresGrad();
  Tensor bce = binaryCrossEntropyWithLogits(s, Tensor::rand({16, 30}, rng));
  bce.backward();
  keep(bce);
  keep(s.grad());
  keep(softmax(Tensor::randn({7, 300}, rng), 0));
  keep(logSoftmax(Tensor::randn({7, 300}, rng), 1));
  return all;
}

/// Outputs and gradients of the oneDNN-backed ops whose results (and reorder scratch buffers)
/// are allocated uninitialised: conv2d / convTranspose2d (blocked layouts, reorders), batch norm
/// in training and eval mode (with the fused relu and residual forms), LRN, pooling.
std::vector<float> runDnnlOps() {
  Rng rng(6);
  std::vector<float> all;
  auto keep = [&](const Tensor& t) {
    std::vector<float> v = t.toVector<float>();
    all.insert(all.end(), v.begin(), v.end());
  };
  Tensor x = Tensor::randn({6, 20, 13, 11}, rng).requiresGrad();
  Tensor w = Tensor::randn({24, 20, 3, 3}, rng).requiresGrad(), b = Tensor::randn({24}, rng);
  Tensor y = conv2d(x, w, b, {.stride = 2, .padding = 1});
  Tensor wt = Tensor::randn({24, 5, 4, 4}, rng).requiresGrad();
  Tensor yt = convTranspose2d(y, wt, Tensor(), {.stride = 2, .padding = 1});
  Tensor gamma = Tensor::randn({5}, rng).requiresGrad(), beta = Tensor::randn({5}, rng);
  Tensor rm = Tensor::zeros({5}), rv = Tensor::ones({5});
  Tensor z = batchNormRelu(yt, gamma, beta, rm, rv, {.training = true});
  Tensor m = maxPool2d(z, Pool2dOptions{.kernel = 3, .stride = 2, .padding = 1});
  Tensor a = avgPool2d(z, Pool2dOptions{.kernel = 2, .ceilMode = true});
  Tensor l = lrn(z, {.size = 3, .alpha = 0.5, .beta = 0.75, .k = 1});
  Tensor loss = add(add(sum(mul(m, m)), sum(a)), sum(l));
  loss.backward();
  for (const Tensor& t : {y, yt, z, m, a, l, x.grad(), w.grad(), wt.grad(), gamma.grad(), rm, rv})
    keep(t);
  autograd::NoGradGuard noGrad;
  Tensor e = yt.detach();
  keep(batchNorm(e, gamma, beta, rm, rv));
  keep(batchNormRelu(e, gamma, beta, rm, rv));
  keep(batchNormAddRelu(e, gamma, beta, rm, rv, Tensor::randn(e.shape(), rng)));
  return all;
}

}  // namespace

TEST_CASE("Storage: oneDNN-backed ops write every byte of their uninitialised outputs") {
  std::vector<float> clean = runDnnlOps();
  std::vector<float> poisoned;
  {
    Storage::PoisonGuard guard;
    poisoned = runDnnlOps();
  }
  int64_t nan = 0;
  for (float v : clean) nan += std::isnan(v) ? 1 : 0;
  CHECK(nan == 0);
  CHECK(sameBits(clean, poisoned));
}

TEST_CASE("Storage: uninitialized buffers are poisoned under the guard, zeroed ones stay zero") {
  Storage::PoisonGuard guard;
  CHECK(Storage::poisonUninitialized());
  for (int round = 0; round < 3; ++round) {  // later rounds get recycled blocks
    Tensor u = Tensor::uninitialized({kBig});
    CHECK(countNan(u) == kBig);
    Tensor codes = Tensor::uninitialized({kBig}, DType::I32);
    CHECK(codes.toVector<int32_t>() == std::vector<int32_t>(kBig, -1));
    Tensor z = Tensor::empty({kBig}), zz = Tensor::zeros({kBig});
    CHECK(z.toVector<float>() == std::vector<float>(kBig, 0.0f));
    CHECK(zz.toVector<float>() == std::vector<float>(kBig, 0.0f));
  }
}

TEST_CASE("Storage: the poison guard restores the previous setting") {
  CHECK_FALSE(Storage::poisonUninitialized());
  {
    Storage::PoisonGuard outer;
    {
      Storage::PoisonGuard inner;
      CHECK(Storage::poisonUninitialized());
    }
    CHECK(Storage::poisonUninitialized());
  }
  CHECK_FALSE(Storage::poisonUninitialized());
}

TEST_CASE("Storage: no op reads the uninitialised part of its output") {
  std::vector<float> clean = runOps();
  std::vector<float> poisoned;
  {
    Storage::PoisonGuard guard;
    poisoned = runOps();
  }
  int64_t nan = 0;
  for (float v : clean) nan += std::isnan(v) ? 1 : 0;
  CHECK(nan == 0);
  CHECK(sameBits(clean, poisoned));
}
