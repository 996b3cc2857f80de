#include <doctest/doctest.h>

#include <cmath>
#include <map>

#include "core/Rng.h"
#include "core/ops/Loss.h"
#include "core/ops/Reduce.h"
#include "layers/Conv2d.h"
#include "layers/models/Models.h"
#include "tests/layers/LayerTestUtil.h"

using namespace mantissa;
namespace nn = mantissa::nn;
using mantissa::testing::maxAbsDiff;

namespace {

std::map<std::string, Shape> shapes(const nn::Module& m) {
  std::map<std::string, Shape> out;
  for (auto& [n, t] : m.namedParameters()) out[n] = t.shape();
  for (auto& [n, t] : m.namedBuffers()) out[n] = t.shape();
  return out;
}

// Runs forward + a scalar loss + backward in train mode and checks that every parameter got a
// finite, not entirely zero gradient.
void checkTrainStep(nn::Module& m, const Tensor& x) {
  m.train();
  m.zeroGrad();
  Tensor y = m.forward(x);
  Rng rng(77);
  sum(mul(y, Tensor::randn(y.shape(), rng))).backward();
  for (auto& [n, p] : m.namedParameters()) {
    CAPTURE(n);
    REQUIRE(p.grad().defined());
    std::vector<float> g = p.grad().toVector();
    bool finite = true, nonzero = false;
    for (float v : g) {
      finite = finite && std::isfinite(v);
      nonzero = nonzero || v != 0.f;
    }
    CHECK(finite);
    CHECK(nonzero);
  }
}

double stddev(const Tensor& t) {
  std::vector<float> v = t.toVector();
  double s = 0, sq = 0;
  for (float x : v) s += x;
  const double m = s / double(v.size());
  for (float x : v) sq += (x - m) * (x - m);
  return std::sqrt(sq / double(v.size()));
}

}  // namespace

// Parameter counts of the CIFAR ResNets with option A, 3 input channels, 10 classes, by hand:
// conv1 3*16*9 = 432, bn1 32; a 16-plane block 2*(16*16*9) + 2*32 = 4672; the first 32-plane
// block 16*32*9 + 32*32*9 + 2*64 = 13952, the others 2*9216 + 128 = 18560; the first 64-plane
// block 32*64*9 + 64*64*9 + 2*128 = 55552, the others 2*36864 + 256 = 73984; fc 64*10 + 10.
// Total for n blocks per stage: 97216 n - 21926 (n = 3: 269,722, PyTorch's figure for ResNet-20).
TEST_CASE("CifarResNet: parameter counts, names and output shapes") {
  Rng rng(1);
  for (int depth : {20, 32, 44, 56, 110}) {
    CAPTURE(depth);
    nn::CifarResNet m({.depth = depth}, rng);
    const int64_t n = (depth - 2) / 6;
    CHECK(m.numParameters() == 97216 * n - 21926);
  }
  nn::CifarResNet r20({.depth = 20}, rng);
  CHECK(r20.numParameters() == 269722);
  CHECK(r20.name() == "resnet20");
  CHECK(r20.describe().rfind("CifarResNet(depth=20, in_channels=3, num_classes=10, shortcut=A\n",
                             0) == 0);
  auto s = shapes(r20);
  CHECK(s.at("conv1.weight") == Shape{16, 3, 3, 3});
  CHECK(s.at("bn1.running_var") == Shape{16});
  CHECK(s.at("layer1.0.conv1.weight") == Shape{16, 16, 3, 3});
  CHECK(s.at("layer2.0.conv1.weight") == Shape{32, 16, 3, 3});
  CHECK(s.at("layer3.2.bn2.num_batches_tracked") == Shape{});
  CHECK(s.at("fc.weight") == Shape{10, 64});
  CHECK(s.count("layer2.0.downsample.0.weight") == 0);  // option A has no projection
  CHECK(r20.dotProductLayers().size() == 20);           // 19 convolutions + fc

  // Option B adds the 1x1 projections, 16*32 + 2*32 = 576 and 32*64 + 2*64 = 2176; one input
  // channel saves 2*16*9 = 288 in conv1 and 7 classes save 3*65 = 195 in fc.
  nn::CifarResNet r20b(
      {.depth = 20, .inChannels = 1, .numClasses = 7, .shortcut = nn::ShortcutType::B}, rng);
  CHECK(r20b.numParameters() == 269722 + 576 + 2176 - 288 - 195);
  CHECK(r20b.name() == "resnet20b");
  CHECK(shapes(r20b).at("layer3.0.downsample.0.weight") == Shape{64, 32, 1, 1});
  CHECK(shapes(r20b).at("layer3.0.downsample.1.running_mean") == Shape{64});

  CHECK(r20.forward(Tensor::randn({2, 3, 32, 32}, rng)).shape() == Shape{2, 10});
  CHECK(r20b.forward(Tensor::randn({3, 1, 28, 28}, rng)).shape() == Shape{3, 7});
  CHECK_THROWS_WITH_AS(nn::CifarResNet({.depth = 21}, rng),
                       doctest::Contains("depth 21 is not 6n + 2"), Error);
  CHECK_THROWS_WITH_AS(r20.forward(Tensor::zeros({1, 1, 32, 32})),
                       doctest::Contains("resnet20: input of shape [1, 1, 32, 32]"), Error);
}

TEST_CASE("CifarResNet: a training step reaches every parameter; checkpoint round trip") {
  Rng rng(2);
  nn::CifarResNet m({.depth = 20, .inChannels = 1}, rng);
  // Kaiming-normal fan_in init: layer3 3x3 convs have fan_in 64*9, std sqrt(2/576).
  CHECK(stddev(m.namedParameters()[0].second) > 0);
  for (auto& [n, p] : m.namedParameters()) {
    if (n == "layer3.1.conv1.weight")
      CHECK(stddev(p) == doctest::Approx(std::sqrt(2.0 / 576)).epsilon(0.05));
  }
  Tensor x = Tensor::randn({4, 1, 28, 28}, rng);
  checkTrainStep(m, x);
  for (auto& [n, b] : m.namedBuffers()) {
    if (n == "bn1.num_batches_tracked") CHECK(b.item<int64_t>() == 1);
  }

  io::StateDict sd;
  m.saveState(sd, "");
  Rng other(99);
  nn::CifarResNet copy({.depth = 20, .inChannels = 1}, other);
  copy.loadState(sd, "");
  m.eval();
  copy.eval();
  CHECK(maxAbsDiff(m.forward(x), copy.forward(x)) == 0);
}

TEST_CASE("BasicBlock: option A shortcut subsamples and zero-pads channels in the middle") {
  Rng rng(3);
  nn::BasicBlock block(4, 8, 2, nn::ShortcutType::A, rng);
  // Zero convolutions make the residual branch exactly 0 (BN of a constant batch with bias 0),
  // so the block outputs relu(shortcut(x)).
  for (auto& [n, m] : block.namedModules()) {
    if (m->typeName() == "Conv2d")
      m->setTensor("weight", Tensor::zeros(m->namedParameters()[0].second.shape()));
  }
  Tensor x = Tensor::randn({2, 4, 5, 6}, rng);
  Tensor y = block.forward(x);
  REQUIRE(y.shape() == Shape{2, 8, 3, 3});
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t c = 0; c < 8; ++c)
      for (int64_t i = 0; i < 3; ++i)
        for (int64_t j = 0; j < 3; ++j) {
          // Channels 0-1 and 6-7 are padding; 2-5 carry input channels 0-3 at (2i, 2j).
          const double want = c < 2 || c >= 6 ? 0.0 : std::max(0.0, x.at({n, c - 2, 2 * i, 2 * j}));
          CHECK(y.at({n, c, i, j}) == doctest::Approx(want).epsilon(1e-6));
        }
  CHECK(block.namedParameters().size() == 6);  // conv1, bn1 (2), conv2, bn2 (2)
}

// torchvision figures: resnet18 11,689,512; resnet34 21,797,672; resnet50 25,557,032.
TEST_CASE("ResNet (ImageNet): torchvision parameter counts, names, init and output shapes") {
  Rng rng(4);
  nn::ResNet r18({.depth = 18}, rng);
  CHECK(r18.numParameters() == 11689512);
  CHECK(r18.name() == "resnet18");
  auto s = shapes(r18);
  CHECK(s.at("conv1.weight") == Shape{64, 3, 7, 7});
  CHECK(s.at("layer1.0.conv1.weight") == Shape{64, 64, 3, 3});
  CHECK(s.at("layer2.0.downsample.0.weight") == Shape{128, 64, 1, 1});
  CHECK(s.at("layer2.0.downsample.1.running_var") == Shape{128});
  CHECK(s.at("layer4.1.bn2.running_mean") == Shape{512});
  CHECK(s.at("fc.weight") == Shape{1000, 512});
  CHECK(s.count("layer1.0.downsample.0.weight") == 0);
  // kaiming_normal_(fan_out, relu): conv1 std = sqrt(2 / (64 * 49)).
  CHECK(stddev(r18.namedParameters()[0].second) ==
        doctest::Approx(std::sqrt(2.0 / 3136)).epsilon(0.05));
  r18.eval();
  CHECK(r18.forward(Tensor::randn({1, 3, 224, 224}, rng)).shape() == Shape{1, 1000});

  nn::ResNet r34({.depth = 34, .inChannels = 1, .numClasses = 10}, rng);
  // 21,797,672 - (3 - 1) * 64 * 49 - 513 * 990.
  CHECK(r34.numParameters() == 21797672 - 2 * 64 * 49 - 513 * 990);
  CHECK(shapes(r34).count("layer3.5.conv2.weight") == 1);

  nn::ResNet r50({.depth = 50}, rng);
  CHECK(r50.numParameters() == 25557032);
  auto s50 = shapes(r50);
  CHECK(s50.at("layer1.0.conv3.weight") == Shape{256, 64, 1, 1});
  CHECK(s50.at("layer1.0.downsample.0.weight") == Shape{256, 64, 1, 1});
  CHECK(s50.at("layer2.0.conv2.weight") == Shape{128, 128, 3, 3});  // v1.5: stride on the 3x3
  CHECK(s50.at("fc.weight") == Shape{1000, 2048});
  CHECK(r50.describe().rfind("ResNet(depth=50, in_channels=3, num_classes=1000\n", 0) == 0);
  CHECK_THROWS_WITH_AS(nn::ResNet({.depth = 101}, rng),
                       doctest::Contains("depth 101 is not one of"), Error);
}

TEST_CASE("ResNet (ImageNet): a training step on a small input; zero-init residual") {
  Rng rng(5);
  nn::ResNet m({.depth = 18, .numClasses = 5, .zeroInitResidual = true}, rng);
  for (auto& [n, p] : m.namedParameters()) {
    if (n == "layer3.1.bn2.weight") CHECK(maxAbsDiff(p, Tensor::zeros(p.shape())) == 0);
  }
  // 32x32 is the smallest input that keeps a 1x1 map at layer4.
  Tensor x = Tensor::randn({2, 3, 32, 32}, rng);
  m.train();
  Tensor y = m.forward(x);
  CHECK(y.shape() == Shape{2, 5});
  sum(y).backward();
  CHECK(m.namedParameters().back().second.grad().defined());
}

// Original AlexNet (one tower), by hand: conv1 96*3*11*11 + 96 = 34,944; conv2 256*96*25 + 256 =
// 614,656; conv3 384*256*9 + 384 = 885,120; conv4 384*384*9 + 384 = 1,327,488; conv5
// 256*384*9 + 256 = 884,992; fc6 9216*4096 + 4096 = 37,752,832; fc7 4096*4096 + 4096 =
// 16,781,312; fc8 4096*1000 + 1000 = 4,097,000. Total 62,378,344. With the paper's two towers
// (groups 2 in conv2, conv4, conv5) the three convolutions halve: 60,965,224, the paper-era
// figure. (torchvision's AlexNet, 61,100,840, is the later one-tower 64-192-384-256-256 variant.)
TEST_CASE("AlexNet original: parameter counts, names and one forward at 227x227") {
  Rng rng(6);
  {
    nn::AlexNet m({}, rng);
    CHECK(m.numParameters() == 62378344);
    CHECK(m.name() == "alexnet");
    auto s = shapes(m);
    CHECK(s.at("features.0.weight") == Shape{96, 3, 11, 11});
    CHECK(s.at("features.4.weight") == Shape{256, 96, 5, 5});
    CHECK(s.at("features.12.weight") == Shape{256, 384, 3, 3});
    CHECK(s.at("classifier.0.weight") == Shape{4096, 9216});
    CHECK(s.at("classifier.6.weight") == Shape{1000, 4096});
    CHECK(s.at("classifier.2.rng_state") == Shape{4});
    const std::string d = m.describe();
    CHECK(d.find("(2): LocalResponseNorm(5, alpha=0.0005, beta=0.75, k=2)") != std::string::npos);
    CHECK(d.find("(3): MaxPool2d(kernel=3, stride=2)") != std::string::npos);
    m.eval();
    CHECK(m.forward(Tensor::randn({1, 3, 227, 227}, rng)).shape() == Shape{1, 1000});
    CHECK_THROWS_WITH_AS(m.forward(Tensor::zeros({1, 3, 224, 224})),
                         doctest::Contains("built for [N, 3, 227, 227]"), Error);
  }
  // One model alive at a time: each holds 250 MB of parameters.
  nn::AlexNet towers({.groups = 2}, rng);
  CHECK(towers.numParameters() == 60965224);
  CHECK(shapes(towers).at("features.4.weight") == Shape{256, 48, 5, 5});
  CHECK_THROWS_WITH_AS(nn::AlexNet({.inputSize = 60}, rng), doctest::Contains("too small"), Error);
}

// Small AlexNet, by hand (3x32x32, 10 classes): conv1 64*3*25 + 64 = 4,864; conv2 192*64*25 +
// 192 = 307,392; conv3 384*192*9 + 384 = 663,936; conv4 256*384*9 + 256 = 884,992; conv5
// 256*256*9 + 256 = 590,080; fc6 (256*3*3)*1024 + 1024 = 2,360,320; fc7 1,049,600; fc8 10,250.
// Total 5,871,434. For 1x28x28: conv1 1,664 and fc6 (256*2*2)*1024 + 1024 = 1,049,600, total
// 4,557,514.
TEST_CASE("AlexNet small: parameter counts, training step, dropout only in train mode") {
  Rng rng(7);
  nn::AlexNet c32({.variant = nn::AlexNetVariant::Small, .numClasses = 10}, rng);
  CHECK(c32.numParameters() == 5871434);
  CHECK(c32.name() == "alexnet-small");
  CHECK(c32.inputSize() == 32);
  nn::AlexNet m28(
      {.variant = nn::AlexNetVariant::Small, .inChannels = 1, .numClasses = 10, .inputSize = 28},
      rng);
  CHECK(m28.numParameters() == 4557514);
  CHECK(shapes(m28).at("classifier.0.weight") == Shape{1024, 1024});

  Tensor x = Tensor::randn({2, 1, 28, 28}, rng);
  checkTrainStep(m28, x);
  m28.eval();
  Tensor a = m28.forward(x), b = m28.forward(x);
  CHECK(a.shape() == Shape{2, 10});
  CHECK(maxAbsDiff(a, b) == 0);
  m28.train();
  CHECK(maxAbsDiff(m28.forward(x), m28.forward(x)) > 0);  // fresh dropout masks
}

// DCGAN 64x64 (latent 100, width 64, 3 channels), by hand. Generator: 100*512*16 + 512*256*16 +
// 256*128*16 + 128*64*16 + 64*3*16 = 3,574,784 conv weights + BN 2*(512+256+128+64) = 1,920:
// 3,576,704. Discriminator: 3*64*16 + 64*128*16 + 128*256*16 + 256*512*16 + 512*16 = 2,763,776
// + BN 2*(128+256+512) = 1,792: 2,765,568.
// DCGAN 28x28 (1 channel): generator 100*256*16 + 256*128*9 + 128*64*16 + 64*16 = 836,608 + BN
// 2*(256+128+64) = 896: 837,504; discriminator 64*16 + 64*128*16 + 128*256*9 + 256*16 = 431,104
// + BN 2*(128+256) = 768: 431,872.
TEST_CASE("DCGAN: parameter counts, names and shapes") {
  Rng rng(8);
  nn::DcganGenerator g64({}, rng);
  nn::DcganDiscriminator d64({}, rng);
  CHECK(g64.numParameters() == 3576704);
  CHECK(d64.numParameters() == 2765568);
  CHECK(g64.name() == "dcgan64-generator");
  CHECK(d64.name() == "dcgan64-discriminator");
  auto sg = shapes(g64), sd = shapes(d64);
  CHECK(sg.at("main.0.weight") == Shape{100, 512, 4, 4});
  CHECK(sg.at("main.1.running_mean") == Shape{512});
  CHECK(sg.at("main.12.weight") == Shape{64, 3, 4, 4});
  CHECK(sd.at("main.0.weight") == Shape{64, 3, 4, 4});
  CHECK(sd.at("main.3.weight") == Shape{128});  // BN after the second conv
  CHECK(sd.at("main.11.weight") == Shape{1, 512, 4, 4});
  // Radford et al. init: conv N(0, 0.02).
  CHECK(stddev(g64.namedParameters()[0].second) == doctest::Approx(0.02).epsilon(0.05));

  nn::DcganDiscriminator critic({.batchNorm = false, .sigmoid = false}, rng);
  CHECK(critic.numParameters() == 2763776);
  CHECK(critic.name() == "dcgan64-critic");
  CHECK(critic.namedBuffers().empty());
  CHECK(critic.describe().find("Sigmoid") == std::string::npos);

  nn::DcganGenerator g28({.imageSize = 28, .channels = 1}, rng);
  nn::DcganDiscriminator d28({.imageSize = 28, .channels = 1}, rng);
  CHECK(g28.numParameters() == 837504);
  CHECK(d28.numParameters() == 431872);
  CHECK(shapes(g28).at("main.3.weight") == Shape{256, 128, 3, 3});
  CHECK_THROWS_WITH_AS(nn::DcganGenerator({.imageSize = 32}, rng),
                       doctest::Contains("image size 32 is not supported"), Error);
}

TEST_CASE("DCGAN: generator and discriminator train end to end (28 and 64)") {
  Rng rng(9);
  for (int64_t size : {28, 64}) {
    CAPTURE(size);
    const int64_t ch = size == 28 ? 1 : 3;
    nn::DcganGenerator g({.imageSize = size, .channels = ch, .latent = 8, .width = 8}, rng);
    nn::DcganDiscriminator d({.imageSize = size, .channels = ch, .width = 8}, rng);
    Tensor z = Tensor::randn({2, 8}, rng);
    Tensor img = g.forward(z);
    CHECK(img.shape() == Shape{2, ch, size, size});
    CHECK(max(abs(img)).item() <= 1.f);  // Tanh output
    CHECK(g.forward(z.reshape({2, 8, 1, 1})).shape() == img.shape());
    Tensor p = d.forward(img);
    CHECK(p.shape() == Shape{2});
    for (float v : p.toVector()) CHECK((v >= 0.f && v <= 1.f));  // Sigmoid output
    // A generator step through the discriminator reaches every generator parameter.
    g.zeroGrad();
    d.zeroGrad();
    sum(p).backward();
    for (auto& [n, t] : g.namedParameters()) {
      CAPTURE(n);
      CHECK(t.grad().defined());
    }
    nn::DcganDiscriminator critic(
        {.imageSize = size, .channels = ch, .width = 8, .batchNorm = false, .sigmoid = false}, rng);
    checkTrainStep(critic, img.detach());
  }
}
