#include "apps/cli/SavedClassifier.h"

#include <filesystem>

#include "core/Error.h"
#include "core/io/PartialState.h"
#include "layers/models/AlexNet.h"
#include "layers/models/CifarResNet.h"
#include "layers/models/ResNet.h"

namespace mantissa::cli {

namespace {

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

class ConfigReader {
 public:
  ConfigReader(std::map<std::string, std::string> kv, std::string context)
      : kv_(std::move(kv)), context_(std::move(context)) {}
  bool has(const std::string& key) const { return kv_.count(key) > 0; }
  const std::string& str(const std::string& key) const {
    auto it = kv_.find(key);
    MANTISSA_CHECK(it != kv_.end(), context_, ": model_config has no '", key, "'");
    return it->second;
  }
  int64_t integer(const std::string& key) const {
    const std::string& v = str(key);
    try {
      size_t used = 0;
      int64_t n = std::stoll(v, &used);
      if (used == v.size()) return n;
    } catch (const std::exception&) {
    }
    MANTISSA_CHECK(false, context_, ": model_config '", key, "=", v, "' is not an integer");
    return 0;
  }
  double real(const std::string& key) const {
    const std::string& v = str(key);
    try {
      size_t used = 0;
      double d = std::stod(v, &used);
      if (used == v.size()) return d;
    } catch (const std::exception&) {
    }
    MANTISSA_CHECK(false, context_, ": model_config '", key, "=", v, "' is not a number");
    return 0;
  }

 private:
  std::map<std::string, std::string> kv_;
  std::string context_;
};

}  // namespace

std::map<std::string, std::string> parseModelConfig(const std::string& config,
                                                    const std::string& context) {
  std::map<std::string, std::string> kv;
  size_t start = 0;
  while (start <= config.size()) {
    size_t comma = config.find(',', start);
    std::string item =
        trim(config.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (!item.empty()) {
      size_t eq = item.find('=');
      MANTISSA_CHECK(eq != std::string::npos && eq > 0, context, ": model_config item '", item,
                     "' is not key=value (model_config: '", config, "')");
      kv[trim(item.substr(0, eq))] = trim(item.substr(eq + 1));
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return kv;
}

SavedClassifier loadSavedClassifier(const std::string& path, const std::string& option) {
  const std::string ctx = option + " " + path;
  MANTISSA_CHECK(std::filesystem::exists(path), ctx, ": no such file");
  SavedClassifier out;
  out.meta = io::readMeta(path);
  const std::string& name = out.meta.model;
  ConfigReader cfg(parseModelConfig(out.meta.modelConfig, ctx), ctx);
  Rng rng(0);  // the weights come from the file; initialisation only has to be valid
  int64_t size = 0;
  if (name.rfind("resnet", 0) == 0 && cfg.has("shortcut")) {
    std::string sc = cfg.str("shortcut");
    MANTISSA_CHECK(sc == "A" || sc == "B", ctx, ": model_config shortcut '", sc, "' (A or B)");
    out.model = std::make_shared<nn::CifarResNet>(
        nn::CifarResNetOptions{.depth = static_cast<int>(cfg.integer("depth")),
                               .inChannels = cfg.integer("in_channels"),
                               .numClasses = cfg.integer("num_classes"),
                               .shortcut = sc == "A" ? nn::ShortcutType::A : nn::ShortcutType::B},
        rng);
  } else if (name.rfind("resnet", 0) == 0) {
    out.model = std::make_shared<nn::ResNet>(
        nn::ResNetOptions{.depth = static_cast<int>(cfg.integer("depth")),
                          .inChannels = cfg.integer("in_channels"),
                          .numClasses = cfg.integer("num_classes"),
                          .zeroInitResidual = cfg.has("zero_init_residual")},
        rng);
  } else if (name == "alexnet" || name == "alexnet-small") {
    std::string variant = cfg.str("variant");
    MANTISSA_CHECK(variant == "original" || variant == "small", ctx, ": model_config variant '",
                   variant, "' (original or small)");
    size = cfg.integer("input_size");
    out.model = std::make_shared<nn::AlexNet>(
        nn::AlexNetOptions{.variant = variant == "original" ? nn::AlexNetVariant::Original
                                                            : nn::AlexNetVariant::Small,
                           .inChannels = cfg.integer("in_channels"),
                           .numClasses = cfg.integer("num_classes"),
                           .inputSize = size,
                           .groups = cfg.integer("groups"),
                           .dropout = static_cast<float>(cfg.real("dropout"))},
        rng);
  } else {
    MANTISSA_CHECK(false, ctx, ": a checkpoint of model '", name, "' (written by ",
                   out.meta.app.empty() ? "?" : out.meta.app,
                   "); expected a classifier from mantissa-resnet or mantissa-alexnet "
                   "(resnet*, alexnet, alexnet-small)");
  }
  MANTISSA_CHECK(out.model->name() == name, ctx, ": model_config '", out.meta.modelConfig,
                 "' rebuilds '", out.model->name(), "', not the recorded model '", name, "'");
  // Weights and BN statistics only: the run's quantization state belongs to its recipe.
  io::PartialState weights(*out.model, {"model", "buffers"});
  io::loadCheckpoint(path, {{"", &weights}}, {.expectModel = name});
  out.model->eval();

  auto extra = [&](const char* key) -> int64_t {
    auto it = out.meta.extra.find(key);
    return it == out.meta.extra.end() ? 0 : std::stoll(it->second);
  };
  out.input.size = extra("input_size") > 0 ? extra("input_size") : size;
  out.input.channels = cfg.integer("in_channels");
  out.input.augment = false;
  return out;
}

bool isResNet(const nn::Model& model) {
  auto children = model.namedChildren();
  return !children.empty() && children.back().first == "fc" &&
         children.back().second->typeName() == "Linear" &&
         (model.typeName() == "CifarResNet" || model.typeName() == "ResNet");
}

Tensor penultimateFeatures(nn::Model& model, const Tensor& x) {
  MANTISSA_CHECK(isResNet(model), "penultimateFeatures: model '", model.name(),
                 "' is not a ResNet (features are the input of its final fc layer)");
  // The ResNets' forward is exactly their children in registration order (conv1, bn1, relu,
  // [maxpool,] layer1..., avgpool, fc), the pooled map flattened before fc.
  auto children = model.namedChildren();
  Tensor h = x;
  for (size_t i = 0; i + 1 < children.size(); ++i) h = children[i].second->forward(h);
  return h.flatten(1);
}

}  // namespace mantissa::cli
