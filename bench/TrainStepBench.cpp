// mantissa-bench-train: training and inference throughput per model and precision recipe, as a
// ratio to fp32 measured in the same run, with memory and parameter counts.
//
// One training step = forward, loss, backward, optimizer step (with master snapping):
//   resnetN / alexnet-small: cross-entropy, SGD lr 0.01, momentum 0.9, weight decay 5e-4, on
//     synthetic 1x28x28 images and 10 classes (the apps' Fashion-MNIST shapes);
//   dcgan: the DCGAN step of mantissa-gan on the DCGAN-28 pair (discriminator on B real and B
//     detached fake images with BCE-with-logits, then the generator through the discriminator;
//     Adam lr 2e-4, betas (0.5, 0.999) on both; the recipe is applied to both networks).
// Inference = eval mode under NoGradGuard: a classifier's forward on B images, or the DCGAN
// generator's forward on B latent vectors (sampling).
//
// Recipes are interleaved round by round so that a noisy, shared machine slows all of them
// alike; the median over rounds is reported. Every (threads, model, batch) combination is one
// group with its own recipes, warm-up and rounds; ratios compare recipes of one group.
//
// Memory: state_mib = Storage bytes that stay live between steps (parameters, gradients,
// optimizer and quantizer state, master copies); train_peak_mib / infer_peak_mib = state plus
// the highest extra Storage bytes live during a step (activations saved for backward,
// gradients, workspaces). All recipes of a group are live at once, so each recipe's peak is
// measured relative to the bytes live when its step starts. peak_rss_mib is the process's peak
// resident set so far (getrusage): per model only when one process measures one model.
//
//   mantissa-bench-train [--models resnet20,resnet56,resnet110,alexnet-small,dcgan]
//                        [--batch 32,64,128,256] [--threads 1,2] [--rounds 10] [--warmup 2]
//                        [--recipes fp32,flexpoint,hbfp8,boosters,s2fp8,fp8,bf16]
//                        [--no-inference] [--csv FILE] [--markdown FILE]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <cxxopts.hpp>

#include "apps/common/Precision.h"
#include "core/Rng.h"
#include "core/Storage.h"
#include "core/autograd/Autograd.h"
#include "core/ops/Elementwise.h"
#include "core/ops/Loss.h"
#include "core/parallel/ParallelFor.h"
#include "formats/PrecisionSchedule.h"
#include "layers/models/AlexNet.h"
#include "layers/models/CifarResNet.h"
#include "layers/models/Dcgan.h"
#include "optim/Adam.h"
#include "optim/Sgd.h"

using namespace mantissa;

namespace {

constexpr int64_t kSide = 28, kClasses = 10, kLatent = 100;
constexpr double kMiB = 1024.0 * 1024.0;

/// What the benchmark times for one recipe: a training step and an inference pass.
class Workload {
 public:
  virtual ~Workload() = default;
  virtual void trainStep() = 0;
  virtual void inferStep() = 0;
  /// Train (BN batch statistics, dropout) or eval mode for every network of the workload.
  virtual void setTraining(bool on) = 0;
  virtual int64_t numParameters() const = 0;
};

/// A classifier with SGD on one fixed synthetic batch.
class ClassifierWorkload : public Workload {
 public:
  ClassifierWorkload(std::shared_ptr<nn::Model> model, const std::string& recipe, const Tensor& x,
                     const Tensor& y)
      : model_(std::move(model)), x_(x), y_(y) {
    sgd_ = std::make_unique<optim::Sgd>(
        model_->namedParameters(),
        optim::SgdOptions{.lr = 0.01, .momentum = 0.9, .weightDecay = 5e-4});
    train::applyPrecision(*model_, sgd_.get(), formats::PrecisionSchedule::parse(recipe), 0, 2, 1);
  }
  void trainStep() override {
    Tensor loss = crossEntropy(model_->forward(x_), y_);
    sgd_->zeroGrad();
    loss.backward();
    sgd_->step();
  }
  void inferStep() override {
    autograd::NoGradGuard noGrad;
    model_->forward(x_);
  }
  void setTraining(bool on) override { model_->train(on); }
  int64_t numParameters() const override { return model_->numParameters(); }

 private:
  std::shared_ptr<nn::Model> model_;
  std::unique_ptr<optim::Sgd> sgd_;
  Tensor x_, y_;
};

/// The DCGAN-28 generator and discriminator, one step each per batch as in mantissa-gan.
class DcganWorkload : public Workload {
 public:
  DcganWorkload(const std::string& recipe, const Tensor& real)
      : real_(real),
        noise_(11),
        ones_(Tensor::ones({real.size(0)})),
        zeros_(Tensor::zeros({real.size(0)})) {
    Rng rng(7);
    gen_ = std::make_shared<nn::DcganGenerator>(
        nn::DcganGeneratorOptions{.imageSize = kSide, .channels = 1, .latent = kLatent}, rng);
    critic_ = std::make_shared<nn::DcganDiscriminator>(
        nn::DcganDiscriminatorOptions{
            .imageSize = kSide, .channels = 1, .batchNorm = true, .sigmoid = false},
        rng);
    optim::AdamOptions adam{.lr = 2e-4, .betas = {0.5, 0.999}};
    optG_ = std::make_unique<optim::Adam>(gen_->namedParameters(), adam);
    optC_ = std::make_unique<optim::Adam>(critic_->namedParameters(), adam);
    auto schedule = formats::PrecisionSchedule::parse(recipe);
    train::applyPrecision(*gen_, optG_.get(), schedule, 0, 2, 1);
    train::applyPrecision(*critic_, optC_.get(), schedule, 0, 2, 2);
    z_ = Tensor::randn({real.size(0), kLatent}, noise_);
  }
  void trainStep() override {
    // apps/cli/GanRun.cpp, DCGAN branch: fresh noise every step.
    const int64_t n = real_.size(0);
    Tensor fake = gen_->forward(Tensor::randn({n, kLatent}, noise_));
    optC_->zeroGrad();
    Tensor lossD = add(binaryCrossEntropyWithLogits(critic_->forward(real_), ones_),
                       binaryCrossEntropyWithLogits(critic_->forward(fake.detach()), zeros_));
    lossD.backward();
    optC_->step();
    optG_->zeroGrad();
    Tensor lossG = binaryCrossEntropyWithLogits(critic_->forward(fake), ones_);
    lossG.backward();
    optG_->step();
  }
  void inferStep() override {
    autograd::NoGradGuard noGrad;
    gen_->forward(z_);
  }
  void setTraining(bool on) override {
    gen_->train(on);
    critic_->train(on);
  }
  int64_t numParameters() const override {
    return gen_->numParameters() + critic_->numParameters();
  }

 private:
  Tensor real_;
  Rng noise_;
  Tensor ones_, zeros_, z_;
  std::shared_ptr<nn::DcganGenerator> gen_;
  std::shared_ptr<nn::DcganDiscriminator> critic_;
  std::unique_ptr<optim::Adam> optG_, optC_;
};

/// Synthetic inputs of one batch size, shared by every recipe of a group.
struct Batch {
  Tensor images, labels;
};

Batch makeBatch(const std::string& model, int64_t batch) {
  Rng dataRng(1);
  if (model == "dcgan") return {Tensor::rand({batch, 1, kSide, kSide}, dataRng, -1.f, 1.f), {}};
  std::vector<int64_t> labels(static_cast<size_t>(batch));
  for (auto& l : labels) l = static_cast<int64_t>(dataRng.uniformInt(kClasses));
  return {Tensor::randn({batch, 1, kSide, kSide}, dataRng), Tensor::fromInts(labels)};
}

std::unique_ptr<Workload> makeWorkload(const std::string& name, const std::string& recipe,
                                       const Batch& b) {
  if (name == "dcgan") return std::make_unique<DcganWorkload>(recipe, b.images);
  Rng rng(7);
  std::shared_ptr<nn::Model> model;
  if (name == "alexnet-small") {
    model = std::make_shared<nn::AlexNet>(nn::AlexNetOptions{.variant = nn::AlexNetVariant::Small,
                                                             .inChannels = 1,
                                                             .numClasses = kClasses,
                                                             .inputSize = kSide},
                                          rng);
  } else if (name.rfind("resnet", 0) == 0 && name.size() > 6 &&
             name.find_first_not_of("0123456789", 6) == std::string::npos) {
    model = std::make_shared<nn::CifarResNet>(
        nn::CifarResNetOptions{
            .depth = std::stoi(name.substr(6)), .inChannels = 1, .numClasses = kClasses},
        rng);
  } else {
    throw std::runtime_error("--models: unknown model '" + name +
                             "' (allowed: resnetN with N = 6n+2, alexnet-small, dcgan)");
  }
  return std::make_unique<ClassifierWorkload>(model, recipe, b.images, b.labels);
}

/// Figures of one recipe in one group.
struct Run {
  std::string recipe;
  std::unique_ptr<Workload> work;
  size_t stateBytes = 0, trainExtra = 0, inferExtra = 0;
  std::vector<double> trainSeconds, inferSeconds;
};

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

/// Runs `fn`, returns its seconds and raises `extra` to the Storage bytes it added at its peak.
double timedStep(const std::function<void()>& fn, size_t& extra) {
  const size_t before = Storage::liveBytes();
  Storage::resetPeak();
  auto t0 = std::chrono::steady_clock::now();
  fn();
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  extra = std::max(extra, Storage::peakBytes() - before);
  return s;
}

double peakRssMiB() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) * 1024.0 / kMiB;  // ru_maxrss is in KiB on Linux
}

/// One CSV/Markdown row.
struct Row {
  std::string model, recipe, base;
  int threads = 0;
  int64_t batch = 0, params = 0;
  double trainS = 0, inferS = 0, trainRatio = 0, inferRatio = 0;
  double stateMiB = 0, trainPeakMiB = 0, inferPeakMiB = 0, rssMiB = 0;
};

struct Config {
  std::vector<std::string> recipes;
  int rounds = 10, warmup = 2;
  bool inference = true;
};

/// Measures every recipe of one (threads, model, batch) group.
std::vector<Row> measureGroup(const std::string& model, int64_t batch, const Config& cfg) {
  const Batch data = makeBatch(model, batch);
  std::vector<Run> runs;
  for (const std::string& recipe : cfg.recipes) {
    Run run;
    run.recipe = recipe;
    const size_t live0 = Storage::liveBytes();
    run.work = makeWorkload(model, recipe, data);
    // Warm-up (primitive creation, Autoflex initialisation, optimizer state) before the state
    // is counted, so that gradients and momentum buffers are part of it.
    size_t ignored = 0;
    for (int i = 0; i < cfg.warmup; ++i) timedStep([&] { run.work->trainStep(); }, ignored);
    run.stateBytes = Storage::liveBytes() - live0;
    runs.push_back(std::move(run));
  }
  for (int round = 0; round < cfg.rounds; ++round) {
    for (Run& run : runs) {
      run.trainSeconds.push_back(timedStep([&] { run.work->trainStep(); }, run.trainExtra));
    }
  }
  if (cfg.inference) {
    for (Run& run : runs) {
      run.work->setTraining(false);
      size_t ignored = 0;
      for (int i = 0; i < cfg.warmup; ++i) timedStep([&] { run.work->inferStep(); }, ignored);
    }
    for (int round = 0; round < cfg.rounds; ++round) {
      for (Run& run : runs) {
        run.inferSeconds.push_back(timedStep([&] { run.work->inferStep(); }, run.inferExtra));
      }
    }
  }
  // Ratios to fp32 when it was measured, else to the first recipe.
  auto baseIt =
      std::find_if(runs.begin(), runs.end(), [](const Run& r) { return r.recipe == "fp32"; });
  const Run& base = baseIt != runs.end() ? *baseIt : runs.front();
  const double baseTrain = median(base.trainSeconds), baseInfer = median(base.inferSeconds);
  std::vector<Row> rows;
  for (const Run& run : runs) {
    Row r{.model = model,
          .recipe = run.recipe,
          .base = base.recipe,
          .threads = numThreads(),
          .batch = batch,
          .params = run.work->numParameters()};
    r.trainS = median(run.trainSeconds);
    r.inferS = median(run.inferSeconds);
    r.trainRatio = r.trainS / baseTrain;
    r.inferRatio = cfg.inference ? r.inferS / baseInfer : 0;
    r.stateMiB = static_cast<double>(run.stateBytes) / kMiB;
    r.trainPeakMiB = static_cast<double>(run.stateBytes + run.trainExtra) / kMiB;
    r.inferPeakMiB =
        cfg.inference ? static_cast<double>(run.stateBytes + run.inferExtra) / kMiB : 0;
    r.rssMiB = peakRssMiB();
    rows.push_back(r);
  }
  return rows;
}

std::string csv(const std::vector<Row>& rows) {
  std::ostringstream os;
  os << "framework,model,recipe,threads,batch,params,train_step_ms,train_images_per_sec,"
        "infer_ms,infer_images_per_sec,base_recipe,train_time_ratio,infer_time_ratio,"
        "state_mib,train_peak_mib,infer_peak_mib,peak_rss_mib\n";
  char line[512];
  for (const Row& r : rows) {
    const bool inf = r.inferS > 0;
    std::snprintf(
        line, sizeof line,
        "mantissa,%s,%s,%d,%lld,%lld,%.2f,%.1f,%.2f,%.1f,%s,%.3f,%.3f,%.1f,%.1f,%.1f,%.1f\n",
        r.model.c_str(), r.recipe.c_str(), r.threads, static_cast<long long>(r.batch),
        static_cast<long long>(r.params), 1e3 * r.trainS, r.batch / r.trainS, 1e3 * r.inferS,
        inf ? r.batch / r.inferS : 0.0, r.base.c_str(), r.trainRatio, r.inferRatio, r.stateMiB,
        r.trainPeakMiB, r.inferPeakMiB, r.rssMiB);
    os << line;
  }
  return os.str();
}

/// `v` with `digits` decimals, or "-" when the figure was not measured.
std::string fixed(double v, int digits, bool measured = true) {
  if (!measured) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string markdown(const std::vector<Row>& rows) {
  std::ostringstream os;
  os << "| model | recipe | threads | batch | params | train images/s | inference images/s | "
        "train time vs base | inference time vs base | state MiB | train peak MiB | "
        "inference peak MiB | process peak RSS MiB |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const Row& r : rows) {
    const bool inf = r.inferS > 0;
    os << "| " << r.model << " | " << r.recipe << " | " << r.threads << " | " << r.batch << " | "
       << r.params << " | " << fixed(r.batch / r.trainS, 0) << " | "
       << fixed(inf ? r.batch / r.inferS : 0, 0, inf) << " | " << fixed(r.trainRatio, 2) << "x ("
       << r.base << ") | " << (inf ? fixed(r.inferRatio, 2) + "x" : "-") << " | "
       << fixed(r.stateMiB, 1) << " | " << fixed(r.trainPeakMiB, 1) << " | "
       << fixed(r.inferPeakMiB, 1, inf) << " | " << fixed(r.rssMiB, 0) << " |\n";
  }
  return os.str();
}

void writeOrPrint(const std::string& path, const std::string& text, const char* what) {
  if (path.empty()) {
    std::cout << text;
    return;
  }
  std::ofstream f(path);
  if (!f) throw std::runtime_error(std::string(what) + ": cannot write '" + path + "'");
  f << text;
}

}  // namespace

int main(int argc, char** argv) {
  cxxopts::Options options("mantissa-bench-train",
                           "Training and inference throughput, memory and parameters per model "
                           "and precision recipe (ratios to fp32 in the same run)");
  // clang-format off
  options.add_options()
      ("models", "comma-separated: resnet20, resnet56, resnet110 (any resnet<6n+2>), "
                 "alexnet-small, dcgan",
       cxxopts::value<std::vector<std::string>>()->default_value("resnet20"))
      ("model", "same as --models", cxxopts::value<std::vector<std::string>>())
      ("batch", "comma-separated batch sizes",
       cxxopts::value<std::vector<int64_t>>()->default_value("128"))
      ("threads", "comma-separated thread counts (0 = all cores)",
       cxxopts::value<std::vector<int>>()->default_value("0"))
      ("rounds", "timed rounds (one step per recipe each; median)",
       cxxopts::value<int>()->default_value("10"))
      ("warmup", "untimed steps per recipe before timing (>= 1: the state is counted after them)",
       cxxopts::value<int>()->default_value("2"))
      ("recipes", "comma-separated precision recipes",
       cxxopts::value<std::vector<std::string>>()->default_value(
           "fp32,flexpoint,hbfp8,boosters,s2fp8,fp8,bf16"))
      ("no-inference", "time training only")
      ("csv", "write the CSV here instead of stdout",
       cxxopts::value<std::string>()->default_value(""))
      ("markdown", "write the Markdown table here instead of stdout",
       cxxopts::value<std::string>()->default_value(""))
      ("h,help", "this help");
  // clang-format on
  try {
    auto r = options.parse(argc, argv);
    if (r.count("help")) {
      std::cout << options.help() << '\n';
      return 0;
    }
    auto models = r["models"].as<std::vector<std::string>>();
    if (r.count("model")) models = r["model"].as<std::vector<std::string>>();
    const auto batches = r["batch"].as<std::vector<int64_t>>();
    const auto threads = r["threads"].as<std::vector<int>>();
    Config cfg{.recipes = r["recipes"].as<std::vector<std::string>>(),
               .rounds = r["rounds"].as<int>(),
               .warmup = r["warmup"].as<int>(),
               .inference = r.count("no-inference") == 0};
    if (cfg.rounds < 1 || cfg.warmup < 1)
      throw std::runtime_error("--rounds and --warmup must be >= 1");
    if (cfg.recipes.empty() || models.empty())
      throw std::runtime_error("--recipes and --models must not be empty");
    for (int64_t b : batches) {
      if (b < 1)
        throw std::runtime_error("--batch: sizes must be positive, got " + std::to_string(b));
    }
    for (int t : threads) {
      if (t < 0)
        throw std::runtime_error("--threads: counts must be >= 0, got " + std::to_string(t));
    }
    for (const auto& m : models)
      makeWorkload(m, cfg.recipes.front(), makeBatch(m, 1));  // fail early
    const int allThreads = numThreads();

    std::vector<Row> rows;
    for (int t : threads) {
      setNumThreads(t > 0 ? t : allThreads);
      for (const std::string& model : models) {
        for (int64_t batch : batches) {
          std::cerr << "mantissa-bench-train: " << model << ", batch " << batch << ", "
                    << numThreads() << " thread(s)\n";
          for (Row& row : measureGroup(model, batch, cfg)) rows.push_back(row);
        }
      }
    }
    const std::string csvPath = r["csv"].as<std::string>(),
                      mdPath = r["markdown"].as<std::string>();
    writeOrPrint(csvPath, csv(rows), "--csv");
    if (csvPath.empty()) std::cout << '\n';
    writeOrPrint(mdPath, markdown(rows), "--markdown");
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "mantissa-bench-train: error: " << e.what() << '\n';
    return 2;
  }
}
