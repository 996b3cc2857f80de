#pragma once

#include <map>
#include <memory>
#include <string>

#include "apps/cli/DataSetup.h"
#include "core/Tensor.h"
#include "core/io/Checkpoint.h"
#include "layers/models/Model.h"

namespace mantissa::cli {

/// key=value pairs of a checkpoint's model_config (what Model::extraRepr() wrote, e.g.
/// "depth=20, in_channels=1, num_classes=10, shortcut=A"). Throws naming `context` on an item
/// without '='.
std::map<std::string, std::string> parseModelConfig(const std::string& config,
                                                    const std::string& context);

/// A classifier rebuilt from a mantissa-resnet / mantissa-alexnet checkpoint.
struct SavedClassifier {
  std::shared_ptr<nn::Model> model;
  /// How the training run fed images to it (resize, grey to RGB), without augmentation.
  InputSpec input;
  io::CheckpointMeta meta;
};

/// Reads `path`'s /meta, rebuilds the model it names from its model_config (CIFAR ResNets
/// resnetN / resnetNb, ImageNet ResNets resnet18/34/50, alexnet, alexnet-small) and loads its
/// weights and buffers (parameters, BN statistics) in FP32; the training run's precision state
/// and optimizer are ignored. Errors name `option` and the file: a missing or damaged file, a
/// model that is not one of these classifiers, a config that cannot be parsed.
SavedClassifier loadSavedClassifier(const std::string& path, const std::string& option);

/// True for the ResNets (CIFAR and ImageNet): models whose last child is the classifier `fc`
/// applied to globally pooled features.
bool isResNet(const nn::Model& model);

/// The input of a ResNet's final `fc` layer (the globally average-pooled features), [N, D]:
/// every child module but `fc` applied in registration order, then flattened. Throws for
/// other models.
Tensor penultimateFeatures(nn::Model& model, const Tensor& x);

}  // namespace mantissa::cli
