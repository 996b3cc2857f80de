#pragma once

#include <string>

#include "layers/Module.h"

namespace mantissa::nn {

/// Base of the ready-made networks in layers/models/: a Module with a short, stable name
/// ("resnet20", "alexnet", "dcgan64-generator") that apps write into checkpoints and logs.
/// The full configuration is printed by describe() / extraRepr().
class Model : public Module {
 public:
  using Module::Module;

  /// Identifier of the architecture and its main configuration, lower case, no spaces.
  virtual std::string name() const = 0;
};

}  // namespace mantissa::nn
