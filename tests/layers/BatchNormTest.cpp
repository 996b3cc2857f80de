#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>

#include "core/Rng.h"
#include "core/autograd/Autograd.h"
#include "core/ops/Elementwise.h"
#include "core/ops/Loss.h"
#include "core/ops/Norm.h"
#include "core/ops/Reduce.h"
#include "layers/BatchNorm1d.h"
#include "layers/BatchNorm2d.h"
#include "layers/models/CifarResNet.h"
#include "layers/models/Dcgan.h"
#include "optim/Sgd.h"
#include "tests/layers/LayerTestUtil.h"

using namespace mantissa;
namespace nn = mantissa::nn;
using mantissa::testing::checkModuleGrads;
using mantissa::testing::maxAbsDiff;

namespace {

// Per-channel mean and variance over N, H, W of an [N, C, H, W] tensor, in double.
struct Stats {
  std::vector<double> mean, biasedVar, unbiasedVar;
};
Stats channelStats(const Tensor& x) {
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  Stats s;
  std::vector<float> v = x.contiguous().toVector();
  for (int64_t c = 0; c < C; ++c) {
    double sum = 0, sq = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < HW; ++i) sum += v[(n * C + c) * HW + i];
    const double m = sum / double(N * HW);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < HW; ++i) sq += std::pow(v[(n * C + c) * HW + i] - m, 2);
    s.mean.push_back(m);
    s.biasedVar.push_back(sq / double(N * HW));
    s.unbiasedVar.push_back(sq / double(N * HW - 1));
  }
  return s;
}

}  // namespace

TEST_CASE("BatchNorm2d: PyTorch state_dict names and initial values") {
  nn::BatchNorm2d bn(3);
  std::vector<std::string> params, buffers;
  for (auto& [n, t] : bn.namedParameters()) params.push_back(n);
  for (auto& [n, t] : bn.namedBuffers()) buffers.push_back(n);
  CHECK(params == std::vector<std::string>{"weight", "bias"});
  CHECK(buffers == std::vector<std::string>{"running_mean", "running_var", "num_batches_tracked"});
  CHECK(bn.weight().toVector() == std::vector<float>{1, 1, 1});
  CHECK(bn.bias().toVector() == std::vector<float>{0, 0, 0});
  CHECK(bn.runningMean().toVector() == std::vector<float>{0, 0, 0});
  CHECK(bn.runningVar().toVector() == std::vector<float>{1, 1, 1});
  CHECK(bn.namedBuffers()[2].second.dtype() == DType::I64);
  CHECK(bn.namedBuffers()[2].second.dim() == 0);
  CHECK(bn.describe() == "BatchNorm2d(3, eps=1e-05, momentum=0.1)\n");
  CHECK(bn.namedQuantPoints().empty());  // FP32 under every recipe
  nn::BatchNorm1d plain(4, {.affine = false, .trackRunningStats = false});
  CHECK(plain.namedParameters().empty());
  CHECK(plain.namedBuffers().empty());
  CHECK_THROWS_WITH_AS(bn.forward(Tensor::zeros({2, 4, 3, 3})),
                       doctest::Contains("BatchNorm2d(3): input of shape [2, 4, 3, 3]"), Error);
}

TEST_CASE("BatchNorm2d: training uses batch statistics and updates the running ones") {
  Rng rng(1);
  nn::BatchNorm2d bn(2);
  bn.setTensor("weight", Tensor::fromVector({1.5f, -0.5f}));
  bn.setTensor("bias", Tensor::fromVector({0.25f, 2.f}));
  Tensor x1 = Tensor::randn({4, 2, 3, 3}, rng, 1.f, 2.f);
  Tensor x2 = Tensor::randn({4, 2, 3, 3}, rng, -1.f, 0.5f);
  Stats s1 = channelStats(x1), s2 = channelStats(x2);
  Tensor y = bn.forward(x1);
  const float w[2] = {1.5f, -0.5f}, b[2] = {0.25f, 2.f};
  Tensor ref = Tensor::empty(x1.shape());
  for (int64_t n = 0; n < 4; ++n)
    for (int64_t c = 0; c < 2; ++c)
      for (int64_t i = 0; i < 3; ++i)
        for (int64_t j = 0; j < 3; ++j)
          ref.data<float>()[((n * 2 + c) * 3 + i) * 3 + j] = static_cast<float>(
              (x1.at({n, c, i, j}) - s1.mean[c]) / std::sqrt(s1.biasedVar[c] + 1e-5) * w[c] + b[c]);
  CHECK(maxAbsDiff(y, ref) < 1e-5);
  bn.forward(x2);
  CHECK(bn.numBatchesTracked() == 2);
  for (int c = 0; c < 2; ++c) {
    // running = 0.9 running + 0.1 batch, with the unbiased batch variance (PyTorch).
    const double m = 0.9 * (0.9 * 0 + 0.1 * s1.mean[c]) + 0.1 * s2.mean[c];
    const double v = 0.9 * (0.9 * 1 + 0.1 * s1.unbiasedVar[c]) + 0.1 * s2.unbiasedVar[c];
    CHECK(bn.runningMean().at({c}) == doctest::Approx(m).epsilon(1e-5));
    CHECK(bn.runningVar().at({c}) == doctest::Approx(v).epsilon(1e-5));
  }

  SUBCASE("momentum None is the cumulative average") {
    nn::BatchNorm2d cum(2, {.momentum = std::nullopt});
    cum.forward(x1);
    cum.forward(x2);
    for (int c = 0; c < 2; ++c) {
      CHECK(cum.runningMean().at({c}) ==
            doctest::Approx((s1.mean[c] + s2.mean[c]) / 2).epsilon(1e-5));
      CHECK(cum.runningVar().at({c}) ==
            doctest::Approx((s1.unbiasedVar[c] + s2.unbiasedVar[c]) / 2).epsilon(1e-5));
    }
    CHECK(cum.describe() == "BatchNorm2d(2, eps=1e-05, momentum=None)\n");
  }
}

TEST_CASE("BatchNorm2d: eval mode normalises with the running statistics and leaves them") {
  Rng rng(2);
  nn::BatchNorm2d bn(2);
  bn.setTensor("running_mean", Tensor::fromVector({0.5f, -1.f}));
  bn.setTensor("running_var", Tensor::fromVector({4.f, 0.25f}));
  bn.eval();
  Tensor x = Tensor::randn({3, 2, 2, 2}, rng);
  Tensor y = bn.forward(x);
  const double mean[2] = {0.5, -1.0}, var[2] = {4.0, 0.25};
  for (int64_t n = 0; n < 3; ++n)
    for (int64_t c = 0; c < 2; ++c)
      CHECK(
          y.at({n, c, 1, 0}) ==
          doctest::Approx((x.at({n, c, 1, 0}) - mean[c]) / std::sqrt(var[c] + 1e-5)).epsilon(1e-5));
  CHECK(bn.runningMean().toVector() == std::vector<float>{0.5f, -1.f});
  CHECK(bn.numBatchesTracked() == 0);

  SUBCASE("without running statistics eval also uses the batch") {
    nn::BatchNorm2d nb(2, {.trackRunningStats = false});
    nb.eval();
    Stats s = channelStats(x);
    Tensor z = nb.forward(x);
    CHECK(z.at({1, 1, 0, 1}) ==
          doctest::Approx((x.at({1, 1, 0, 1}) - s.mean[1]) / std::sqrt(s.biasedVar[1] + 1e-5))
              .epsilon(1e-4));
  }
}

TEST_CASE("BatchNorm1d: [N, C] and [N, C, L] inputs") {
  Rng rng(3);
  nn::BatchNorm1d bn(3);
  nn::BatchNorm2d ref(3);
  Tensor x = Tensor::randn({5, 3, 4}, rng);
  // [N, C, L] is the 2-D batch norm of [N, C, L, 1].
  CHECK(maxAbsDiff(bn.forward(x), ref.forward(x.unsqueeze(3)).squeeze(3)) < 1e-6);
  CHECK(maxAbsDiff(bn.runningVar(), ref.runningVar()) < 1e-6);
  Tensor x2 = Tensor::randn({6, 3}, rng);
  Stats s = channelStats(x2.unsqueeze(2).unsqueeze(3));
  Tensor y = bn.forward(x2);
  CHECK(y.shape() == Shape{6, 3});
  CHECK(y.at({2, 1}) ==
        doctest::Approx((x2.at({2, 1}) - s.mean[1]) / std::sqrt(s.biasedVar[1] + 1e-5))
            .epsilon(1e-4));
  CHECK_THROWS_WITH_AS(bn.forward(Tensor::zeros({2, 3, 4, 4})),
                       doctest::Contains("BatchNorm1d(3): input must be [N, C] or [N, C, L]"),
                       Error);
}

TEST_CASE("BatchNorm: gradients match central differences in train and eval mode") {
  Rng rng(4);
  const autograd::GradCheckOptions o{.eps = 1e-2, .atol = 5e-3, .rtol = 1e-2};
  nn::BatchNorm2d bn2(3);
  bn2.setTensor("weight", Tensor::fromVector({1.5f, -0.7f, 0.3f}));
  bn2.setTensor("bias", Tensor::fromVector({0.1f, 0.2f, -0.3f}));
  nn::BatchNorm1d bn1(3);
  SUBCASE("BatchNorm2d train") {
    auto r = checkModuleGrads(bn2, Tensor::randn({4, 3, 2, 3}, rng), o);
    CHECK_MESSAGE(r.ok, r.message);
  }
  SUBCASE("BatchNorm2d eval") {
    bn2.setTensor("running_mean", Tensor::fromVector({0.3f, -0.2f, 0.f}));
    bn2.setTensor("running_var", Tensor::fromVector({2.f, 0.5f, 1.f}));
    bn2.eval();
    auto r = checkModuleGrads(bn2, Tensor::randn({4, 3, 2, 3}, rng), o);
    CHECK_MESSAGE(r.ok, r.message);
  }
  SUBCASE("BatchNorm1d train, [N, C]") {
    auto r = checkModuleGrads(bn1, Tensor::randn({8, 3}, rng), o);
    CHECK_MESSAGE(r.ok, r.message);
  }
  SUBCASE("BatchNorm1d eval, [N, C, L]") {
    bn1.eval();
    auto r = checkModuleGrads(bn1, Tensor::randn({4, 3, 5}, rng), o);
    CHECK_MESSAGE(r.ok, r.message);
  }
  SUBCASE("BatchNorm2d without affine parameters") {
    nn::BatchNorm2d plain(2, {.affine = false});
    auto r = checkModuleGrads(plain, Tensor::randn({3, 2, 3, 3}, rng), o);
    CHECK_MESSAGE(r.ok, r.message);
  }
}

namespace {

bool sameBits(const Tensor& a, const Tensor& b) {
  std::vector<float> va = a.contiguous().toVector(), vb = b.contiguous().toVector();
  if (va.size() != vb.size()) return false;
  for (size_t i = 0; i < va.size(); ++i) {
    if (std::bit_cast<uint32_t>(va[i]) != std::bit_cast<uint32_t>(vb[i])) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("BatchNorm2d: forwardRelu / forwardAddRelu equal relu(forward) / relu(forward + r)") {
  Rng rng(61);
  nn::BatchNorm2d bn(6);
  bn.setTensor("weight", Tensor::randn({6}, rng));
  bn.setTensor("bias", Tensor::randn({6}, rng));
  Tensor x = Tensor::randn({3, 6, 5, 7}, rng, 0.3f, 2.f), r = Tensor::randn({3, 6, 5, 7}, rng);
  bn.forward(x);  // one training step: non-trivial running statistics
  for (bool training : {true, false}) {
    CAPTURE(training);
    bn.train(training);
    nn::BatchNorm2d ref(6);  // same state, used for the unfused path
    for (auto& [name, t] : bn.namedParameters()) ref.setTensor(name, t.detach().clone());
    for (auto& [name, t] : bn.namedBuffers()) ref.setTensor(name, t.clone());
    ref.train(training);
    CHECK(sameBits(bn.forwardRelu(x), relu(ref.forward(x))));
    CHECK(sameBits(bn.forwardAddRelu(x, r), relu(add(ref.forward(x), r))));
    CHECK(sameBits(bn.runningMean(), ref.runningMean()));
    CHECK(sameBits(bn.runningVar(), ref.runningVar()));
  }
}

TEST_CASE("ResNets: the fused eval-mode forward is bit-identical to the unfused ops") {
  // With detail::setBatchNormDnnlInference(true) the blocks run batch norm on oneDNN and then the
  // separate add and relu ops (the code path before the fusion); without it, Mantissa's fused
  // one-pass kernels. Awkward shapes: batch 5, 3 channels, 13x11 images; option A and B
  // shortcuts; a trained step first, so the running statistics are not the initial ones.
  Rng dataRng(3);
  Tensor x = Tensor::randn({5, 3, 13, 11}, dataRng);
  std::vector<int64_t> labels{1, 0, 3, 2, 1};
  for (auto shortcut : {nn::ShortcutType::A, nn::ShortcutType::B}) {
    Rng rng(7);
    auto model = std::make_shared<nn::CifarResNet>(
        nn::CifarResNetOptions{.depth = 8, .inChannels = 3, .numClasses = 4, .shortcut = shortcut},
        rng);
    optim::Sgd sgd(model->namedParameters(), optim::SgdOptions{.lr = 0.1});
    Tensor loss = crossEntropy(model->forward(x), Tensor::fromInts(labels));
    loss.backward();
    sgd.step();
    model->train(false);
    autograd::NoGradGuard noGrad;
    Tensor fused = model->forward(x);
    detail::setBatchNormDnnlInference(true);
    Tensor unfused = model->forward(x);
    detail::setBatchNormDnnlInference(false);
    CHECK(sameBits(fused, unfused));
  }
}

TEST_CASE("DcganGenerator: the BatchNorm2d+ReLU fused forward is bit-identical to its modules") {
  // DcganGenerator::forward runs each BatchNorm2d - ReLU pair as forwardRelu; its `main`
  // Sequential run module by module is the unfused reference (outputs, running statistics and
  // every parameter gradient, training mode).
  for (int64_t size : {28}) {  // 64 runs the same pairs, 3x longer
    CAPTURE(size);
    const nn::DcganGeneratorOptions o{.imageSize = size, .channels = 1, .latent = 8, .width = 4};
    Rng r1(79), r2(79), data(83);
    nn::DcganGenerator fused(o, r1), plain(o, r2);
    std::shared_ptr<nn::Module> chain;
    for (auto& [name, m] : plain.namedModules())
      if (name == "main") chain = m;
    REQUIRE(chain != nullptr);
    Tensor z = Tensor::randn({5, 8}, data), w = Tensor::randn({5, 1, size, size}, data);
    Tensor a = fused.forward(z), b = chain->forward(z.reshape({5, 8, 1, 1}));
    CHECK(sameBits(a, b));
    sum(mul(a, w)).backward();
    sum(mul(b, w)).backward();
    auto pa = fused.namedParameters(), pb = plain.namedParameters();
    REQUIRE(pa.size() == pb.size());
    for (size_t i = 0; i < pa.size(); ++i) {
      CAPTURE(pa[i].first);
      CHECK(sameBits(pa[i].second.grad(), pb[i].second.grad()));
    }
    auto ba = fused.namedBuffers(), bb = plain.namedBuffers();
    for (size_t i = 0; i < ba.size(); ++i) CHECK(sameBits(ba[i].second, bb[i].second));
  }
}

TEST_CASE("DcganDiscriminator: the BatchNorm2d+LeakyReLU fused forward is bit-identical") {
  for (int64_t size : {28}) {  // 64 runs the same pairs, 3x longer
    CAPTURE(size);
    const nn::DcganDiscriminatorOptions o{.imageSize = size, .channels = 1, .width = 4};
    Rng r1(89), r2(89), data(97);
    nn::DcganDiscriminator fused(o, r1), plain(o, r2);
    std::shared_ptr<nn::Module> chain;
    for (auto& [name, m] : plain.namedModules())
      if (name == "main") chain = m;
    REQUIRE(chain != nullptr);
    Tensor x = Tensor::randn({5, 1, size, size}, data).requiresGrad(), w = Tensor::randn({5}, data);
    Tensor x2 = x.detach().clone().requiresGrad();
    Tensor a = fused.forward(x), b = chain->forward(x2).reshape({5});
    CHECK(sameBits(a, b));
    sum(mul(a, w)).backward();
    sum(mul(b, w)).backward();
    CHECK(sameBits(x.grad(), x2.grad()));
    auto pa = fused.namedParameters(), pb = plain.namedParameters();
    REQUIRE(pa.size() == pb.size());
    for (size_t i = 0; i < pa.size(); ++i) {
      CAPTURE(pa[i].first);
      CHECK(sameBits(pa[i].second.grad(), pb[i].second.grad()));
    }
    auto ba = fused.namedBuffers(), bb = plain.namedBuffers();
    for (size_t i = 0; i < ba.size(); ++i) CHECK(sameBits(ba[i].second, bb[i].second));
  }
}
